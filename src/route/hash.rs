//! The object-to-shard hash. This is a storage format: changing it moves
//! every object, so it is pinned by test vectors.
//!
//! `shard = SipHash-1-3(key = "shoal/shard/v1\0\0", bucket ‖ 0x00 ‖ key) mod shards`.
//! The 0x00 separator cannot occur in a bucket name, so (bucket, key) pairs
//! never collide by concatenation.

use std::hash::Hasher;

use shoal_shard::ids::ShardIndex;
use siphasher::sip::SipHasher13;

/// Shard that holds bucket records.
pub const METADATA_SHARD: ShardIndex = ShardIndex(0);

const HASH_KEY: &[u8; 16] = b"shoal/shard/v1\0\0";

pub fn shard_of(bucket: &str, key: &str, shards: u16) -> ShardIndex {
    assert!(shards > 0);
    let mut hasher = SipHasher13::new_with_key(HASH_KEY);
    hasher.write(bucket.as_bytes());
    hasher.write(&[0]);
    hasher.write(key.as_bytes());
    ShardIndex((hasher.finish() % u64::from(shards)) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned outputs: if this fails, the storage format changed.
    #[test]
    fn fixed_vectors() {
        let vectors = [
            ("photos", "cat.jpg", 15, 527),
            ("bucket", "", 6, 822),
            ("b", "a/b/c", 11, 211),
            ("logs", "2026-11-26/x", 9, 121),
        ];
        for (bucket, key, of_16, of_1000) in vectors {
            assert_eq!(
                shard_of(bucket, key, 16),
                ShardIndex(of_16),
                "{bucket}/{key}"
            );
            assert_eq!(
                shard_of(bucket, key, 1000),
                ShardIndex(of_1000),
                "{bucket}/{key}"
            );
            assert_eq!(shard_of(bucket, key, 1), ShardIndex(0));
        }
    }

    #[test]
    fn spreads_keys_over_every_shard() {
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            seen[shard_of("bucket", &format!("key-{i}"), 8).as_usize()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn separator_keeps_bucket_and_key_apart() {
        let a = (0..64)
            .map(|s| shard_of("ab", &format!("c{s}"), 1024))
            .collect::<Vec<_>>();
        let b = (0..64)
            .map(|s| shard_of("a", &format!("bc{s}"), 1024))
            .collect::<Vec<_>>();
        assert_ne!(a, b);
    }
}
