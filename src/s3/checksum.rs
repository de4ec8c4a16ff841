//! S3 additional checksums (`x-amz-checksum-*`): the algorithm names as they
//! appear in headers and in `x-amz-sdk-checksum-algorithm` / `x-amz-trailer`,
//! and a streaming hasher that produces the value S3 puts on the wire.
//!
//! Pure and synchronous. A [`Checksummer`] holds a few hundred bytes of state
//! whatever the object size, so the PUT path can feed every decoded chunk
//! through it without buffering. Wire format, as S3 returns it: base64 of the
//! raw digest, which for the CRCs is the 4-byte big-endian value.
//!
//! Not covered yet: SHA-1 and CRC64NVME; `from_name`/`from_header_name`
//! return `None` for them, and the caller decides whether that is an error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One checksum algorithm S3 lets a client attach to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every supported algorithm, for iterating over request headers.
    pub const ALL: [ChecksumAlgorithm; 3] = [Self::Crc32, Self::Crc32c, Self::Sha256];

    /// Parses a header name such as `x-amz-checksum-crc32` (any case).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Parses the algorithm name used by `x-amz-checksum-algorithm` and
    /// `x-amz-sdk-checksum-algorithm`, such as `CRC32` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The request/response header carrying this checksum, lowercase.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name S3 uses in XML and in `x-amz-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Sha256 => "SHA256",
        }
    }
}

impl std::fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Streaming hasher for one [`ChecksumAlgorithm`].
#[derive(Clone)]
pub struct Checksummer {
    state: State,
}

#[derive(Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    // crc32c exposes a pure function that chains on the previous value.
    Crc32c(u32),
    Sha256(Sha256),
}

impl Checksummer {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Sha256 => State::Sha256(Sha256::new()),
        };
        Self { state }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(hasher) => hasher.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Sha256(hasher) => hasher.update(data),
        }
    }

    /// The value as S3 sends it in `x-amz-checksum-*`: base64 of the digest.
    pub fn finish_base64(self) -> String {
        match self.state {
            State::Crc32(hasher) => BASE64.encode(hasher.finalize().to_be_bytes()),
            State::Crc32c(crc) => BASE64.encode(crc.to_be_bytes()),
            State::Sha256(hasher) => BASE64.encode(hasher.finalize()),
        }
    }
}

impl std::fmt::Debug for Checksummer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checksummer")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_shot(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut summer = Checksummer::new(algorithm);
        summer.update(data);
        summer.finish_base64()
    }

    #[test]
    fn known_values_hello_world() {
        // crc32 = 0x0d4a1185, crc32c = 0xc99465aa, sha256 = b94d27b9...cde9.
        assert_eq!(
            one_shot(ChecksumAlgorithm::Crc32, b"hello world"),
            "DUoRhQ=="
        );
        assert_eq!(
            one_shot(ChecksumAlgorithm::Crc32c, b"hello world"),
            "yZRlqg=="
        );
        assert_eq!(
            one_shot(ChecksumAlgorithm::Sha256, b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn check_values_123456789() {
        // The catalogue "check" values of both CRCs.
        assert_eq!(
            one_shot(ChecksumAlgorithm::Crc32, b"123456789"),
            BASE64.encode(0xcbf4_3926u32.to_be_bytes())
        );
        assert_eq!(
            one_shot(ChecksumAlgorithm::Crc32c, b"123456789"),
            BASE64.encode(0xe306_9283u32.to_be_bytes())
        );
    }

    #[test]
    fn empty_input() {
        assert_eq!(one_shot(ChecksumAlgorithm::Crc32, b""), "AAAAAA==");
        assert_eq!(one_shot(ChecksumAlgorithm::Crc32c, b""), "AAAAAA==");
        assert_eq!(
            one_shot(ChecksumAlgorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn split_updates_match_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        for algorithm in ChecksumAlgorithm::ALL {
            let mut summer = Checksummer::new(algorithm);
            for piece in data.chunks(7) {
                summer.update(piece);
            }
            assert_eq!(
                summer.finish_base64(),
                one_shot(algorithm, &data),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for algorithm in ChecksumAlgorithm::ALL {
            assert_eq!(
                ChecksumAlgorithm::from_name(algorithm.name()),
                Some(algorithm)
            );
            assert_eq!(
                ChecksumAlgorithm::from_header_name(algorithm.header_name()),
                Some(algorithm)
            );
            assert_eq!(Checksummer::new(algorithm).algorithm(), algorithm);
            // Base64 of a 4-byte CRC or a 32-byte SHA-256.
            let encoded_len = one_shot(algorithm, b"x").len();
            let digest_bytes: usize = if algorithm == ChecksumAlgorithm::Sha256 {
                32
            } else {
                4
            };
            assert_eq!(encoded_len, 4 * digest_bytes.div_ceil(3));
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-SHA256"),
            Some(ChecksumAlgorithm::Sha256)
        );
        assert_eq!(ChecksumAlgorithm::from_name("SHA1"), None);
        assert_eq!(ChecksumAlgorithm::from_name("CRC64NVME"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name(""), None);
    }
}
