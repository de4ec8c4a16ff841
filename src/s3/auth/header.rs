//! Authentication from the `Authorization` header:
//! `AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
//! SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
//!
//! The request time comes from `x-amz-date` (or `Date` when that is absent)
//! and must be within [`CLOCK_SKEW_MAX`] of the server clock; the payload
//! hash comes from `x-amz-content-sha256`, which S3 requires.

use http::HeaderValue;

use super::sigv4::{self, AmzDate, Credential};
use super::{
    canonical, malformed, AuthError, AuthLocation, Authenticated, Context, PayloadHash,
    SignedFields, CLOCK_SKEW_MAX,
};

const LOCATION: AuthLocation = AuthLocation::Header;

/// The three components after the algorithm, still as text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthorizationFields<'a> {
    pub credential: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// Splits the header into its components. Components may come in any order,
/// separated by `,` with optional spaces; each must appear exactly once.
pub(crate) fn parse_authorization(text: &str) -> Result<AuthorizationFields<'_>, AuthError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(malformed(LOCATION, "Authorization is empty"));
    }
    let (algorithm, rest) = text.split_once(' ').unwrap_or((text, ""));
    if algorithm != sigv4::ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm { location: LOCATION });
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let component = component.trim();
        let Some((name, value)) = component.split_once('=') else {
            return Err(malformed(LOCATION, "Authorization component lacks '='"));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed(LOCATION, "unknown Authorization component")),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(LOCATION, "repeated Authorization component"));
        }
    }
    Ok(AuthorizationFields {
        credential: credential.ok_or(malformed(LOCATION, "missing Credential"))?,
        signed_headers: signed_headers.ok_or(malformed(LOCATION, "missing SignedHeaders"))?,
        signature: signature.ok_or(malformed(LOCATION, "missing Signature"))?,
    })
}

fn header_str<'h>(ctx: &Context<'h>, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut values = ctx.req.headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed(
            LOCATION,
            "repeated date or content-sha256 header",
        ));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| malformed(LOCATION, "date or content-sha256 header is not ASCII"))
}

fn request_date(ctx: &Context) -> Result<AmzDate, AuthError> {
    if let Some(text) = header_str(ctx, "x-amz-date")? {
        return AmzDate::parse(text.trim())
            .ok_or(malformed(LOCATION, "x-amz-date is not YYYYMMDDTHHMMSSZ"));
    }
    if let Some(text) = header_str(ctx, "date")? {
        return AmzDate::parse_http_date(text)
            .ok_or(malformed(LOCATION, "Date is not an HTTP date"));
    }
    Err(malformed(
        LOCATION,
        "a valid x-amz-date or Date header is required",
    ))
}

pub(super) fn authenticate(ctx: &Context, value: &HeaderValue) -> Result<Authenticated, AuthError> {
    let text = value
        .to_str()
        .map_err(|_| malformed(LOCATION, "Authorization is not visible ASCII"))?;
    let parsed = parse_authorization(text)?;
    let credential =
        Credential::parse(parsed.credential).map_err(|reason| malformed(LOCATION, reason))?;
    let signed_headers = canonical::parse_signed_headers(parsed.signed_headers)
        .map_err(|reason| malformed(LOCATION, reason))?;
    let signature = sigv4::parse_signature(parsed.signature)
        .ok_or(malformed(LOCATION, "Signature must be 64 hex digits"))?;
    let hashed_payload = header_str(ctx, "x-amz-content-sha256")?
        .map(str::trim)
        .ok_or(AuthError::MissingContentSha256)?;
    let payload = PayloadHash::parse(hashed_payload)?;
    let fields = SignedFields {
        location: LOCATION,
        credential,
        date: request_date(ctx)?,
        signed_headers,
        hashed_payload,
        skip_param: None,
        signature,
    };
    ctx.check_scope(&fields)?;
    let skew_s = fields.date.unix_s().saturating_sub(ctx.now_unix_s);
    if skew_s.unsigned_abs() > CLOCK_SKEW_MAX.as_secs() {
        return Err(AuthError::TimeSkewed {
            skew_s,
            skew_s_max: CLOCK_SKEW_MAX.as_secs(),
        });
    }
    let key = ctx.check_signature(&fields)?;
    Ok(ctx.accept(&fields, payload, key))
}
