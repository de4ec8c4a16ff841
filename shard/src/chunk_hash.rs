//! A chunk's SHA-256: its address. Chunks are content-addressed: the blob
//! index maps a chunk hash to where this node's blob log holds the bytes,
//! manifests refer to chunks by it, and every read checks the bytes
//! against it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 of a chunk's bytes. Serialized (in snapshots) as the bare
/// 32 bytes, as before it had a type of its own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChunkHash([u8; ChunkHash::BYTES]);

impl ChunkHash {
    /// Bytes in a hash.
    pub const BYTES: usize = 32;

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> ChunkHash {
        ChunkHash(Sha256::digest(bytes).into())
    }

    /// A hash as it travels in protobuf messages and keys; `None` unless
    /// `bytes` is exactly [`ChunkHash::BYTES`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<ChunkHash> {
        <[u8; ChunkHash::BYTES]>::try_from(bytes)
            .ok()
            .map(ChunkHash)
    }

    pub const fn from_array(bytes: [u8; ChunkHash::BYTES]) -> ChunkHash {
        ChunkHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; ChunkHash::BYTES] {
        &self.0
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// Lower-case hex, as logs and errors show it.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; ChunkHash::BYTES]> for ChunkHash {
    fn from(bytes: [u8; ChunkHash::BYTES]) -> ChunkHash {
        ChunkHash(bytes)
    }
}

impl std::fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkHash({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_bytes_and_reads_back_only_full_length_slices() {
        let hash = ChunkHash::of(b"abc");
        assert_eq!(
            hash.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ChunkHash::from_slice(&hash.to_vec()), Some(hash));
        assert_eq!(ChunkHash::from_slice(&hash.as_bytes()[..31]), None);
        assert_eq!(ChunkHash::from_slice(&[0; 33]), None);
    }
}
