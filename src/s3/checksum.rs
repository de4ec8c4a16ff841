//! S3 additional checksums (`x-amz-checksum-*`): the algorithm names as they
//! appear in headers and in `x-amz-sdk-checksum-algorithm` / `x-amz-trailer`,
//! a streaming hasher that produces the value S3 puts on the wire, and the
//! two ways a multipart object's checksum is built from its parts'.
//!
//! Pure and synchronous. A [`Checksummer`] holds a few hundred bytes of state
//! whatever the object size, so the PUT path can feed every decoded chunk
//! through it without buffering. Wire format, as S3 returns it: base64 of the
//! raw digest, which for the CRCs is the big-endian value (4 bytes for
//! CRC32 and CRC32C, 8 for CRC64NVME).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// One checksum algorithm S3 lets a client attach to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every supported algorithm, for iterating over request headers.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

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
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name S3 uses in `x-amz-checksum-algorithm`; XML elements are
    /// `Checksum` followed by it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Length of the raw digest.
    pub fn digest_bytes(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// The CRC behind this algorithm, for combining; `None` for the SHAs.
    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            Self::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            Self::Sha1 | Self::Sha256 => None,
        }
    }

    /// Decodes a base64 value of this algorithm; `None` when it is not
    /// base64 of a digest of the right length.
    pub fn decode(self, value: &str) -> Option<Vec<u8>> {
        let raw = BASE64.decode(value.trim()).ok()?;
        (raw.len() == self.digest_bytes()).then_some(raw)
    }

    /// The checksum type a multipart upload gets when the client names
    /// none: S3 only offers full-object CRC64NVME.
    pub fn default_type(self) -> ChecksumType {
        match self {
            Self::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    /// Whether S3 accepts this algorithm with this multipart checksum
    /// type: full-object needs a CRC, composite excludes CRC64NVME.
    pub fn supports(self, kind: ChecksumType) -> bool {
        match kind {
            ChecksumType::FullObject => self.crc().is_some(),
            ChecksumType::Composite => self != Self::Crc64Nvme,
        }
    }
}

impl std::fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a multipart object's checksum is built from its parts'
/// (`x-amz-checksum-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumType {
    /// The algorithm over the concatenated raw part checksums, then `-N`.
    Composite,
    /// The CRC of the whole body, combined from the parts' CRCs.
    FullObject,
}

impl ChecksumType {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            n if n.eq_ignore_ascii_case("COMPOSITE") => Some(Self::Composite),
            n if n.eq_ignore_ascii_case("FULL_OBJECT") => Some(Self::FullObject),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }
}

/// A multipart object's checksum from its parts' raw checksums and sizes,
/// in part order, as S3 shows it: composite values end in `-N`. `None`
/// when `kind` is full-object and `algorithm` is not a CRC.
pub fn multipart_checksum(
    algorithm: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[(Vec<u8>, u64)],
) -> Option<String> {
    match kind {
        ChecksumType::Composite => {
            let mut summer = Checksummer::new(algorithm);
            for (raw, _) in parts {
                summer.update(raw);
            }
            Some(format!("{}-{}", summer.finish_base64(), parts.len()))
        }
        ChecksumType::FullObject => {
            let crc = algorithm.crc()?;
            let width = algorithm.digest_bytes();
            let mut combined: Option<u64> = None;
            for (raw, size_bytes) in parts {
                let mut be = [0u8; 8];
                be[8 - width..].copy_from_slice(raw);
                let value = u64::from_be_bytes(be);
                combined = Some(match combined {
                    None => value,
                    Some(acc) => crc_fast::checksum_combine(crc, acc, value, *size_bytes),
                });
            }
            let value = combined.unwrap_or(0).to_be_bytes();
            Some(BASE64.encode(&value[8 - width..]))
        }
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
    Crc64Nvme(crc_fast::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Checksummer {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => {
                State::Crc64Nvme(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => State::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(Sha256::new()),
        };
        Self { state }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(hasher) => hasher.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(digest) => digest.update(data),
            State::Sha1(hasher) => hasher.update(data),
            State::Sha256(hasher) => hasher.update(data),
        }
    }

    /// The raw digest (big-endian for the CRCs).
    pub fn finish_raw(self) -> Vec<u8> {
        match self.state {
            State::Crc32(hasher) => hasher.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(digest) => digest.finalize().to_be_bytes().to_vec(),
            State::Sha1(hasher) => hasher.finalize().to_vec(),
            State::Sha256(hasher) => hasher.finalize().to_vec(),
        }
    }

    /// The value as S3 sends it in `x-amz-checksum-*`: base64 of the digest.
    pub fn finish_base64(self) -> String {
        BASE64.encode(self.finish_raw())
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
            let encoded = one_shot(algorithm, b"x");
            assert_eq!(encoded.len(), 4 * algorithm.digest_bytes().div_ceil(3));
            assert!(algorithm.decode(&encoded).is_some());
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-SHA256"),
            Some(ChecksumAlgorithm::Sha256)
        );
        assert_eq!(
            ChecksumAlgorithm::from_name("crc64nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name(""), None);
    }

    #[test]
    fn sha1_and_crc64nvme_known_values() {
        // SHA-1("hello world") = 2aae6c35...; CRC-64/NVME check value
        // ("123456789") = 0xae8b14860a799888.
        assert_eq!(
            one_shot(ChecksumAlgorithm::Sha1, b"hello world"),
            BASE64.encode(hex::decode("2aae6c35c94fcfb415dbe95f408b9ce91ee846ed").unwrap())
        );
        assert_eq!(
            one_shot(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            BASE64.encode(0xae8b_1486_0a79_9888u64.to_be_bytes())
        );
    }

    #[test]
    fn full_object_crc_combines_parts() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let (a, b) = body.split_at(65_537);
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let raw = |data: &[u8]| {
                let mut summer = Checksummer::new(algorithm);
                summer.update(data);
                summer.finish_raw()
            };
            let parts = [(raw(a), a.len() as u64), (raw(b), b.len() as u64)];
            assert_eq!(
                multipart_checksum(algorithm, ChecksumType::FullObject, &parts),
                Some(one_shot(algorithm, &body)),
                "{algorithm}"
            );
        }
        let sha = [(vec![0u8; 20], 1)];
        assert_eq!(
            multipart_checksum(ChecksumAlgorithm::Sha1, ChecksumType::FullObject, &sha),
            None
        );
    }

    #[test]
    fn composite_hashes_the_part_checksums() {
        let parts = [(vec![1, 2, 3, 4], 5), (vec![5, 6, 7, 8], 6)];
        let expected = format!(
            "{}-2",
            one_shot(ChecksumAlgorithm::Crc32, &[1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(
            multipart_checksum(ChecksumAlgorithm::Crc32, ChecksumType::Composite, &parts),
            Some(expected)
        );
    }

    #[test]
    fn checksum_type_rules() {
        assert!(!ChecksumAlgorithm::Crc64Nvme.supports(ChecksumType::Composite));
        assert!(!ChecksumAlgorithm::Sha256.supports(ChecksumType::FullObject));
        assert!(ChecksumAlgorithm::Crc32.supports(ChecksumType::FullObject));
        assert_eq!(
            ChecksumAlgorithm::Crc64Nvme.default_type(),
            ChecksumType::FullObject
        );
        assert_eq!(
            ChecksumType::from_name("full_object"),
            Some(ChecksumType::FullObject)
        );
        assert_eq!(ChecksumAlgorithm::Crc32.decode("AAAA"), None);
    }
}
