//! Object bytes are encrypted with AES-256-CTR under the object's data
//! key, each chunk from its own random counter block. CTR can start at any
//! byte, so a range read decrypts only the bytes it sends, and encryption
//! keeps each chunk's length (chunk sizes and offsets stay those of the
//! plaintext).
//!
//! CTR alone does not detect changed bytes; the chunk's address does: it
//! is the SHA-256 of the ciphertext, which every read checks.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

use super::keys::DataKey;

/// A chunk's counter block.
pub const IV_BYTES: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// A fresh counter block for a new chunk. Random 128-bit starts under one
/// data key do not overlap in any realistic number of chunks.
pub fn random_iv() -> [u8; IV_BYTES] {
    rand::random()
}

/// Encrypts or decrypts (the same operation) `data`, which sits `offset`
/// bytes into the chunk encrypted from `iv`.
pub fn apply_keystream(key: &DataKey, iv: &[u8; IV_BYTES], offset: u64, data: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(key.bytes().into(), iv.into());
    cipher.seek(offset);
    cipher.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_slice_decrypts_on_its_own() {
        let key = DataKey::random();
        let iv = random_iv();
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let mut sealed = plain.clone();
        apply_keystream(&key, &iv, 0, &mut sealed);
        assert_ne!(sealed, plain);
        for (first, end) in [(0, 1), (5, 17), (16, 32), (4095, 4099), (9_999, 10_000)] {
            let mut piece = sealed[first..end].to_vec();
            apply_keystream(&key, &iv, first as u64, &mut piece);
            assert_eq!(piece, plain[first..end], "bytes {first}..{end}");
        }
    }

    #[test]
    fn the_counter_carries_across_its_low_bytes() {
        // A counter block whose low 64 bits are all ones: the keystream
        // must carry into the high half, not wrap within it.
        let key = DataKey::random();
        let mut iv = [0xFF; IV_BYTES];
        iv[0] = 0;
        let mut whole = vec![0u8; 64];
        apply_keystream(&key, &iv, 0, &mut whole);
        let mut tail = vec![0u8; 32];
        apply_keystream(&key, &iv, 32, &mut tail);
        assert_eq!(tail, whole[32..]);
    }
}
