//! AWS Signature Version 2 (HMAC-SHA1) for clients that still sign with it
//! (s3cmd's default, the aws CLI v1's `presign`), on a node started with
//! `--sigv2`: the `Authorization: AWS <key>:<signature>` header and the
//! `?AWSAccessKeyId=&Expires=&Signature=` query.
//!
//! What is signed: the method, `Content-MD5`, `Content-Type`, the date
//! (`Date`, or the `Expires` of a query), every `x-amz-*` header, and the
//! resource with the subresources that select an operation. V2 signs no
//! digest of the body: it is checked only against what the client sends
//! (Content-MD5, checksums), as S3 does.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::sigv4::AmzDate;
use super::{echo, AuthError, Authenticated, Context, PayloadMode, CLOCK_SKEW_MAX};
use crate::limits::PRESIGNED_EXPIRES_S_MAX;

/// Query parameters that name a subresource, and so are part of the signed
/// resource: the ones SigV2 has always signed (as S3 documents them and
/// SDKs sign them).
const SIGNED_SUBRESOURCES: [&str; 33] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "storageClass",
];

/// Subresources added to S3 after SigV2 was frozen: some clients sign
/// them, others (botocore) do not, so a signature over either reading is
/// taken.
const NEWER_SUBRESOURCES: [&str; 8] = [
    "attributes",
    "encryption",
    "legal-hold",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "retention",
    "intelligent-tiering",
];

fn malformed(reason: &'static str) -> AuthError {
    AuthError::MalformedV2 { reason }
}

/// `Authorization: AWS <access key>:<base64 signature>`.
pub(super) fn authenticate_header(ctx: &Context, text: &str) -> Result<Authenticated, AuthError> {
    let credentials = text.strip_prefix("AWS ").ok_or(malformed(
        "the Authorization header is not AWS <key>:<signature>",
    ))?;
    let (access_key, signature) = credentials.trim().split_once(':').ok_or(malformed(
        "the Authorization header is not AWS <key>:<signature>",
    ))?;
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|_| malformed("the signature is not base64"))?;
    let amz_date = single_header(ctx, "x-amz-date")?;
    let date = single_header(ctx, "date")?;
    let when = match (amz_date, date) {
        (Some(text), _) | (None, Some(text)) => parse_date(text)?,
        (None, None) => return Err(AuthError::InvalidDate),
    };
    let skew_s = when.saturating_sub(ctx.now_unix_s);
    if skew_s.unsigned_abs() > CLOCK_SKEW_MAX.as_secs() {
        return Err(AuthError::TimeSkewed {
            skew_s,
            skew_s_max: CLOCK_SKEW_MAX.as_secs(),
        });
    }
    let secret = secret(ctx, access_key)?;
    // With x-amz-date the date line is empty, as S3 defines it; some
    // clients (botocore) sign the Date header there anyway.
    let date_lines = match amz_date {
        Some(_) => vec!["", date.unwrap_or("")],
        None => vec![date.unwrap_or("")],
    };
    let signed = date_lines.iter().any(|date_line| {
        resources(ctx, true).iter().any(|resource| {
            verify(
                &secret,
                &string_to_sign(ctx, date_line, resource),
                &signature,
            )
        })
    });
    match signed {
        true => Ok(accept(access_key)),
        false => Err(AuthError::SignatureMismatch),
    }
}

/// `?AWSAccessKeyId=<key>&Expires=<unix s>&Signature=<base64>`.
pub(super) fn authenticate_query(ctx: &Context) -> Result<Authenticated, AuthError> {
    let param = |name: &[u8]| {
        ctx.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value_str())
    };
    let access_key = param(b"AWSAccessKeyId").ok_or(malformed("no AWSAccessKeyId"))?;
    let expires_text = param(b"Expires").ok_or(malformed("no Expires"))?;
    let expires: i64 = expires_text
        .parse()
        .map_err(|_| malformed("Expires is not a number of seconds"))?;
    let signature = param(b"Signature")
        .and_then(|s| BASE64.decode(s).ok())
        .ok_or(malformed("no base64 Signature"))?;
    if expires < ctx.now_unix_s {
        return Err(AuthError::Expired {
            expired_ago_s: ctx.now_unix_s - expires,
        });
    }
    if expires - ctx.now_unix_s > PRESIGNED_EXPIRES_S_MAX as i64 {
        return Err(malformed("Expires is further away than 7 days"));
    }
    let secret = secret(ctx, access_key)?;
    // A presigned URL is handed to others: one signed without a newer
    // subresource must not be turned into that subresource's operation
    // (a bucket-creation URL into PutBucketEncryption), so every
    // subresource must be signed here.
    let signed = resources(ctx, false).iter().any(|resource| {
        verify(
            &secret,
            &string_to_sign(ctx, expires_text, resource),
            &signature,
        )
    });
    match signed {
        true => Ok(accept(access_key)),
        false => Err(AuthError::SignatureMismatch),
    }
}

fn accept(access_key: &str) -> Authenticated {
    Authenticated {
        access_key: access_key.to_string(),
        payload: PayloadMode::Unsigned,
    }
}

fn secret(ctx: &Context, access_key: &str) -> Result<String, AuthError> {
    (ctx.secret_for)(access_key).ok_or_else(|| AuthError::UnknownAccessKey {
        access_key: echo(access_key),
    })
}

fn verify(secret: &str, string_to_sign: &str, signature: &[u8]) -> bool {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(signature).is_ok()
}

fn single_header<'h>(ctx: &Context<'h>, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut values = ctx.req.headers.get_all(name).iter();
    let value = values.next();
    if values.next().is_some() {
        return Err(malformed("a date header is repeated"));
    }
    value
        .map(|v| v.to_str().map_err(|_| AuthError::InvalidDate))
        .transpose()
}

/// The request time (Unix s) of an HTTP date or an ISO 8601 basic one.
fn parse_date(text: &str) -> Result<i64, AuthError> {
    let text = text.trim();
    AmzDate::parse_http_date(text)
        .or_else(|| AmzDate::parse(text))
        .map(|date| date.unix_s())
        .ok_or(AuthError::InvalidDate)
}

/// The resources a client may have signed: with the newer subresources,
/// and without them too where `newer_optional`; and for a path-style
/// request to a bucket also with the `/` botocore signs after its name
/// (it signs as if the bucket were in the host).
fn resources(ctx: &Context, newer_optional: bool) -> Vec<String> {
    let path = ctx.req.raw_path;
    let bucket_only = ctx.req.hosted_bucket.is_none() && path.len() > 1 && !path[1..].contains('/');
    let mut readings = vec![canonical_resource(ctx, true)];
    let without_newer = canonical_resource(ctx, false);
    if newer_optional && without_newer != readings[0] {
        readings.push(without_newer);
    }
    if bucket_only {
        let slashed: Vec<String> = readings
            .iter()
            .map(|resource| {
                let (path, query) = resource.split_at(path.len());
                format!("{path}/{query}")
            })
            .collect();
        readings.extend(slashed);
    }
    readings
}

/// What V2 signs: method, Content-MD5, Content-Type, `date_line`, the
/// `x-amz-*` headers (names lower-case, sorted, values of one name joined
/// by `,`) and `resource`.
fn string_to_sign(ctx: &Context, date_line: &str, resource: &str) -> String {
    let headers = ctx.req.headers;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map_or("", str::trim)
    };
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        ctx.req.method,
        header("content-md5"),
        header("content-type"),
        date_line
    );
    let mut amz: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-"))
        .collect();
    amz.sort_unstable();
    amz.dedup();
    for name in amz {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("").trim())
            .collect();
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    out.push_str(resource);
    out
}

/// `/bucket/key` as sent (percent-encoded), then the subresources in name
/// order (the newer ones too with `newer`), their values decoded.
fn canonical_resource(ctx: &Context, newer: bool) -> String {
    let mut resource = String::new();
    if let Some(bucket) = ctx.req.hosted_bucket {
        resource.push('/');
        resource.push_str(bucket);
    }
    resource.push_str(ctx.req.raw_path);
    let mut subresources: Vec<(&str, Option<&str>)> = ctx
        .params
        .iter()
        .filter_map(|p| {
            let name = std::str::from_utf8(&p.name).ok()?;
            let signed = SIGNED_SUBRESOURCES.iter().chain(match newer {
                true => NEWER_SUBRESOURCES.iter(),
                false => [].iter(),
            });
            let name = signed.into_iter().find(|s| **s == name)?;
            Some((*name, p.value_str().filter(|_| !p.value.is_empty())))
        })
        .collect();
    subresources.sort_unstable();
    for (i, (name, value)) in subresources.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(name);
        if let Some(value) = value {
            resource.push('=');
            resource.push_str(value);
        }
    }
    resource
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::{authenticate, RequestParts};
    use super::*;

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    /// `Tue, 27 Mar 2007 19:36:42 +0000`, the date of S3's SigV2 example.
    const EXAMPLE_UNIX_S: u64 = 1_175_024_202;

    fn secret_for(access_key: &str) -> Option<String> {
        (access_key == ACCESS_KEY).then(|| SECRET.to_string())
    }

    fn check(
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        sigv2: bool,
        now_s: u64,
    ) -> Result<Authenticated, AuthError> {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let parts = RequestParts {
            method: "GET",
            raw_path: path,
            raw_query: query,
            headers: &map,
            hosted_bucket: None,
        };
        let now = UNIX_EPOCH + Duration::from_secs(now_s);
        authenticate(&parts, "us-east-1", sigv2, &secret_for, now)
    }

    #[test]
    fn the_documented_example_signs_in() {
        let headers = [
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
        ];
        let path = "/johnsmith/photos/puppy.jpg";
        let ok = check(path, None, &headers, true, EXAMPLE_UNIX_S).unwrap();
        assert_eq!(ok.access_key, ACCESS_KEY);
        assert!(matches!(ok.payload, PayloadMode::Unsigned));
        // Another path, another signature.
        let other = check(
            "/johnsmith/photos/kitten.jpg",
            None,
            &headers,
            true,
            EXAMPLE_UNIX_S,
        );
        assert_eq!(other.unwrap_err(), AuthError::SignatureMismatch);
        // A subresource is signed; an ordinary parameter is not.
        let acl = check(path, Some("acl"), &headers, true, EXAMPLE_UNIX_S);
        assert_eq!(acl.unwrap_err(), AuthError::SignatureMismatch);
        assert!(check(path, Some("x-id=GetObject"), &headers, true, EXAMPLE_UNIX_S).is_ok());
        // Refused outright on a node without --sigv2.
        let refused = check(path, None, &headers, false, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!(refused, AuthError::SigV2Refused);
        // Out of the clock's reach.
        let late = check(path, None, &headers, true, EXAMPLE_UNIX_S + 3600).unwrap_err();
        assert_eq!(late.s3_code(), "RequestTimeTooSkewed");
    }

    #[test]
    fn dates_and_malformed_headers_have_their_answers() {
        let path = "/b/k";
        let bad_date = [
            ("x-amz-date", "Bad Date"),
            ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:AAAA"),
        ];
        let err = check(path, None, &bad_date, true, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!((err.s3_code(), err.http_status()), ("AccessDenied", 403));
        let no_colon = [
            ("date", "Tue, 27 Mar 2007 19:36:42 GMT"),
            ("authorization", "AWS HAHAHA"),
        ];
        let err = check(path, None, &no_colon, true, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!((err.s3_code(), err.http_status()), ("InvalidArgument", 400));
    }

    #[test]
    fn query_signatures_expire() {
        let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(b"GET\n\n\n1175025000\n/b/k");
        let signature = BASE64.encode(mac.finalize().into_bytes());
        let encoded: String = signature
            .bytes()
            .map(|b| match b {
                b'+' => "%2B".to_string(),
                b'/' => "%2F".to_string(),
                b'=' => "%3D".to_string(),
                b => (b as char).to_string(),
            })
            .collect();
        let query = format!("AWSAccessKeyId={ACCESS_KEY}&Expires=1175025000&Signature={encoded}");
        let headers = [("host", "localhost")];
        assert!(check("/b/k", Some(&query), &headers, true, EXAMPLE_UNIX_S).is_ok());
        let err = check("/b/k", Some(&query), &headers, true, 1_175_025_001).unwrap_err();
        assert_eq!(err.s3_code(), "AccessDenied");
        let err = check("/b/other", Some(&query), &headers, true, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!(err, AuthError::SignatureMismatch);
        // A URL signed for the object must not serve an operation that a
        // newer subresource names: presigned signatures cover them all.
        let turned = format!("{query}&attributes");
        let err = check("/b/k", Some(&turned), &headers, true, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!(err, AuthError::SignatureMismatch);
    }

    #[test]
    fn header_signatures_may_leave_newer_subresources_out() {
        let date = "Tue, 27 Mar 2007 19:36:42 GMT";
        let sign = |resource: &str| {
            let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("GET\n\n\n{date}\n{resource}").as_bytes());
            format!(
                "AWS {ACCESS_KEY}:{}",
                BASE64.encode(mac.finalize().into_bytes())
            )
        };
        for signed in ["/b/k", "/b/k?attributes"] {
            let authorization = sign(signed);
            let headers = [("date", date), ("authorization", authorization.as_str())];
            assert!(
                check("/b/k", Some("attributes"), &headers, true, EXAMPLE_UNIX_S).is_ok(),
                "{signed}"
            );
        }
        // A classic subresource must be signed.
        let authorization = sign("/b/k");
        let headers = [("date", date), ("authorization", authorization.as_str())];
        let err = check("/b/k", Some("acl"), &headers, true, EXAMPLE_UNIX_S).unwrap_err();
        assert_eq!(err, AuthError::SignatureMismatch);
    }
}
