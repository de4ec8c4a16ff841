//! The aws-chunked body of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads:
//! each chunk is `hex(len);chunk-signature=SIG\r\n<data>\r\n`, and each SIG
//! signs the chunk's SHA-256 together with the previous signature, starting
//! from the request's own (the seed); a zero-length chunk ends the body.
//!
//! Pure and allocation-free per chunk: the chunk hashes come precomputed
//! with the payload buffer, so a chunk costs one HMAC over ~200 bytes.

use hmac::Mac;

use super::{HmacSha256, EMPTY_SHA256_HEX};

const CHUNK_ALGORITHM: &str = "AWS4-HMAC-SHA256-PAYLOAD";
const SIGNATURE_FIELD: &str = ";chunk-signature=";
/// Hex digits of a signature.
pub const SIGNATURE_HEX_BYTES: usize = 64;

/// Signs successive chunks of one body.
pub struct ChunkSigner {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    previous_hex: [u8; SIGNATURE_HEX_BYTES],
}

impl ChunkSigner {
    /// `seed` is the request signature from the `Authorization` header.
    pub fn new(key: [u8; 32], amz_date: &str, scope: &str, seed: &[u8; 32]) -> ChunkSigner {
        let mut previous_hex = [0u8; SIGNATURE_HEX_BYTES];
        hex::encode_to_slice(seed, &mut previous_hex).expect("64 hex digits for 32 bytes");
        ChunkSigner {
            key,
            amz_date: amz_date.to_string(),
            scope: scope.to_string(),
            previous_hex,
        }
    }

    /// The signature (hex) of the next chunk, whose data hashes to
    /// `chunk_sha256`; it becomes the previous one for the chunk after.
    pub fn sign(&mut self, chunk_sha256: &[u8; 32]) -> [u8; SIGNATURE_HEX_BYTES] {
        let mut chunk_hex = [0u8; SIGNATURE_HEX_BYTES];
        hex::encode_to_slice(chunk_sha256, &mut chunk_hex).expect("64 hex digits for 32 bytes");
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [
            CHUNK_ALGORITHM.as_bytes(),
            b"\n",
            self.amz_date.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &self.previous_hex,
            b"\n",
            EMPTY_SHA256_HEX.as_bytes(),
            b"\n",
            &chunk_hex,
        ] {
            mac.update(part);
        }
        let signature: [u8; 32] = mac.finalize().into_bytes().into();
        hex::encode_to_slice(signature, &mut self.previous_hex)
            .expect("64 hex digits for 32 bytes");
        self.previous_hex
    }
}

/// Bytes of one chunk's header line: `hex(len);chunk-signature=SIG\r\n`.
pub fn header_bytes(data_bytes: usize) -> usize {
    hex_digits(data_bytes) + SIGNATURE_FIELD.len() + SIGNATURE_HEX_BYTES + 2
}

/// Writes one chunk's header line.
pub fn write_header(out: &mut impl bytes::BufMut, data_bytes: usize, signature_hex: &[u8]) {
    let mut digits = [0u8; 16];
    let n = hex_digits(data_bytes);
    let mut value = data_bytes;
    for slot in digits[..n].iter_mut().rev() {
        *slot = b"0123456789abcdef"[value & 0xf];
        value >>= 4;
    }
    out.put_slice(&digits[..n]);
    out.put_slice(SIGNATURE_FIELD.as_bytes());
    out.put_slice(signature_hex);
    out.put_slice(b"\r\n");
}

/// Bytes on the wire of an aws-chunked body carrying `decoded_bytes` in
/// chunks of `chunk_bytes`, final zero-length chunk included: the
/// request's `Content-Length`.
pub fn encoded_length(decoded_bytes: u64, chunk_bytes: usize) -> u64 {
    assert!(chunk_bytes > 0);
    let full = decoded_bytes / chunk_bytes as u64;
    let rest = (decoded_bytes % chunk_bytes as u64) as usize;
    let per_full = (header_bytes(chunk_bytes) + chunk_bytes + 2) as u64;
    let mut total = full * per_full;
    if rest > 0 {
        total += (header_bytes(rest) + rest + 2) as u64;
    }
    total + (header_bytes(0) + 2) as u64
}

fn hex_digits(mut value: usize) -> usize {
    let mut n = 1;
    while value >= 16 {
        value >>= 4;
        n += 1;
    }
    n
}
