//! Authentication from presigned-URL query parameters: `X-Amz-Algorithm`,
//! `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`
//! and `X-Amz-Signature` (left out of the canonical query).
//!
//! A presigned URL is valid from `X-Amz-Date` (allowing [`CLOCK_SKEW_MAX`]
//! of clock difference) for `X-Amz-Expires` seconds, at most
//! [`PRESIGNED_EXPIRES_S_MAX`]. The payload is `UNSIGNED-PAYLOAD` unless the
//! signer put `X-Amz-Content-Sha256` in the query. Because whoever holds the
//! URL may add headers, any `x-amz-*` header the signer did not sign is
//! refused.

use super::canonical::{self, QueryParam};
use super::sigv4::{self, AmzDate, Credential};
use super::{
    echo, malformed, AuthError, AuthLocation, Authenticated, Context, PayloadHash, SignedFields,
    CLOCK_SKEW_MAX, PRESIGNED_EXPIRES_S_MAX, UNSIGNED_PAYLOAD,
};

const LOCATION: AuthLocation = AuthLocation::Query;
const SIGNATURE_PARAM: &[u8] = b"X-Amz-Signature";
/// Sent by clients that know the body in advance; not a header here, so it
/// is exempt from the unsigned-header rule.
const CONTENT_SHA256_HEADER: &str = "x-amz-content-sha256";

/// The value of a parameter that may appear at most once.
fn optional<'p>(params: &'p [QueryParam], name: &str) -> Result<Option<&'p str>, AuthError> {
    let mut found = params.iter().filter(|p| p.name == name.as_bytes());
    let Some(param) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(malformed(LOCATION, "repeated X-Amz-* parameter"));
    }
    param
        .value_str()
        .map(Some)
        .ok_or(malformed(LOCATION, "X-Amz-* parameter is not UTF-8"))
}

fn required<'p>(
    params: &'p [QueryParam],
    name: &str,
    missing: &'static str,
) -> Result<&'p str, AuthError> {
    optional(params, name)?.ok_or(malformed(LOCATION, missing))
}

pub(super) fn authenticate(ctx: &Context) -> Result<Authenticated, AuthError> {
    let params = ctx.params;
    let algorithm = required(params, "X-Amz-Algorithm", "missing X-Amz-Algorithm")?;
    if algorithm != sigv4::ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm { location: LOCATION });
    }
    let credential = Credential::parse(required(
        params,
        "X-Amz-Credential",
        "missing X-Amz-Credential",
    )?)
    .map_err(|reason| malformed(LOCATION, reason))?;
    let date = AmzDate::parse(required(params, "X-Amz-Date", "missing X-Amz-Date")?)
        .ok_or(malformed(LOCATION, "X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    let expires_s: u64 = required(params, "X-Amz-Expires", "missing X-Amz-Expires")?
        .parse()
        .ok()
        .filter(|s| (1..=PRESIGNED_EXPIRES_S_MAX).contains(s))
        .ok_or(malformed(
            LOCATION,
            "X-Amz-Expires must be 1 to 604800 seconds",
        ))?;
    let signed_headers = canonical::parse_signed_headers(required(
        params,
        "X-Amz-SignedHeaders",
        "missing X-Amz-SignedHeaders",
    )?)
    .map_err(|reason| malformed(LOCATION, reason))?;
    let signature = sigv4::parse_signature(required(
        params,
        "X-Amz-Signature",
        "missing X-Amz-Signature",
    )?)
    .ok_or(malformed(LOCATION, "X-Amz-Signature must be 64 hex digits"))?;
    let hashed_payload = optional(params, "X-Amz-Content-Sha256")?.unwrap_or(UNSIGNED_PAYLOAD);
    let payload = match PayloadHash::parse(hashed_payload)? {
        // Streaming uploads need a seed signature from a header-signed request.
        hash @ (PayloadHash::Digest(_) | PayloadHash::Unsigned) => hash,
        _ => {
            return Err(AuthError::BadContentSha256 {
                value: echo(hashed_payload),
            })
        }
    };
    let fields = SignedFields {
        location: LOCATION,
        credential,
        date,
        signed_headers,
        hashed_payload,
        skip_param: Some(SIGNATURE_PARAM),
        signature,
    };
    ctx.check_scope(&fields)?;

    let signed_at_s = fields.date.unix_s();
    let early_s = signed_at_s.saturating_sub(ctx.now_unix_s);
    if early_s > 0 && early_s.unsigned_abs() > CLOCK_SKEW_MAX.as_secs() {
        return Err(AuthError::TimeSkewed {
            skew_s: early_s,
            skew_s_max: CLOCK_SKEW_MAX.as_secs(),
        });
    }
    // expires_s is at most seven days, so the cast is lossless.
    let expired_ago_s = ctx
        .now_unix_s
        .saturating_sub(signed_at_s.saturating_add(expires_s as i64));
    if expired_ago_s > 0 {
        return Err(AuthError::Expired { expired_ago_s });
    }

    for name in ctx.req.headers.keys() {
        let name = name.as_str();
        let unsigned = name.starts_with("x-amz-")
            && name != CONTENT_SHA256_HEADER
            && !fields.signed_headers.contains(&name);
        if unsigned {
            return Err(AuthError::UnsignedHeader { header: echo(name) });
        }
    }

    let key = ctx.check_signature(&fields)?;
    Ok(ctx.accept(&fields, payload, key))
}
