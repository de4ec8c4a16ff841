//! SigV4 primitives shared by header and presigned authentication and by the
//! aws-chunked decoder: the credential scope, the `x-amz-date` timestamp, the
//! signing-key derivation, the string to sign, and [`ChunkSigner`], which
//! carries the chain of chunk signatures from the seed signature onwards.
//!
//! Every comparison against a client-supplied signature goes through
//! `Mac::verify_slice`, which compares in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm accepted, in `Authorization` and `X-Amz-Algorithm`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope; Shoal speaks only S3.
pub const SERVICE: &str = "s3";
/// Last component of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";
/// Hex SHA-256 of the empty string; it appears in every chunk string to sign.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const CHUNK_ALGORITHM: &str = "AWS4-HMAC-SHA256-PAYLOAD";
const TRAILER_ALGORITHM: &str = "AWS4-HMAC-SHA256-TRAILER";
/// `YYYYMMDDTHHMMSSZ`.
const AMZ_DATE_BYTES: usize = 16;
/// `YYYYMMDD`.
const SCOPE_DATE_BYTES: usize = 8;

/// A raw SHA-256 signature: what the 64 hex characters on the wire decode to.
pub type Signature = [u8; 32];

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// Derives the SigV4 signing key:
/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut seed = Vec::with_capacity(4 + secret.len());
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    let date_key = hmac(&seed, date.as_bytes());
    let region_key = hmac(&date_key, region.as_bytes());
    let service_key = hmac(&region_key, service.as_bytes());
    hmac(&service_key, SCOPE_TERMINATOR.as_bytes())
}

/// `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    let digest = Sha256::digest(canonical_request);
    let mut out = String::with_capacity(ALGORITHM.len() + timestamp.len() + scope.len() + 67);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(timestamp);
    out.push('\n');
    out.push_str(scope);
    out.push('\n');
    out.push_str(&hex::encode(digest));
    out
}

/// Constant-time check of a client-supplied signature.
pub fn verify(signing_key: &[u8; 32], string_to_sign: &str, provided: &Signature) -> bool {
    let mut mac = new_mac(signing_key);
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(provided).is_ok()
}

/// Decodes 64 hex digits (either case) into a signature.
pub fn parse_signature(text: &str) -> Option<Signature> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.as_bytes(), &mut out).ok()?;
    Some(out)
}

/// `AKID/20130524/us-east-1/s3/aws4_request`, split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl<'a> Credential<'a> {
    /// Splits from the right, so the four fixed parts are found even if an
    /// access key were to contain `/`. Returns the reason on failure.
    pub fn parse(text: &'a str) -> Result<Self, &'static str> {
        let mut parts = text.rsplitn(5, '/');
        let terminator = parts.next().unwrap_or("");
        let service = parts.next().ok_or("credential has too few parts")?;
        let region = parts.next().ok_or("credential has too few parts")?;
        let date = parts.next().ok_or("credential has too few parts")?;
        let access_key = parts.next().ok_or("credential has too few parts")?;
        if terminator != SCOPE_TERMINATOR {
            return Err("credential scope must end in aws4_request");
        }
        if access_key.is_empty() {
            return Err("credential has an empty access key");
        }
        if region.is_empty() {
            return Err("credential has an empty region");
        }
        if date.len() != SCOPE_DATE_BYTES || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err("credential date must be YYYYMMDD");
        }
        Ok(Self {
            access_key,
            date,
            region,
            service,
        })
    }

    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, SCOPE_TERMINATOR
        )
    }
}

/// A request timestamp in the form it is signed in (`20130524T000000Z`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmzDate {
    text: String,
    unix_s: i64,
}

impl AmzDate {
    /// Parses the ISO 8601 basic form used by `x-amz-date` / `X-Amz-Date`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != AMZ_DATE_BYTES {
            return None;
        }
        let format = format_description!("[year][month][day]T[hour][minute][second]Z");
        let parsed = PrimitiveDateTime::parse(text, format).ok()?;
        Some(Self {
            text: text.to_owned(),
            unix_s: parsed.assume_utc().unix_timestamp(),
        })
    }

    /// Parses an IMF-fixdate `Date` header (`Fri, 24 May 2013 00:00:00 GMT`),
    /// which SigV4 accepts when `x-amz-date` is absent, or the same time
    /// with a numeric UTC zone (`+0000`, or RFC 2822's `-0000`, which
    /// Python's `email.utils.formatdate` writes).
    pub fn parse_http_date(text: &str) -> Option<Self> {
        let format = format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        );
        let text = text.trim();
        let local = [" GMT", " UTC", " +0000", " -0000"]
            .iter()
            .find_map(|zone| text.strip_suffix(zone))?;
        let parsed = PrimitiveDateTime::parse(local, format).ok()?;
        let utc = parsed.assume_utc();
        Some(Self {
            text: format_amz_date(utc)?,
            unix_s: utc.unix_timestamp(),
        })
    }

    /// `20130524T000000Z`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `20130524`, the part that must match the credential scope.
    pub fn date(&self) -> &str {
        &self.text[..SCOPE_DATE_BYTES]
    }

    pub fn unix_s(&self) -> i64 {
        self.unix_s
    }
}

fn format_amz_date(at: OffsetDateTime) -> Option<String> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let text = at.format(format).ok()?;
    // Years past 9999 format wider; they cannot be signed in this form.
    (text.len() == AMZ_DATE_BYTES).then_some(text)
}

/// The state a streaming upload needs to check each chunk signature: the
/// signing key, the request timestamp and scope, and the last signature in
/// the chain (the seed signature from the request before the first chunk).
#[derive(Clone)]
pub struct ChunkSigner {
    signing_key: [u8; 32],
    timestamp: String,
    scope: String,
    previous: Signature,
}

impl ChunkSigner {
    pub fn new(signing_key: [u8; 32], timestamp: String, scope: String, seed: Signature) -> Self {
        Self {
            signing_key,
            timestamp,
            scope,
            previous: seed,
        }
    }

    /// The last signature in the chain: the seed until a chunk is accepted.
    #[cfg(test)]
    pub fn previous_signature(&self) -> &Signature {
        &self.previous
    }

    fn chunk_mac(&self, chunk_sha256: &[u8; 32]) -> HmacSha256 {
        let mut previous_hex = [0u8; 64];
        let mut chunk_hex = [0u8; 64];
        // Both buffers are exactly twice the input length.
        hex::encode_to_slice(self.previous, &mut previous_hex).expect("64-byte hex buffer");
        hex::encode_to_slice(chunk_sha256, &mut chunk_hex).expect("64-byte hex buffer");
        let mut mac = new_mac(&self.signing_key);
        for piece in [
            CHUNK_ALGORITHM.as_bytes(),
            b"\n",
            self.timestamp.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &previous_hex,
            b"\n",
            EMPTY_SHA256_HEX.as_bytes(),
            b"\n",
            &chunk_hex,
        ] {
            mac.update(piece);
        }
        mac
    }

    fn trailer_mac(&self, trailer_sha256: &[u8; 32]) -> HmacSha256 {
        let mut previous_hex = [0u8; 64];
        let mut trailer_hex = [0u8; 64];
        hex::encode_to_slice(self.previous, &mut previous_hex).expect("64-byte hex buffer");
        hex::encode_to_slice(trailer_sha256, &mut trailer_hex).expect("64-byte hex buffer");
        let mut mac = new_mac(&self.signing_key);
        for piece in [
            TRAILER_ALGORITHM.as_bytes(),
            b"\n",
            self.timestamp.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &previous_hex,
            b"\n",
            &trailer_hex,
        ] {
            mac.update(piece);
        }
        mac
    }

    /// Checks the signature of a chunk whose data hashes to `chunk_sha256`;
    /// on success it becomes the previous signature for the next chunk.
    pub fn verify_chunk(&mut self, chunk_sha256: &[u8; 32], provided: &Signature) -> bool {
        let ok = self.chunk_mac(chunk_sha256).verify_slice(provided).is_ok();
        if ok {
            self.previous = *provided;
        }
        ok
    }

    /// Checks `x-amz-trailer-signature`; `trailer_sha256` covers the trailer
    /// lines as `name:value\n`, excluding the signature line.
    pub fn verify_trailer(&mut self, trailer_sha256: &[u8; 32], provided: &Signature) -> bool {
        let ok = self
            .trailer_mac(trailer_sha256)
            .verify_slice(provided)
            .is_ok();
        if ok {
            self.previous = *provided;
        }
        ok
    }

    /// Client side of [`Self::verify_chunk`]: signs the next chunk.
    #[cfg(test)]
    pub fn sign_chunk(&mut self, chunk_sha256: &[u8; 32]) -> Signature {
        self.previous = self.chunk_mac(chunk_sha256).finalize().into_bytes().into();
        self.previous
    }

    /// Client side of [`Self::verify_trailer`].
    #[cfg(test)]
    pub fn sign_trailer(&mut self, trailer_sha256: &[u8; 32]) -> Signature {
        self.previous = self
            .trailer_mac(trailer_sha256)
            .finalize()
            .into_bytes()
            .into();
        self.previous
    }
}

impl std::fmt::Debug for ChunkSigner {
    // The signing key is a credential for the whole day and region: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .field("previous", &hex::encode(self.previous))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn credential_parses_and_rejects() {
        let cred = Credential::parse("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request")
            .expect("valid credential");
        assert_eq!(cred.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(cred.date, "20130524");
        assert_eq!(cred.region, "us-east-1");
        assert_eq!(cred.service, "s3");
        assert_eq!(cred.scope(), "20130524/us-east-1/s3/aws4_request");
        for bad in [
            "",
            "/",
            "AK/20130524/us-east-1/s3",
            "AK/20130524/us-east-1/s3/aws4_requestX",
            "/20130524/us-east-1/s3/aws4_request",
            "AK/2013052/us-east-1/s3/aws4_request",
            "AK/2013052x/us-east-1/s3/aws4_request",
            "AK/20130524//s3/aws4_request",
            "AK/20130524/us-east-1/s3/aws4_request/",
        ] {
            assert!(Credential::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amz_date_forms() {
        let date = AmzDate::parse("20130524T000000Z").expect("valid date");
        assert_eq!(date.unix_s(), 1_369_353_600);
        assert_eq!(date.date(), "20130524");
        let http = AmzDate::parse_http_date("Fri, 24 May 2013 00:00:00 GMT").expect("valid date");
        assert_eq!(http, date);
        for bad in [
            "",
            "20130524",
            "20130524T000000",
            "20131324T000000Z",
            "2013-05-24T00:00:00Z",
        ] {
            assert!(AmzDate::parse(bad).is_none(), "{bad:?}");
        }
        assert!(AmzDate::parse_http_date("24 May 2013").is_none());
        for zone in ["-0000", "+0000", "UTC"] {
            let numeric = format!("Fri, 24 May 2013 00:00:00 {zone}");
            assert_eq!(
                AmzDate::parse_http_date(&numeric),
                Some(date.clone()),
                "{zone}"
            );
        }
        assert!(AmzDate::parse_http_date("Fri, 24 May 2013 00:00:00 +0200").is_none());
    }

    #[test]
    fn signing_key_matches_aws_example() {
        // From the AWS SigV4 documentation ("Deriving the signing key"), for
        // 20120215/us-east-1/iam.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn chunk_sign_and_verify_chain() {
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        let seed = [7u8; 32];
        let mut signer = ChunkSigner::new(
            key,
            "20130524T000000Z".into(),
            "20130524/us-east-1/s3/aws4_request".into(),
            seed,
        );
        let mut verifier = signer.clone();
        let digest: [u8; 32] = Sha256::digest(b"data").into();
        let sig = signer.sign_chunk(&digest);
        let mut wrong = sig;
        wrong[0] ^= 1;
        assert!(!verifier.verify_chunk(&digest, &wrong));
        assert_eq!(
            verifier.previous_signature(),
            &seed,
            "a failed check must not advance"
        );
        assert!(verifier.verify_chunk(&digest, &sig));
        assert_eq!(verifier.previous_signature(), &sig);
        let trailer = signer.sign_trailer(&digest);
        assert!(verifier.verify_trailer(&digest, &trailer));
        assert!(!format!("{verifier:?}").contains(&hex::encode(key)));
    }

    #[test]
    fn parse_signature_requires_64_hex() {
        assert!(parse_signature(&"ab".repeat(32)).is_some());
        assert!(parse_signature(&"AB".repeat(32)).is_some());
        assert!(parse_signature(&"ab".repeat(31)).is_none());
        assert!(parse_signature(&"zz".repeat(32)).is_none());
        assert!(parse_signature("").is_none());
    }
}
