//! Entry points for fuzzing what a shard decodes from bytes it did not
//! write itself: blob-log records read back from disk (bit rot, a torn
//! write, a foreign file) and peer frames (any process that reaches the
//! peer port). Each takes arbitrary bytes and must return without
//! panicking, allocating without bound or looping; what it finds wrong is
//! an error value.
//!
//! A libFuzzer harness (cargo-fuzz, nightly) can call these as they are.
//! Without one, the property tests below run the same targets over seeded
//! mutations of valid inputs ([`Mutations`], also used by the node
//! crate's targets), so every build checks them.

use futures_lite::future::block_on;
use futures_lite::io::Cursor;

use prost::Message;
use shoal_proto::peer::{Kind, PeerFrame};

use crate::blob_log::{fuzz_record_bytes, fuzz_record_seed};
use crate::peer::frame::read_frame;

/// Scans `data` as a blob-log segment the way recovery does (records,
/// then the seek past damage), and checks what it reports lies within it.
pub fn blob_record(data: &[u8]) {
    fuzz_record_bytes(data);
}

/// Reads `data` as the bytes a peer sent: frames until one fails.
pub fn peer_frame(data: &[u8]) {
    let mut stream = Cursor::new(data);
    for _ in 0..data.len() + 1 {
        match block_on(read_frame(&mut stream)) {
            Ok((header, payload)) => {
                assert_eq!(header.payload_bytes, payload.len() as u64);
            }
            Err(_) => return,
        }
    }
    unreachable!("each frame read consumes at least its 4-byte length");
}

/// Valid inputs of [`blob_record`]: segments of records, and zeros.
pub fn blob_record_seeds() -> Vec<Vec<u8>> {
    vec![
        fuzz_record_seed(&[b"one", &[7u8; 5000], b""]),
        fuzz_record_seed(&[&[1u8; 100], &[2u8; 100]]),
        vec![0u8; 8192],
    ]
}

/// Valid inputs of [`peer_frame`]: two frames back to back, and a length
/// prefix claiming 4 GiB.
pub fn peer_frame_seeds() -> Vec<Vec<u8>> {
    let mut two = frame(
        PeerFrame {
            kind: Kind::PushChunkBlob as i32,
            sha256: vec![9; 32],
            ..Default::default()
        },
        b"chunk bytes",
    );
    two.extend(frame(
        PeerFrame {
            kind: Kind::ClusterOverview as i32,
            request_id: 7,
            ..Default::default()
        },
        b"",
    ));
    vec![two, (u32::MAX).to_be_bytes().to_vec()]
}

fn frame(header: PeerFrame, payload: &[u8]) -> Vec<u8> {
    let header = PeerFrame {
        payload_bytes: payload.len() as u64,
        ..header
    }
    .encode_to_vec();
    let mut bytes = (header.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(payload);
    bytes
}

/// Writes `seeds` as `dir/target/seed-N`, the layout of a cargo-fuzz corpus.
pub fn write_seeds(dir: &str, target: &str, seeds: &[Vec<u8>]) {
    let dir = std::path::Path::new(dir).join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write a seed");
    }
}

/// Inputs each property test runs: `SHOAL_FUZZ_RUNS` (e.g. `10000000`
/// for a long run), else `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("SHOAL_FUZZ_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Seeded mutations of valid inputs, for property tests standing in for a
/// fuzzer: byte flips, inserted and deleted runs, truncations, splices of
/// two inputs, and pure noise.
pub struct Mutations<'a> {
    seeds: &'a [Vec<u8>],
    state: u64,
    left: usize,
}

impl<'a> Mutations<'a> {
    /// `count` inputs derived from `seeds`, the same ones for the same `rng_seed`.
    pub fn new(seeds: &'a [Vec<u8>], rng_seed: u64, count: usize) -> Self {
        assert!(!seeds.is_empty());
        Mutations {
            seeds,
            state: rng_seed | 1,
            left: count,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: enough for test inputs, no dependency.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        match self.below(6) {
            0 if !input.is_empty() => {
                let at = self.below(input.len());
                input[at] ^= 1 << self.below(8);
            }
            1 => {
                let at = self.below(input.len() + 1);
                let run: Vec<u8> = (0..self.below(16) + 1)
                    .map(|_| self.next_u64() as u8)
                    .collect();
                input.splice(at..at, run);
            }
            2 if !input.is_empty() => {
                let at = self.below(input.len());
                let end = (at + self.below(64) + 1).min(input.len());
                input.drain(at..end);
            }
            3 => input.truncate(self.below(input.len() + 1)),
            4 => {
                let other = self.seeds[self.below(self.seeds.len())].clone();
                let from = self.below(other.len() + 1);
                let at = self.below(input.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let at = self.below(input.len() + 1);
                let digits = format!("{}", self.next_u64());
                input.splice(at..at, digits.into_bytes());
            }
        }
    }
}

impl Iterator for Mutations<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.below(50) == 0 {
            let len = self.below(300);
            return Some((0..len).map(|_| self.next_u64() as u8).collect());
        }
        let mut input = self.seeds[self.below(self.seeds.len())].clone();
        for _ in 0..self.below(4) + 1 {
            self.mutate(&mut input);
        }
        Some(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs per target in a normal test run (well under a second).
    const RUNS: usize = 50_000;

    #[test]
    fn blob_records_of_any_shape_are_refused_not_panicked_on() {
        for input in Mutations::new(&blob_record_seeds(), 0x5EED_B10B, runs(RUNS)) {
            blob_record(&input);
        }
    }

    #[test]
    fn peer_frames_of_any_shape_are_refused_not_panicked_on() {
        for input in Mutations::new(&peer_frame_seeds(), 0x5EED_F4A3, runs(RUNS)) {
            peer_frame(&input);
        }
    }

    #[test]
    fn mutations_are_seeded() {
        let seeds = vec![b"abc".to_vec()];
        let a: Vec<_> = Mutations::new(&seeds, 1, 50).collect();
        let b: Vec<_> = Mutations::new(&seeds, 1, 50).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m != b"abc"));
    }

    /// Writes the seed corpus of this crate's cargo-fuzz targets under
    /// `SHOAL_FUZZ_SEED_DIR` (`fuzz/run.sh` does).
    #[test]
    #[ignore = "writes files; run by fuzz/run.sh"]
    fn write_seed_corpus() {
        let dir = std::env::var("SHOAL_FUZZ_SEED_DIR").expect("SHOAL_FUZZ_SEED_DIR");
        write_seeds(&dir, "blob_record", &blob_record_seeds());
        write_seeds(&dir, "peer_frame", &peer_frame_seeds());
    }
}
