//! The keys of server-side encryption: each object's random data key, and
//! the two keys that seal it: the node master key (SSE-S3) or the client's
//! own key (SSE-C), which is never stored.
//!
//! Sealing is AES-256-GCM: a wrong key fails the tag instead of yielding a
//! wrong data key. An SSE-C key is checked before that by a salted
//! HMAC-SHA256 digest, so a wrong key is told apart from damage.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// AES-256 keys are 32 bytes.
pub const KEY_BYTES: usize = 32;
/// A GCM nonce.
const NONCE_BYTES: usize = 12;
/// Bound into every sealed data key, so a sealed key is never mistaken for
/// another kind of GCM message under the same key.
const SEAL_LABEL: &[u8] = b"shoal sse data key v1";
/// Prefix of the hash a master key's fingerprint is taken from.
const FINGERPRINT_LABEL: &[u8] = b"shoal sse master key id v1";

/// Overwrites key bytes before their memory is given back.
fn wipe(bytes: &mut [u8; KEY_BYTES]) {
    for byte in bytes.iter_mut() {
        // SAFETY: `byte` is a valid, aligned, exclusive reference.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
}

/// An object's AES-256 data key: random per object (or multipart upload),
/// stored only sealed.
#[derive(Clone)]
pub struct DataKey([u8; KEY_BYTES]);

impl DataKey {
    pub fn random() -> DataKey {
        DataKey(rand::random())
    }

    pub fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Seals `data` under `key`: nonce, ciphertext and tag.
fn seal(key: &[u8; KEY_BYTES], data: &DataKey) -> Vec<u8> {
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let payload = Payload {
        msg: data.bytes(),
        aad: SEAL_LABEL,
    };
    let sealed = Aes256Gcm::new(key.into())
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM seals 32 bytes");
    [nonce.as_slice(), &sealed].concat()
}

/// The data key `sealed` holds, if `key` sealed it and nothing changed it.
fn open(key: &[u8; KEY_BYTES], sealed: &[u8]) -> Option<DataKey> {
    let (nonce, sealed) = sealed.split_at_checked(NONCE_BYTES)?;
    let payload = Payload {
        msg: sealed,
        aad: SEAL_LABEL,
    };
    let opened = Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), payload)
        .ok()?;
    let bytes: [u8; KEY_BYTES] = opened.as_slice().try_into().ok()?;
    Some(DataKey(bytes))
}

/// The node master key (SSE-S3). Every node of a cluster holds the same
/// one; its fingerprint is stored with what it sealed.
pub struct MasterKey {
    key: [u8; KEY_BYTES],
    id: String,
}

impl MasterKey {
    pub fn new(key: [u8; KEY_BYTES]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_LABEL)
            .chain_update(key)
            .finalize();
        MasterKey {
            key,
            id: hex::encode(&digest[..8]),
        }
    }

    /// The key's fingerprint: names it in errors and logs, reveals nothing.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, data: &DataKey) -> Vec<u8> {
        seal(&self.key, data)
    }

    pub fn open(&self, sealed: &[u8]) -> Option<DataKey> {
        open(&self.key, sealed)
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// A client's SSE-C key as one request presented it, already checked
/// against the MD5 the client sent with it.
pub struct CustomerKey {
    key: [u8; KEY_BYTES],
    /// The key's MD5 as the client sent it (base64); echoed in responses.
    md5_base64: String,
}

impl CustomerKey {
    pub fn new(key: [u8; KEY_BYTES], md5_base64: String) -> CustomerKey {
        CustomerKey { key, md5_base64 }
    }

    pub fn md5_base64(&self) -> &str {
        &self.md5_base64
    }

    /// HMAC-SHA256 of the key under `salt`: what is stored to recognise it.
    pub fn digest(&self, salt: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC takes any key");
        mac.update(&self.key);
        mac.finalize().into_bytes().into()
    }

    /// Whether this is the key whose digest under `salt` is `digest`
    /// (compared in constant time).
    pub fn matches(&self, salt: &[u8], digest: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC takes any key");
        mac.update(&self.key);
        mac.verify_slice(digest).is_ok()
    }

    pub fn seal(&self, data: &DataKey) -> Vec<u8> {
        seal(&self.key, data)
    }

    pub fn open(&self, sealed: &[u8]) -> Option<DataKey> {
        open(&self.key, sealed)
    }

    /// Whether `other` is the same key.
    pub fn same_as(&self, other: &CustomerKey) -> bool {
        let salt = [0u8; 16];
        other.matches(&salt, &self.digest(&salt))
    }
}

impl Drop for CustomerKey {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomerKey(md5 {})", self.md5_base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_under_its_sealing_key() {
        let master = MasterKey::new([7; KEY_BYTES]);
        let data = DataKey::random();
        let sealed = master.seal(&data);
        assert_eq!(master.open(&sealed).unwrap().bytes(), data.bytes());
        assert!(MasterKey::new([8; KEY_BYTES]).open(&sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(master.open(&flipped).is_none(), "the tag covers the bytes");
        assert!(master.open(&sealed[..10]).is_none());
        // Two seals of one key differ (fresh nonces).
        assert_ne!(master.seal(&data), sealed);
    }

    #[test]
    fn a_customer_key_is_recognised_by_its_salted_digest() {
        let key = CustomerKey::new([1; KEY_BYTES], String::new());
        let other = CustomerKey::new([2; KEY_BYTES], String::new());
        let salt = [9u8; 16];
        let digest = key.digest(&salt);
        assert!(key.matches(&salt, &digest));
        assert!(!other.matches(&salt, &digest));
        assert!(!key.matches(&[8u8; 16], &digest), "the salt is part of it");
        assert!(key.same_as(&CustomerKey::new([1; KEY_BYTES], String::new())));
        assert!(!key.same_as(&other));
    }

    #[test]
    fn fingerprints_name_keys_without_revealing_them() {
        let a = MasterKey::new([3; KEY_BYTES]);
        assert_eq!(a.id().len(), 16);
        assert_eq!(a.id(), MasterKey::new([3; KEY_BYTES]).id());
        assert_ne!(a.id(), MasterKey::new([4; KEY_BYTES]).id());
        assert!(!format!("{a:?}").contains("0303"));
    }
}
