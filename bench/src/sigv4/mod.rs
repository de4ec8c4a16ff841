//! AWS Signature Version 4 for S3, client side: the canonical request, the
//! string to sign, the day's signing key, the `Authorization` header, and
//! (in [`chunk`]) the per-chunk signature chain of aws-chunked uploads.
//!
//! Pure: no clock, no I/O. Callers pass the `x-amz-date` timestamp. Nothing
//! here is on a per-byte path: a request costs one SHA-256 of its canonical
//! text (a few hundred bytes) and one HMAC; the signing key is derived once
//! per day and cached by [`KeyCache`]. Payload hashes are computed by the
//! caller, once per reused payload buffer (see `payload.rs`).

pub mod chunk;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-content-sha256` for a body the signature does not cover.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` for an aws-chunked body with signed chunks.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// SHA-256 of the empty string, hex.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SERVICE: &str = "s3";

pub type HmacSha256 = Hmac<Sha256>;

/// An access key and its secret.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// The signing key of one day, region and service, with its scope string
/// (`20130524/us-east-1/s3/aws4_request`).
#[derive(Clone)]
pub struct SigningKey {
    key: [u8; 32],
    day: String,
    scope: String,
}

impl SigningKey {
    /// `day` is `YYYYMMDD`.
    pub fn derive(secret_key: &str, day: &str, region: &str) -> SigningKey {
        let mut key = hmac(format!("AWS4{secret_key}").as_bytes(), day.as_bytes());
        for part in [region, SERVICE, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        SigningKey {
            key,
            day: day.to_string(),
            scope: format!("{day}/{region}/{SERVICE}/aws4_request"),
        }
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

/// Keeps the last derived [`SigningKey`] and derives anew when the day
/// changes. One per worker, so it is never shared.
pub struct KeyCache {
    secret_key: String,
    region: String,
    key: Option<SigningKey>,
}

impl KeyCache {
    pub fn new(secret_key: &str, region: &str) -> KeyCache {
        KeyCache {
            secret_key: secret_key.to_string(),
            region: region.to_string(),
            key: None,
        }
    }

    /// The key for the day of `amz_date` (`YYYYMMDDTHHMMSSZ`).
    pub fn key(&mut self, amz_date: &str) -> &SigningKey {
        let day = &amz_date[..8];
        if self.key.as_ref().is_none_or(|k| k.day != day) {
            self.key = Some(SigningKey::derive(&self.secret_key, day, &self.region));
        }
        self.key.as_ref().expect("derived above")
    }
}

/// What a request signature covers. `path` and `query` are raw (not yet
/// URI-encoded); header names are lower case.
pub struct RequestToSign<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_hash: &'a str,
}

/// The canonical request text and the `SignedHeaders` list.
pub fn canonical_request(req: &RequestToSign<'_>) -> (String, String) {
    let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
    headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    query.sort();

    let mut text = String::with_capacity(256);
    text.push_str(req.method);
    text.push('\n');
    text.push_str(&uri_encode(req.path, false));
    text.push('\n');
    for (i, (k, v)) in query.iter().enumerate() {
        if i > 0 {
            text.push('&');
        }
        let _ = write!(text, "{k}={v}");
    }
    text.push('\n');
    let mut signed = String::with_capacity(96);
    for (i, (name, value)) in headers.iter().enumerate() {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        let _ = writeln!(text, "{name}:{}", value.trim());
        if i > 0 {
            signed.push(';');
        }
        signed.push_str(name);
    }
    text.push('\n');
    text.push_str(&signed);
    text.push('\n');
    text.push_str(req.payload_hash);
    (text, signed)
}

/// The string to sign for a request whose canonical text is `canonical`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// A signed request: the `Authorization` value and the signature itself,
/// which seeds the chunk chain of an aws-chunked body.
pub struct Signature {
    pub authorization: String,
    pub signature: [u8; 32],
}

pub fn sign(
    access_key: &str,
    key: &SigningKey,
    amz_date: &str,
    req: &RequestToSign<'_>,
) -> Signature {
    let (canonical, signed_headers) = canonical_request(req);
    let to_sign = string_to_sign(amz_date, key.scope(), &canonical);
    let signature = hmac(key.bytes(), to_sign.as_bytes());
    Signature {
        authorization: format!(
            "{ALGORITHM} Credential={access_key}/{}, SignedHeaders={signed_headers}, Signature={}",
            key.scope(),
            hex::encode(signature)
        ),
        signature,
    }
}

/// Percent-encodes all but RFC 3986 unreserved bytes, as SigV4 wants;
/// `/` stays literal in paths.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let literal = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !encode_slash);
        if literal {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
