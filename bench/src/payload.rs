//! Object bodies, built once and reused: one random buffer per object size,
//! handed to every request as a `Bytes` clone (a reference count, no copy),
//! with its SHA-256 and its per-chunk SHA-256s computed once up front, so a
//! signed or chunked PUT costs the client no hashing per request.
//!
//! Contents come from a generator seeded by the size, so a later run (say a
//! GET with `--no-prepare`) can verify objects an earlier one wrote. Every
//! object of one size therefore has the same bytes; the server under test
//! does not deduplicate, and the README says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::limits::CHUNK_PAYLOAD_BYTES;

/// One reusable object body.
pub struct Payload {
    pub data: Bytes,
    /// Hex SHA-256 of `data`, for `--payload signed`.
    pub sha256_hex: String,
    /// SHA-256 of each `CHUNK_PAYLOAD_BYTES` slice of `data`, then of the
    /// empty final chunk, for `--payload chunked`.
    pub chunk_sha256: Arc<[[u8; 32]]>,
}

impl Payload {
    pub fn new(size_bytes: u64) -> Payload {
        let size =
            usize::try_from(size_bytes).expect("object sizes are checked against OBJECT_BYTES_MAX");
        let mut data = vec![0u8; size];
        rand::rngs::StdRng::seed_from_u64(size_bytes).fill_bytes(&mut data);
        let data = Bytes::from(data);
        let sha256_hex = hex::encode(Sha256::digest(&data));
        let chunk_sha256: Arc<[[u8; 32]]> = data
            .chunks(CHUNK_PAYLOAD_BYTES)
            .map(|c| Sha256::digest(c).into())
            .chain(std::iter::once(Sha256::digest(b"").into()))
            .collect();
        Payload {
            data,
            sha256_hex,
            chunk_sha256,
        }
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The payloads of one invocation, by size, kept across scenario steps.
#[derive(Default)]
pub struct PayloadPool {
    by_size: BTreeMap<u64, Arc<Payload>>,
}

impl PayloadPool {
    pub fn get(&mut self, size_bytes: u64) -> Arc<Payload> {
        self.by_size
            .entry(size_bytes)
            .or_insert_with(|| Arc::new(Payload::new(size_bytes)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_deterministic_per_size_and_hashed_once() {
        let a = Payload::new(CHUNK_PAYLOAD_BYTES as u64 + 10);
        let b = Payload::new(CHUNK_PAYLOAD_BYTES as u64 + 10);
        assert_eq!(a.data, b.data);
        assert_eq!(a.sha256_hex, hex::encode(Sha256::digest(&a.data)));
        // One full chunk, one partial, one empty final chunk.
        assert_eq!(a.chunk_sha256.len(), 3);
        assert_eq!(a.chunk_sha256[2], <[u8; 32]>::from(Sha256::digest(b"")));
        assert_ne!(Payload::new(100).data[..], a.data[..100]);
    }

    #[test]
    fn pool_reuses_buffers() {
        let mut pool = PayloadPool::default();
        let first = pool.get(4096);
        let again = pool.get(4096);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.len(), 4096);
    }
}
