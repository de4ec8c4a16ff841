//! The on-disk record format of the blob log: header encoding, its two
//! CRC32C checks, the padding rule, and the pure scan (and, past a damaged
//! record, the seek for the next valid one) that recovery runs over bytes
//! read from a segment.
//!
//! Pure code: no I/O, no async, no allocation. It runs on whichever core owns
//! the shard. Bounds: a payload is at most [`CHUNK_BYTES`], so a record is at
//! most [`CHUNK_BUF_BYTES`].
//!
//! A record is a [`RECORD_HEADER_BYTES`] header, the payload, then zero
//! padding up to the next multiple of [`IO_ALIGN_BYTES`]; records start at
//! aligned offsets. Header layout (integers little-endian; this is a storage
//! format, change it only with a new [`RECORD_VERSION`]):
//!
//! | bytes  | field                                                     |
//! |--------|-----------------------------------------------------------|
//! | 0..4   | magic, [`RECORD_MAGIC`]                                    |
//! | 4..6   | format version, [`RECORD_VERSION`]                         |
//! | 6..8   | flags; none are defined, so they must be 0                 |
//! | 8..12  | payload length in bytes                                    |
//! | 12..44 | SHA-256 of the payload (computed by the ingress core)      |
//! | 44..48 | CRC32C of the payload                                      |
//! | 48..56 | offset of this record in its segment (catches misplaced or stale reads) |
//! | 56..60 | reserved, 0                                                |
//! | 60..64 | CRC32C of bytes 0..60, so it also covers the payload CRC   |
//!
//! The SHA-256 is stored, not recomputed on read (1.9 GB/s per core would
//! halve read throughput); the payload CRC32C (hardware, >10 GB/s) proves the
//! bytes are the ones written, and the caller's expected SHA-256 is compared
//! against the stored one. Padding bytes are not covered by any check.

use crate::chunk_hash::ChunkHash;
use crate::limits::{align_up, CHUNK_BUF_BYTES, CHUNK_BYTES, IO_ALIGN_BYTES, RECORD_HEADER_BYTES};

use super::error::RecordError;

/// First four bytes of every record ("SHLB" when read as big-endian text).
pub const RECORD_MAGIC: u32 = 0x5348_4C42;

/// The only record format version this build writes and reads.
pub const RECORD_VERSION: u16 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 4;
const FLAGS_AT: usize = 6;
const LEN_AT: usize = 8;
const SHA_AT: usize = 12;
const PAYLOAD_CRC_AT: usize = 44;
const OFFSET_AT: usize = 48;
const RESERVED_AT: usize = 56;
const HEADER_CRC_AT: usize = 60;

const _: () = assert!(HEADER_CRC_AT + 4 == RECORD_HEADER_BYTES);
const _: () = assert!(SHA_AT + 32 == PAYLOAD_CRC_AT);

/// Bytes a record with `payload_bytes` of payload takes on disk, padding included.
pub const fn record_bytes(payload_bytes: usize) -> usize {
    align_up(RECORD_HEADER_BYTES + payload_bytes, IO_ALIGN_BYTES)
}

const _: () = assert!(record_bytes(CHUNK_BYTES) == CHUNK_BUF_BYTES);
const _: () = assert!(record_bytes(0) == IO_ALIGN_BYTES);

/// A decoded, checked record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub payload_bytes: u32,
    pub sha256: ChunkHash,
    pub payload_crc32c: u32,
    pub offset_bytes: u64,
}

impl RecordHeader {
    /// Bytes the whole record takes on disk.
    pub fn record_bytes(&self) -> usize {
        record_bytes(self.payload_bytes as usize)
    }
}

/// Writes the header for `payload`, stored at `offset_bytes` of its segment,
/// into `header` (exactly [`RECORD_HEADER_BYTES`] long).
///
/// # Panics
/// If `header` has the wrong size, the payload is longer than a chunk, the
/// offset is not aligned, or the header does not decode back to the same
/// values (each record is checked before the write as well as after the read).
pub fn encode_header(
    header: &mut [u8],
    payload: &[u8],
    sha256: &ChunkHash,
    offset_bytes: u64,
) -> RecordHeader {
    assert_eq!(header.len(), RECORD_HEADER_BYTES);
    assert!(
        payload.len() <= CHUNK_BYTES,
        "payload {} bytes",
        payload.len()
    );
    assert_eq!(offset_bytes % IO_ALIGN_BYTES as u64, 0);

    let built = RecordHeader {
        payload_bytes: payload.len() as u32,
        sha256: *sha256,
        payload_crc32c: crc32c::crc32c(payload),
        offset_bytes,
    };
    put_u32(header, MAGIC_AT, RECORD_MAGIC);
    put_u16(header, VERSION_AT, RECORD_VERSION);
    put_u16(header, FLAGS_AT, 0);
    put_u32(header, LEN_AT, built.payload_bytes);
    header[SHA_AT..SHA_AT + ChunkHash::BYTES].copy_from_slice(sha256.as_bytes());
    put_u32(header, PAYLOAD_CRC_AT, built.payload_crc32c);
    header[OFFSET_AT..OFFSET_AT + 8].copy_from_slice(&offset_bytes.to_le_bytes());
    put_u32(header, RESERVED_AT, 0);
    let header_crc = crc32c::crc32c(&header[..HEADER_CRC_AT]);
    put_u32(header, HEADER_CRC_AT, header_crc);

    let space_bytes = built.record_bytes() as u64;
    assert_eq!(decode_header(header, offset_bytes, space_bytes), Ok(built));
    built
}

/// Decodes and checks the header at the start of `bytes`, which were read
/// from `offset_bytes` of a segment with `space_bytes` left from there to the
/// segment's end. Does not look at the payload: see [`verify_payload`].
pub fn decode_header(
    bytes: &[u8],
    offset_bytes: u64,
    space_bytes: u64,
) -> Result<RecordHeader, RecordError> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Err(RecordError::Truncated {
            needed_bytes: RECORD_HEADER_BYTES as u64,
            available_bytes: bytes.len() as u64,
        });
    }
    let header = &bytes[..RECORD_HEADER_BYTES];
    let magic = get_u32(header, MAGIC_AT);
    if magic != RECORD_MAGIC {
        return Err(RecordError::BadMagic { found: magic });
    }
    let version = get_u16(header, VERSION_AT);
    if version != RECORD_VERSION {
        return Err(RecordError::BadVersion {
            found: version,
            supported: RECORD_VERSION,
        });
    }
    let stored_crc = get_u32(header, HEADER_CRC_AT);
    let computed_crc = crc32c::crc32c(&header[..HEADER_CRC_AT]);
    if stored_crc != computed_crc {
        return Err(RecordError::HeaderCrc {
            stored: stored_crc,
            computed: computed_crc,
        });
    }
    let flags = get_u16(header, FLAGS_AT);
    if flags != 0 {
        return Err(RecordError::UnknownFlags { flags });
    }
    let reserved = get_u32(header, RESERVED_AT);
    if reserved != 0 {
        return Err(RecordError::ReservedNotZero { found: reserved });
    }
    let payload_bytes = get_u32(header, LEN_AT);
    if payload_bytes as usize > CHUNK_BYTES {
        return Err(RecordError::TooLong {
            payload_bytes: payload_bytes.into(),
            max: CHUNK_BYTES as u64,
        });
    }
    let stored_offset_bytes = u64::from_le_bytes(
        header[OFFSET_AT..OFFSET_AT + 8]
            .try_into()
            .expect("slice of 8 bytes"),
    );
    if stored_offset_bytes != offset_bytes {
        return Err(RecordError::Misplaced {
            stored_offset_bytes,
        });
    }
    let record_bytes = record_bytes(payload_bytes as usize) as u64;
    if record_bytes > space_bytes {
        return Err(RecordError::Overruns {
            record_bytes,
            space_bytes,
        });
    }
    Ok(RecordHeader {
        payload_bytes,
        sha256: ChunkHash::from_slice(&header[SHA_AT..SHA_AT + ChunkHash::BYTES])
            .expect("a slice of ChunkHash::BYTES"),
        payload_crc32c: get_u32(header, PAYLOAD_CRC_AT),
        offset_bytes,
    })
}

/// Checks `payload` (exactly the header's payload length) against the header's CRC32C.
pub fn verify_payload(header: &RecordHeader, payload: &[u8]) -> Result<(), RecordError> {
    if payload.len() != header.payload_bytes as usize {
        return Err(RecordError::Truncated {
            needed_bytes: header.payload_bytes.into(),
            available_bytes: payload.len() as u64,
        });
    }
    let computed = crc32c::crc32c(payload);
    if computed != header.payload_crc32c {
        return Err(RecordError::PayloadCrc {
            stored: header.payload_crc32c,
            computed,
        });
    }
    Ok(())
}

/// Where a [`scan`] over one window of a segment stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// Every byte of the file up to its end is valid records.
    EndOfFile,
    /// The record at `next_offset_bytes` continues past the window: read a
    /// new window starting there.
    WindowEnd,
    /// The bytes at `next_offset_bytes` are not a valid record: the log ends there.
    Invalid(RecordError),
}

/// Result of scanning one window of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Valid records found in this window.
    pub records: u64,
    /// Offset of the first byte after the last valid record.
    pub next_offset_bytes: u64,
    pub stop: ScanStop,
}

/// Walks the records in `window` (bytes read from `window_offset_bytes` of a
/// segment file that is `file_bytes` long), checking headers and payloads,
/// until the window or the file ends or a record is invalid.
///
/// A window of at least [`CHUNK_BUF_BYTES`] (or the rest of the file, if
/// shorter) always makes progress or finds the end: any valid record fits.
pub fn scan(window: &[u8], window_offset_bytes: u64, file_bytes: u64) -> Scan {
    assert_eq!(window_offset_bytes % IO_ALIGN_BYTES as u64, 0);
    assert!(window_offset_bytes + window.len() as u64 <= file_bytes.max(window_offset_bytes));
    let mut records = 0;
    let mut at = window_offset_bytes;
    let stop = loop {
        if at == file_bytes {
            break ScanStop::EndOfFile;
        }
        let in_window = &window[(at - window_offset_bytes) as usize..];
        let file_left_bytes = file_bytes - at;
        if in_window.len() < RECORD_HEADER_BYTES && (in_window.len() as u64) < file_left_bytes {
            break ScanStop::WindowEnd;
        }
        let header = match decode_header(in_window, at, file_left_bytes) {
            Ok(header) => header,
            Err(reason) => break ScanStop::Invalid(reason),
        };
        let end = RECORD_HEADER_BYTES + header.payload_bytes as usize;
        if header.record_bytes() > in_window.len() {
            // `decode_header` saw the record fits in the file.
            break ScanStop::WindowEnd;
        }
        if let Err(reason) = verify_payload(&header, &in_window[RECORD_HEADER_BYTES..end]) {
            break ScanStop::Invalid(reason);
        }
        records += 1;
        at += header.record_bytes() as u64;
    };
    Scan {
        records,
        next_offset_bytes: at,
        stop,
    }
}

/// Bytes to skip past the invalid record at the start of `bytes` (read from
/// `offset_bytes`, `space_bytes` left in the segment) before looking for the
/// next valid one: the whole record when its header is intact (only its
/// payload is bad, so the next record starts right after it, and its payload
/// is never mistaken for records), else one aligned block.
pub fn skip_bytes(bytes: &[u8], offset_bytes: u64, space_bytes: u64) -> u64 {
    match decode_header(bytes, offset_bytes, space_bytes) {
        Ok(header) => header.record_bytes() as u64,
        Err(_) => IO_ALIGN_BYTES as u64,
    }
}

/// Where a [`seek`] for the next valid record stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekStop {
    /// A valid record (header and payload) starts at `next_offset_bytes`.
    Found,
    /// The candidate at `next_offset_bytes` continues past the window: read
    /// a new window starting there.
    WindowEnd,
    /// No valid record starts between the window's start and the file's end.
    EndOfFile,
}

/// Result of seeking through one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seek {
    pub next_offset_bytes: u64,
    pub stop: SeekStop,
}

/// Looks at each aligned offset of `window` (bytes read from
/// `window_offset_bytes` of a file `file_bytes` long) for the first valid
/// record. A header names its own offset and carries a CRC, and the payload
/// must match its CRC too, so bytes that are not a record at that very
/// place are not taken for one.
pub fn seek(window: &[u8], window_offset_bytes: u64, file_bytes: u64) -> Seek {
    assert_eq!(window_offset_bytes % IO_ALIGN_BYTES as u64, 0);
    let mut at = window_offset_bytes;
    let stop = loop {
        if at >= file_bytes {
            at = file_bytes;
            break SeekStop::EndOfFile;
        }
        let in_window = &window[((at - window_offset_bytes) as usize).min(window.len())..];
        let file_left_bytes = file_bytes - at;
        if in_window.len() < RECORD_HEADER_BYTES && (in_window.len() as u64) < file_left_bytes {
            break SeekStop::WindowEnd;
        }
        if let Ok(header) = decode_header(in_window, at, file_left_bytes) {
            if header.record_bytes() > in_window.len() {
                break SeekStop::WindowEnd;
            }
            let end = RECORD_HEADER_BYTES + header.payload_bytes as usize;
            if verify_payload(&header, &in_window[RECORD_HEADER_BYTES..end]).is_ok() {
                break SeekStop::Found;
            }
        }
        at += IO_ALIGN_BYTES as u64;
    };
    Seek {
        next_offset_bytes: at,
        stop,
    }
}

/// Runs recovery's pure steps over `data` taken as a whole segment: scan
/// windows of every size the reads use, and past each invalid record, the
/// skip and the seek; checks every offset they report stays in the file
/// and moves forward (the fuzz target `crate::fuzz_targets::blob_record`).
pub fn fuzz_segment_bytes(data: &[u8]) {
    let file_bytes = data.len() as u64;
    let mut at = 0u64;
    while at < file_bytes {
        let window = &data[at as usize..];
        let found = scan(window, at, file_bytes);
        assert!(found.next_offset_bytes >= at && found.next_offset_bytes <= file_bytes);
        at = found.next_offset_bytes;
        match found.stop {
            ScanStop::EndOfFile => return,
            ScanStop::WindowEnd => unreachable!("the window holds the rest of the file"),
            ScanStop::Invalid(_) => {}
        }
        let skip = skip_bytes(&data[at as usize..], at, file_bytes - at);
        assert!(skip >= IO_ALIGN_BYTES as u64);
        let next = at + skip;
        if next >= file_bytes || !next.is_multiple_of(IO_ALIGN_BYTES as u64) {
            return;
        }
        let sought = seek(&data[next as usize..], next, file_bytes);
        assert!(sought.next_offset_bytes >= next && sought.next_offset_bytes <= file_bytes);
        match sought.stop {
            SeekStop::Found => {
                let header = decode_header(
                    &data[sought.next_offset_bytes as usize..],
                    sought.next_offset_bytes,
                    file_bytes - sought.next_offset_bytes,
                )
                .expect("seek found a valid header");
                assert!(header.record_bytes() > 0);
                at = sought.next_offset_bytes;
            }
            SeekStop::EndOfFile => return,
            SeekStop::WindowEnd => unreachable!("the window holds the rest of the file"),
        }
    }
}

/// A valid segment holding `payloads` as records (fuzz seeds).
pub fn segment_of(payloads: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for payload in payloads {
        let at = bytes.len();
        bytes.resize(at + record_bytes(payload.len()), 0);
        bytes[at + RECORD_HEADER_BYTES..at + RECORD_HEADER_BYTES + payload.len()]
            .copy_from_slice(payload);
        let sha = ChunkHash::of(payload);
        encode_header(
            &mut bytes[at..at + RECORD_HEADER_BYTES],
            payload,
            &sha,
            at as u64,
        );
    }
    bytes
}

fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: ChunkHash = ChunkHash::from_array([0xab; 32]);

    /// A whole record (header, payload, zero padding) as it would be on disk.
    fn record(payload: &[u8], offset_bytes: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; record_bytes(payload.len())];
        bytes[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload.len()].copy_from_slice(payload);
        let (header, _) = bytes.split_at_mut(RECORD_HEADER_BYTES);
        encode_header(header, payload, &SHA, offset_bytes);
        bytes
    }

    fn check(
        bytes: &[u8],
        offset_bytes: u64,
        space_bytes: u64,
    ) -> Result<RecordHeader, RecordError> {
        let header = decode_header(bytes, offset_bytes, space_bytes)?;
        let end = RECORD_HEADER_BYTES + header.payload_bytes as usize;
        verify_payload(&header, &bytes[RECORD_HEADER_BYTES..end])?;
        Ok(header)
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let bytes = record(&payload, 8 * 4096);
        assert_eq!(bytes.len(), 8192);
        let header = check(&bytes, 8 * 4096, 1 << 20).unwrap();
        assert_eq!(header.payload_bytes, 5000);
        assert_eq!(header.sha256, SHA);
        assert_eq!(header.offset_bytes, 8 * 4096);
        assert_eq!(header.payload_crc32c, crc32c::crc32c(&payload));
    }

    #[test]
    fn padding_rounds_to_io_alignment() {
        assert_eq!(record_bytes(0), 4096);
        assert_eq!(record_bytes(4096 - 64), 4096);
        assert_eq!(record_bytes(4096 - 63), 8192);
        assert_eq!(record_bytes(CHUNK_BYTES), CHUNK_BYTES + 4096);
    }

    #[test]
    fn empty_and_full_payloads_round_trip() {
        for len in [0, CHUNK_BYTES] {
            let payload = vec![0x5a; len];
            let bytes = record(&payload, 0);
            let header = check(&bytes, 0, bytes.len() as u64).unwrap();
            assert_eq!(header.payload_bytes as usize, len);
        }
    }

    #[test]
    fn every_single_bit_flip_in_header_or_payload_is_detected() {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let clean = record(&payload, 4096);
        let covered = RECORD_HEADER_BYTES + payload.len();
        for bit in 0..covered * 8 {
            let mut bytes = clean.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                check(&bytes, 4096, 1 << 20).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn wrong_magic_is_named() {
        let mut bytes = record(b"hello", 0);
        bytes[0..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        assert_eq!(
            check(&bytes, 0, 4096),
            Err(RecordError::BadMagic { found: 0xdead_beef })
        );
        let zeros = [0u8; 4096];
        assert_eq!(
            check(&zeros, 0, 4096),
            Err(RecordError::BadMagic { found: 0 })
        );
    }

    #[test]
    fn newer_version_is_refused() {
        let mut bytes = record(b"hello", 0);
        bytes[VERSION_AT..VERSION_AT + 2].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(
            check(&bytes, 0, 4096),
            Err(RecordError::BadVersion {
                found: 2,
                supported: RECORD_VERSION
            })
        );
    }

    #[test]
    fn length_beyond_segment_is_refused() {
        let payload = vec![1u8; 10_000];
        let bytes = record(&payload, 4096);
        assert_eq!(
            check(&bytes, 4096, 8192),
            Err(RecordError::Overruns {
                record_bytes: 12288,
                space_bytes: 8192
            })
        );
    }

    #[test]
    fn length_beyond_a_chunk_is_refused_even_with_a_valid_crc() {
        let mut bytes = record(b"x", 0);
        put_u32(&mut bytes, LEN_AT, CHUNK_BYTES as u32 + 1);
        let crc = crc32c::crc32c(&bytes[..HEADER_CRC_AT]);
        put_u32(&mut bytes, HEADER_CRC_AT, crc);
        assert_eq!(
            decode_header(&bytes, 0, u64::MAX),
            Err(RecordError::TooLong {
                payload_bytes: CHUNK_BYTES as u64 + 1,
                max: CHUNK_BYTES as u64
            })
        );
    }

    #[test]
    fn record_read_at_another_offset_is_misplaced() {
        let bytes = record(b"abc", 4096);
        assert_eq!(
            decode_header(&bytes, 8192, 1 << 20),
            Err(RecordError::Misplaced {
                stored_offset_bytes: 4096
            })
        );
    }

    #[test]
    fn short_header_is_truncated() {
        let bytes = record(b"abc", 0);
        assert_eq!(
            decode_header(&bytes[..40], 0, 40),
            Err(RecordError::Truncated {
                needed_bytes: 64,
                available_bytes: 40
            })
        );
    }

    #[test]
    #[should_panic]
    fn encoding_at_an_unaligned_offset_is_a_bug() {
        let mut header = [0u8; RECORD_HEADER_BYTES];
        encode_header(&mut header, b"abc", &SHA, 100);
    }

    fn segment(records: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for payload in records {
            let at = bytes.len() as u64;
            bytes.extend_from_slice(&record(payload, at));
        }
        bytes
    }

    #[test]
    fn scan_walks_a_clean_segment_to_its_end() {
        let bytes = segment(&[b"one", &[2u8; 5000], b""]);
        let scan = scan(&bytes, 0, bytes.len() as u64);
        assert_eq!(
            scan,
            Scan {
                records: 3,
                next_offset_bytes: bytes.len() as u64,
                stop: ScanStop::EndOfFile
            }
        );
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let mut bytes = segment(&[b"one", b"two"]);
        let valid = bytes.len() as u64;
        let torn = record(&[9u8; 9000], valid);
        bytes.extend_from_slice(&torn[..5000]);
        let scan = scan(&bytes, 0, bytes.len() as u64);
        assert_eq!(scan.records, 2);
        assert_eq!(scan.next_offset_bytes, valid);
        assert!(matches!(
            scan.stop,
            ScanStop::Invalid(RecordError::Overruns { .. })
        ));
    }

    #[test]
    fn scan_stops_at_garbage_and_at_a_bad_payload() {
        let mut bytes = segment(&[b"one"]);
        bytes.extend_from_slice(&[0x77; 100]);
        let scan_garbage = scan(&bytes, 0, bytes.len() as u64);
        assert_eq!(scan_garbage.records, 1);
        assert_eq!(scan_garbage.next_offset_bytes, 4096);
        assert!(matches!(
            scan_garbage.stop,
            ScanStop::Invalid(RecordError::BadMagic { .. })
        ));

        let mut bytes = segment(&[b"one", b"two", b"three"]);
        bytes[4096 + RECORD_HEADER_BYTES] ^= 1;
        let scan_bad = scan(&bytes, 0, bytes.len() as u64);
        assert_eq!(scan_bad.records, 1);
        assert_eq!(scan_bad.next_offset_bytes, 4096);
        assert!(matches!(
            scan_bad.stop,
            ScanStop::Invalid(RecordError::PayloadCrc { .. })
        ));
    }

    #[test]
    fn seek_finds_the_next_record_after_damage() {
        let mut bytes = segment(&[b"one", &[2u8; 9000], b"three", b"four"]);
        // Damage the second record's header: its length is unknown now.
        bytes[4096 + 9] ^= 0x40;
        let file_bytes = bytes.len() as u64;
        let scanned = scan(&bytes, 0, file_bytes);
        assert_eq!(scanned.next_offset_bytes, 4096);
        let skip = skip_bytes(&bytes[4096..], 4096, file_bytes - 4096);
        assert_eq!(skip, IO_ALIGN_BYTES as u64, "a bad header skips one block");
        let found = seek(&bytes[4096 + 4096..], 8192, file_bytes);
        assert_eq!(
            found,
            Seek {
                next_offset_bytes: 4096 + record_bytes(9000) as u64,
                stop: SeekStop::Found
            },
            "the payload of the damaged record is not taken for a record"
        );
        let rest = scan(
            &bytes[found.next_offset_bytes as usize..],
            found.next_offset_bytes,
            file_bytes,
        );
        assert_eq!(rest.records, 2);
        assert_eq!(rest.stop, ScanStop::EndOfFile);
    }

    #[test]
    fn a_bad_payload_is_skipped_whole() {
        let mut bytes = segment(&[b"one", &[2u8; 9000], b"three"]);
        bytes[4096 + RECORD_HEADER_BYTES + 5000] ^= 1;
        let file_bytes = bytes.len() as u64;
        assert_eq!(
            skip_bytes(&bytes[4096..], 4096, file_bytes - 4096),
            record_bytes(9000) as u64
        );
    }

    #[test]
    fn seek_reports_no_record_up_to_the_end() {
        let mut bytes = segment(&[b"one"]);
        bytes.extend_from_slice(&[0x33; 3 * 4096 + 100]);
        let file_bytes = bytes.len() as u64;
        let found = seek(&bytes[4096..], 4096, file_bytes);
        assert_eq!(found.stop, SeekStop::EndOfFile);
        assert_eq!(found.next_offset_bytes, file_bytes);
    }

    #[test]
    fn seek_asks_for_a_new_window_when_a_candidate_crosses_it() {
        let bytes = segment(&[b"one", &[2u8; 9000]]);
        let file_bytes = bytes.len() as u64;
        let found = seek(&bytes[4096..8192], 4096, file_bytes);
        assert_eq!(
            found,
            Seek {
                next_offset_bytes: 4096,
                stop: SeekStop::WindowEnd
            }
        );
    }

    #[test]
    fn scan_asks_for_a_new_window_when_a_record_crosses_it() {
        let bytes = segment(&[b"one", &[2u8; 9000], b"three"]);
        let file_bytes = bytes.len() as u64;
        let first = scan(&bytes[..8192], 0, file_bytes);
        assert_eq!(first.records, 1);
        assert_eq!(first.next_offset_bytes, 4096);
        assert_eq!(first.stop, ScanStop::WindowEnd);
        let rest = &bytes[first.next_offset_bytes as usize..];
        let second = scan(rest, first.next_offset_bytes, file_bytes);
        assert_eq!(second.records, 2);
        assert_eq!(second.stop, ScanStop::EndOfFile);
    }
}
