//! S3 request authentication: AWS Signature Version 4, from the
//! `Authorization` header or from presigned-URL query parameters.
//!
//! This module owns the decision "who signed this request, and how must its
//! body be checked". It is pure and synchronous: the caller hands in the
//! request line and headers as received, the configured region, a lookup from
//! access key to secret, and the server clock, and gets back the access key
//! plus a [`PayloadMode`] saying what the body must satisfy (a SHA-256 digest,
//! nothing, or aws-chunked framing with per-chunk signatures, which
//! [`crate::s3::chunked`] checks as the body streams in). It never waits and
//! never reads the body.
//!
//! Design:
//! - The canonical request is built from the raw path and query exactly as
//!   they came off the wire ([`canonical`]), because S3 signs the path as
//!   sent, without normalising it or encoding it twice.
//! - Every client-supplied signature is compared in constant time
//!   ([`sigv4::verify`]).
//! - Checks run cheapest first: parsing, scope and clock, then the key
//!   lookup, then the four HMACs of the signing key and the signature.
//! - Bounds: clock skew [`CLOCK_SKEW_MAX`], presigned lifetime
//!   [`PRESIGNED_EXPIRES_S_MAX`]; client text echoed in errors is clipped to
//!   [`ECHO_BYTES_MAX`]. Allocation is proportional to the request head only.
//!
//! Error mapping: [`AuthError::s3_code`] and [`AuthError::http_status`] give
//! the AWS code and status for each failure.

pub mod canonical;
pub(crate) mod header;
pub mod post;
mod presigned;
mod sigv2;
pub mod sigv4;

#[cfg(test)]
pub(crate) mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::limits::CLOCK_SKEW_MAX;
use crate::limits::ECHO_BYTES_MAX;
use crate::limits::PRESIGNED_EXPIRES_S_MAX;
use canonical::{CanonicalRequest, QueryParam};
pub use sigv4::ChunkSigner;
use sigv4::{AmzDate, Credential, Signature};

/// `x-amz-content-sha256` values other than a hex digest.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The parts of a request that SigV4 covers, exactly as received.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// `PUT`, `GET`, ...
    pub method: &'a str,
    /// The path as sent on the wire, still percent-encoded, e.g. `/bucket/a%20b`.
    pub raw_path: &'a str,
    /// The query as sent, without `?`.
    pub raw_query: Option<&'a str>,
    /// Must include `host` (for HTTP/2, copy `:authority` into it).
    pub headers: &'a http::HeaderMap,
    /// The bucket a virtual-hosted request named in its `Host`, which
    /// SigV2 signs as the start of the resource.
    pub hosted_bucket: Option<&'a str>,
}

/// What the request body must satisfy, as declared by `x-amz-content-sha256`.
#[derive(Clone, Debug)]
pub enum PayloadMode {
    /// A literal hex digest was signed: the body must hash to it.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`, and presigned URLs without a content hash.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked, every chunk signed.
    StreamingSigned { seed: ChunkSigner },
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: as above, plus a signed trailer.
    StreamingSignedTrailer { seed: ChunkSigner },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, unsigned, with a trailer.
    StreamingUnsignedTrailer,
}

/// A request whose signature checked out.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub access_key: String,
    pub payload: PayloadMode,
}

/// Where the authentication came from; decides which malformed-request code
/// AWS uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthLocation {
    /// The `Authorization` header.
    Header,
    /// Presigned-URL query parameters.
    Query,
    /// The fields of a browser upload form (POST Object).
    Form,
}

impl std::fmt::Display for AuthLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Header => "Authorization header",
            Self::Query => "presigned query",
            Self::Form => "POST form",
        })
    }
}

/// Why a request failed authentication. Messages may quote client input
/// (clipped to [`ECHO_BYTES_MAX`]) but never secrets or expected signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned parameters: the caller
    /// decides between anonymous access and AccessDenied.
    #[error("request is not signed")]
    Missing,
    #[error("malformed {location}: {reason}")]
    Malformed {
        location: AuthLocation,
        reason: &'static str,
    },
    #[error("access key {access_key:?} does not exist")]
    UnknownAccessKey { access_key: String },
    #[error("signature does not match")]
    SignatureMismatch,
    #[error("credential region {got:?} is wrong; expecting {expected:?}")]
    WrongRegion {
        location: AuthLocation,
        expected: String,
        got: String,
    },
    /// Request time minus server time, against the allowed maximum.
    #[error("request time is {skew_s} s off the server clock; at most {skew_s_max} s allowed")]
    TimeSkewed { skew_s: i64, skew_s_max: u64 },
    #[error("presigned request expired {expired_ago_s} s ago")]
    Expired { expired_ago_s: i64 },
    #[error("unsupported {location} algorithm; use AWS4-HMAC-SHA256")]
    UnsupportedAlgorithm { location: AuthLocation },
    #[error("missing x-amz-content-sha256")]
    MissingContentSha256,
    #[error("invalid x-amz-content-sha256 {value:?}")]
    BadContentSha256 { value: String },
    /// A presigned request carried an `x-amz-*` header its signer did not
    /// sign (it could turn a PUT into a copy, or change the ACL).
    #[error("header {header:?} is present but not signed")]
    UnsignedHeader { header: String },
    #[error("only one authentication mechanism is allowed")]
    MultipleMechanisms,
    #[error("AWS Signature Version 2 is not accepted by this node (it runs without --sigv2); sign with AWS4-HMAC-SHA256")]
    SigV2Refused,
    #[error("malformed SigV2 request: {reason}")]
    MalformedV2 { reason: &'static str },
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    InvalidDate,
}

impl AuthError {
    /// The AWS error code for the XML reply.
    pub fn s3_code(&self) -> &'static str {
        let malformed_code = |location: &AuthLocation| match location {
            AuthLocation::Header => "AuthorizationHeaderMalformed",
            AuthLocation::Query => "AuthorizationQueryParametersError",
            AuthLocation::Form => "InvalidArgument",
        };
        match self {
            Self::Missing
            | Self::Expired { .. }
            | Self::UnsignedHeader { .. }
            | Self::SigV2Refused
            | Self::InvalidDate => "AccessDenied",
            Self::Malformed { location, .. } | Self::WrongRegion { location, .. } => {
                malformed_code(location)
            }
            Self::UnknownAccessKey { .. } => "InvalidAccessKeyId",
            Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::TimeSkewed { .. } => "RequestTimeTooSkewed",
            Self::UnsupportedAlgorithm {
                location: AuthLocation::Header,
            } => "InvalidRequest",
            Self::UnsupportedAlgorithm {
                location: AuthLocation::Query,
            } => "AuthorizationQueryParametersError",
            Self::UnsupportedAlgorithm {
                location: AuthLocation::Form,
            } => "InvalidArgument",
            Self::MissingContentSha256 => "InvalidRequest",
            Self::BadContentSha256 { .. } | Self::MultipleMechanisms | Self::MalformedV2 { .. } => {
                "InvalidArgument"
            }
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::Missing
            | Self::UnknownAccessKey { .. }
            | Self::SignatureMismatch
            | Self::TimeSkewed { .. }
            | Self::Expired { .. }
            | Self::UnsignedHeader { .. }
            | Self::SigV2Refused
            | Self::InvalidDate => 403,
            Self::Malformed { .. }
            | Self::WrongRegion { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MissingContentSha256
            | Self::BadContentSha256 { .. }
            | Self::MultipleMechanisms
            | Self::MalformedV2 { .. } => 400,
        }
    }
}

fn malformed(location: AuthLocation, reason: &'static str) -> AuthError {
    AuthError::Malformed { location, reason }
}

/// Copies client text into an error, clipped to [`ECHO_BYTES_MAX`].
fn echo(text: &str) -> String {
    let mut end = text.len().min(ECHO_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Presigned parameters; any of them marks a request as query-signed.
const PRESIGN_MARKERS: [&[u8]; 3] = [b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Signature"];

/// Checks the request's SigV4 signature (header or presigned) against the
/// secret `secret_for` returns for its access key, with `now` as the server
/// clock. `region` is the one region this node serves; SigV2 is checked
/// when `sigv2` allows it, else refused.
pub fn authenticate(
    req: &RequestParts,
    region: &str,
    sigv2: bool,
    secret_for: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let params = canonical::parse_query(req.raw_query);
    let ctx = Context {
        req,
        params: &params,
        region,
        secret_for,
        now_unix_s: unix_s(now),
    };
    let presigned = params
        .iter()
        .any(|p| PRESIGN_MARKERS.contains(&p.name.as_slice()));
    let mut authorization = req.headers.get_all(http::header::AUTHORIZATION).iter();
    match (authorization.next(), presigned) {
        (Some(_), true) => Err(AuthError::MultipleMechanisms),
        (Some(value), false) => {
            if authorization.next().is_some() {
                return Err(malformed(
                    AuthLocation::Header,
                    "more than one Authorization header",
                ));
            }
            match value.to_str() {
                Ok(text) if text.starts_with("AWS ") => match sigv2 {
                    true => sigv2::authenticate_header(&ctx, text),
                    false => Err(AuthError::SigV2Refused),
                },
                _ => header::authenticate(&ctx, value),
            }
        }
        (None, true) => presigned::authenticate(&ctx),
        (None, false) => {
            // SigV2 query signing, answered rather than taken as anonymous.
            let v2_query = params.iter().any(|p| p.name == b"AWSAccessKeyId");
            match (v2_query, sigv2) {
                (true, true) => sigv2::authenticate_query(&ctx),
                (true, false) => Err(AuthError::SigV2Refused),
                (false, _) => Err(AuthError::Missing),
            }
        }
    }
}

fn unix_s(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Everything both mechanisms need while checking one request.
struct Context<'a> {
    req: &'a RequestParts<'a>,
    params: &'a [QueryParam],
    region: &'a str,
    secret_for: &'a dyn Fn(&str) -> Option<String>,
    now_unix_s: i64,
}

/// The parts of a signature that have been parsed and are ready to check.
struct SignedFields<'a> {
    location: AuthLocation,
    credential: Credential<'a>,
    date: AmzDate,
    signed_headers: Vec<&'a str>,
    hashed_payload: &'a str,
    /// `X-Amz-Signature` is left out of the canonical query when presigned.
    skip_param: Option<&'static [u8]>,
    signature: Signature,
}

/// `x-amz-content-sha256` interpreted; the text itself is what gets signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayloadHash {
    Digest([u8; 32]),
    Unsigned,
    StreamingSigned,
    StreamingSignedTrailer,
    StreamingUnsignedTrailer,
}

impl PayloadHash {
    fn parse(value: &str) -> Result<Self, AuthError> {
        match value {
            UNSIGNED_PAYLOAD => Ok(Self::Unsigned),
            STREAMING_SIGNED => Ok(Self::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(Self::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(Self::StreamingUnsignedTrailer),
            _ => sigv4::parse_signature(value)
                .map(Self::Digest)
                .ok_or_else(|| AuthError::BadContentSha256 { value: echo(value) }),
        }
    }
}

impl Context<'_> {
    /// Region and scope-date checks shared by both mechanisms.
    fn check_scope(&self, fields: &SignedFields) -> Result<(), AuthError> {
        let credential = &fields.credential;
        if credential.service != sigv4::SERVICE {
            return Err(malformed(fields.location, "credential service must be s3"));
        }
        // `US` is S3's old name for us-east-1, and s3cmd's default.
        let legacy_us_east_1 = credential.region == "US" && self.region == "us-east-1";
        if credential.region != self.region && !legacy_us_east_1 {
            return Err(AuthError::WrongRegion {
                location: fields.location,
                expected: self.region.to_owned(),
                got: echo(credential.region),
            });
        }
        if credential.date != fields.date.date() {
            return Err(malformed(
                fields.location,
                "credential date does not match the request date",
            ));
        }
        Ok(())
    }

    /// Looks up the secret, rebuilds the canonical request and checks the
    /// signature; returns the signing key for chunk verification.
    fn check_signature(&self, fields: &SignedFields) -> Result<[u8; 32], AuthError> {
        let access_key = fields.credential.access_key;
        let secret = (self.secret_for)(access_key).ok_or_else(|| AuthError::UnknownAccessKey {
            access_key: echo(access_key),
        })?;
        let canonical = CanonicalRequest {
            method: self.req.method,
            raw_path: self.req.raw_path,
            params: self.params,
            skip_param: fields.skip_param,
            headers: self.req.headers,
            signed_headers: &fields.signed_headers,
            hashed_payload: fields.hashed_payload,
        }
        .to_bytes();
        let scope = fields.credential.scope();
        let to_sign = sigv4::string_to_sign(fields.date.as_str(), &scope, &canonical);
        let key = sigv4::signing_key(
            &secret,
            fields.credential.date,
            fields.credential.region,
            fields.credential.service,
        );
        if sigv4::verify(&key, &to_sign, &fields.signature) {
            Ok(key)
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }

    /// Builds the result once the signature has been accepted.
    fn accept(&self, fields: &SignedFields, payload: PayloadHash, key: [u8; 32]) -> Authenticated {
        let seed = || {
            ChunkSigner::new(
                key,
                fields.date.as_str().to_owned(),
                fields.credential.scope(),
                fields.signature,
            )
        };
        let payload = match payload {
            PayloadHash::Digest(digest) => PayloadMode::Sha256(digest),
            PayloadHash::Unsigned => PayloadMode::Unsigned,
            PayloadHash::StreamingSigned => PayloadMode::StreamingSigned { seed: seed() },
            PayloadHash::StreamingSignedTrailer => {
                PayloadMode::StreamingSignedTrailer { seed: seed() }
            }
            PayloadHash::StreamingUnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
        };
        Authenticated {
            access_key: fields.credential.access_key.to_owned(),
            payload,
        }
    }
}
