//! Tests for [`super::authenticate`]: the AWS published S3 examples, and
//! requests signed by an independent, deliberately plain signer below.
//! `s3::chunked`'s tests use the helpers to follow a signed request into
//! its body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::*;

pub(crate) const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub(crate) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const AMZ_DATE: &str = "20130524T000000Z";
pub(crate) const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
/// 2013-05-24T00:00:00Z.
const EXAMPLE_UNIX_S: u64 = 1_369_353_600;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(crate) fn at(offset_s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(EXAMPLE_UNIX_S.saturating_add_signed(offset_s))
}

fn secrets(access_key: &str) -> Option<String> {
    (access_key == ACCESS_KEY).then(|| SECRET.to_owned())
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            HeaderValue::from_str(value).expect("valid header value"),
        );
    }
    map
}

pub(crate) fn auth_header(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// Splits `/path?query` as a server would see it on the wire.
fn parts<'a>(method: &'a str, target: &'a str, headers: &'a HeaderMap) -> RequestParts<'a> {
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    RequestParts {
        method,
        raw_path,
        raw_query,
        headers,
        hosted_bucket: None,
    }
}

pub(crate) fn run(
    method: &str,
    target: &str,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    authenticate(
        &parts(method, target, headers),
        REGION,
        false,
        &secrets,
        now,
    )
}

/// An independent SigV4 signer: takes the canonical request as literal text
/// and signs it with nothing but the hmac crate.
fn reference_sign(
    secret: &str,
    date: &str,
    region: &str,
    timestamp: &str,
    canonical_request: &str,
) -> String {
    let mac = |key: &[u8], data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let key = mac(
        &mac(
            &mac(&mac(format!("AWS4{secret}").as_bytes(), date), region),
            "s3",
        ),
        "aws4_request",
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let hashed = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    hex::encode(mac(
        &key,
        &format!("AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{hashed}"),
    ))
}

fn sign(canonical_request: &str) -> String {
    reference_sign(SECRET, "20130524", REGION, AMZ_DATE, canonical_request)
}

// ---- The AWS "Examples of signature calculations" for S3 ----

fn get_object_headers(signature: &str) -> HeaderMap {
    headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            &auth_header("host;range;x-amz-content-sha256;x-amz-date", signature),
        ),
    ])
}

const GET_OBJECT_SIGNATURE: &str =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

#[test]
fn aws_example_get_object_canonical_request() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    let canonical = canonical::CanonicalRequest {
        method: "GET",
        raw_path: "/test.txt",
        params: &[],
        skip_param: None,
        headers: &map,
        signed_headers: &["host", "range", "x-amz-content-sha256", "x-amz-date"],
        hashed_payload: EMPTY_SHA256,
    }
    .to_bytes();
    let expected = format!(
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
         x-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{AMZ_DATE}\n\n\
         host;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"
    );
    assert_eq!(String::from_utf8(canonical).expect("ASCII"), expected);
    assert_eq!(
        sign(&expected),
        GET_OBJECT_SIGNATURE,
        "reference signer agrees with AWS"
    );
}

#[test]
fn aws_example_get_object() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    let auth = run("GET", "/test.txt", &map, at(60)).expect("AWS example verifies");
    assert_eq!(auth.access_key, ACCESS_KEY);
    let empty: [u8; 32] = Sha256::digest(b"").into();
    assert!(matches!(auth.payload, PayloadMode::Sha256(digest) if digest == empty));
}

#[test]
fn aws_example_put_object() {
    // `$` in the key arrives bare and is signed as %24; Date is signed too.
    let payload_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    assert_eq!(
        hex::encode(Sha256::digest(b"Welcome to Amazon S3.")),
        payload_hash
    );
    let signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class";
    let map = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", payload_hash),
        (
            "authorization",
            &auth_header(
                signed,
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        ),
    ]);
    let auth = run("PUT", "/test$file.text", &map, at(0)).expect("AWS example verifies");
    assert!(
        matches!(auth.payload, PayloadMode::Sha256(digest) if hex::encode(digest) == payload_hash)
    );
    // The same request with the key already encoded signs identically.
    assert!(run("PUT", "/test%24file.text", &map, at(0)).is_ok());
}

#[test]
fn aws_example_get_bucket_lifecycle() {
    let map = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &auth_header(
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            ),
        ),
    ]);
    assert!(run("GET", "/?lifecycle", &map, at(0)).is_ok());
    assert_eq!(
        run("GET", "/?lifecycle=", &map, at(0)).map(|_| ()),
        Ok(()),
        "same canonical query"
    );
    assert_eq!(
        run("GET", "/?acl", &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn aws_example_list_objects() {
    let map = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &auth_header(
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            ),
        ),
    ]);
    assert!(run("GET", "/?max-keys=2&prefix=J", &map, at(0)).is_ok());
    // Parameter order on the wire does not matter.
    assert!(run("GET", "/?prefix=J&max-keys=2", &map, at(0)).is_ok());
    assert_eq!(
        run("GET", "/?max-keys=3&prefix=J", &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";
const PRESIGNED_SIGNATURE: &str =
    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn presigned_target(extra: &str) -> String {
    format!("/test.txt?{PRESIGNED_QUERY}{extra}&X-Amz-Signature={PRESIGNED_SIGNATURE}")
}

fn presigned_host() -> HeaderMap {
    headers(&[("host", "examplebucket.s3.amazonaws.com")])
}

#[test]
fn aws_example_presigned_url() {
    let map = presigned_host();
    let auth = run("GET", &presigned_target(""), &map, at(3600)).expect("AWS example verifies");
    assert_eq!(auth.access_key, ACCESS_KEY);
    assert!(matches!(auth.payload, PayloadMode::Unsigned));
    // Signature first on the wire: still excluded from the canonical query.
    let reordered = format!("/test.txt?X-Amz-Signature={PRESIGNED_SIGNATURE}&{PRESIGNED_QUERY}");
    assert!(run("GET", &reordered, &map, at(3600)).is_ok());
}

#[test]
fn presigned_expiry_window() {
    let map = presigned_host();
    let target = presigned_target("");
    assert!(
        run("GET", &target, &map, at(86400)).is_ok(),
        "last valid second"
    );
    assert_eq!(
        run("GET", &target, &map, at(86401)).map(|_| ()),
        Err(AuthError::Expired { expired_ago_s: 1 })
    );
    assert!(
        run("GET", &target, &map, at(-14 * 60)).is_ok(),
        "signer clock slightly ahead"
    );
    let err = run("GET", &target, &map, at(-16 * 60)).expect_err("too far in the future");
    assert_eq!(
        err,
        AuthError::TimeSkewed {
            skew_s: 16 * 60,
            skew_s_max: 900
        }
    );
}

#[test]
fn presigned_tampering() {
    let map = presigned_host();
    // An added parameter, a changed one, a changed method or path.
    let added = presigned_target("&response-content-type=text%2Fhtml");
    assert_eq!(
        run("GET", &added, &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    let longer = presigned_target("").replace("X-Amz-Expires=86400", "X-Amz-Expires=86401");
    assert_eq!(
        run("GET", &longer, &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        run("PUT", &presigned_target(""), &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    let other_key = presigned_target("").replace("/test.txt", "/test.tx");
    assert_eq!(
        run("GET", &other_key, &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    let other_host = headers(&[("host", "otherbucket.s3.amazonaws.com")]);
    assert_eq!(
        run("GET", &presigned_target(""), &other_host, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    // An unsigned x-amz-* header could turn the request into something else.
    let mut copy = presigned_host();
    copy.insert(
        "x-amz-copy-source",
        HeaderValue::from_static("/secret/object"),
    );
    let err = run("GET", &presigned_target(""), &copy, at(0)).expect_err("unsigned header");
    assert_eq!(
        err,
        AuthError::UnsignedHeader {
            header: "x-amz-copy-source".into()
        }
    );
    assert_eq!((err.s3_code(), err.http_status()), ("AccessDenied", 403));
    // Other unsigned headers are fine, as in AWS.
    let mut ua = presigned_host();
    ua.insert("user-agent", HeaderValue::from_static("curl"));
    assert!(run("GET", &presigned_target(""), &ua, at(0)).is_ok());
}

#[test]
fn presigned_malformed_parameters() {
    let map = presigned_host();
    let base = presigned_target("");
    let cases = [
        base.replace("&X-Amz-Date=20130524T000000Z", ""),
        base.replace("X-Amz-Expires=86400", "X-Amz-Expires=0"),
        base.replace("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
        base.replace("X-Amz-Expires=86400", "X-Amz-Expires=-1"),
        base.replace("X-Amz-Expires=86400", "X-Amz-Expires=1e3"),
        base.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
        base.replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524"),
        base.replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
        base.replace("%2Faws4_request", "%2Faws5_request"),
        base.replace("%2Fs3%2F", "%2Fec2%2F"),
        format!("{base}&X-Amz-Date=20130524T000000Z"),
        base.replace(PRESIGNED_SIGNATURE, "abc"),
        format!("/test.txt?X-Amz-Signature={PRESIGNED_SIGNATURE}"),
    ];
    for target in &cases {
        let err = run("GET", target, &map, at(0)).expect_err(target);
        assert!(
            matches!(
                err,
                AuthError::Malformed {
                    location: AuthLocation::Query,
                    ..
                }
            ),
            "{target}: {err:?}"
        );
        assert_eq!(err.s3_code(), "AuthorizationQueryParametersError");
    }
    let sha1 = base.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    assert_eq!(
        run("GET", &sha1, &map, at(0)).map(|_| ()),
        Err(AuthError::UnsupportedAlgorithm {
            location: AuthLocation::Query
        })
    );
    let region = base.replace("us-east-1", "eu-west-1");
    assert!(matches!(
        run("GET", &region, &map, at(0)),
        Err(AuthError::WrongRegion { .. })
    ));
    let unknown = base.replace(ACCESS_KEY, "AKIDUNKNOWN");
    assert_eq!(
        run("GET", &unknown, &map, at(0)).map(|_| ()),
        Err(AuthError::UnknownAccessKey {
            access_key: "AKIDUNKNOWN".into()
        })
    );
}

#[test]
fn presigned_with_content_sha256() {
    // A presigned PUT whose signer fixed the body hash.
    let body_hash = hex::encode(Sha256::digest(b"body"));
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256={body_hash}\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
    );
    let canonical = format!("PUT\n/bucket/key\n{query}\nhost:localhost:9000\n\nhost\n{body_hash}");
    let target = format!("/bucket/key?{query}&X-Amz-Signature={}", sign(&canonical));
    let map = headers(&[("host", "localhost:9000")]);
    let auth = run("PUT", &target, &map, at(0)).expect("verifies");
    assert!(matches!(auth.payload, PayloadMode::Sha256(d) if hex::encode(d) == body_hash));
    // Streaming needs a header-signed seed; refused in a presigned URL.
    let streaming = target.replace(&body_hash, STREAMING_SIGNED);
    assert!(matches!(
        run("PUT", &streaming, &map, at(0)),
        Err(AuthError::BadContentSha256 { .. })
    ));
}

// ---- Requests signed by the reference signer ----

/// Headers of a PUT signed by the reference signer, with `x-amz-content-sha256: <payload>`.
pub(crate) fn signed_put(canonical_uri: &str, canonical_query: &str, payload: &str) -> HeaderMap {
    let canonical = format!(
        "PUT\n{canonical_uri}\n{canonical_query}\nhost:localhost:9000\nx-amz-content-sha256:{payload}\n\
         x-amz-date:{AMZ_DATE}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}"
    );
    headers(&[
        ("host", "localhost:9000"),
        ("x-amz-content-sha256", payload),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            &auth_header("host;x-amz-content-sha256;x-amz-date", &sign(&canonical)),
        ),
    ])
}

#[test]
fn encoded_path_and_query() {
    // Space, plus, unicode and a literal percent in the key; the query sent
    // with a raw space-as-plus and an unencoded slash.
    let target = "/bucket/a%20b%2Bc%C3%A9%25?prefix=x+y/z&list-type=2";
    let map = signed_put(
        "/bucket/a%20b%2Bc%C3%A9%25",
        "list-type=2&prefix=x%20y%2Fz",
        UNSIGNED_PAYLOAD,
    );
    let auth = run("PUT", target, &map, at(0)).expect("verifies");
    assert!(matches!(auth.payload, PayloadMode::Unsigned));
}

#[test]
fn payload_modes() {
    for (value, check) in [
        (
            UNSIGNED_PAYLOAD,
            (|p: &PayloadMode| matches!(p, PayloadMode::Unsigned)) as fn(&PayloadMode) -> bool,
        ),
        (STREAMING_SIGNED, |p| {
            matches!(p, PayloadMode::StreamingSigned { .. })
        }),
        (STREAMING_SIGNED_TRAILER, |p| {
            matches!(p, PayloadMode::StreamingSignedTrailer { .. })
        }),
        (STREAMING_UNSIGNED_TRAILER, |p| {
            matches!(p, PayloadMode::StreamingUnsignedTrailer)
        }),
    ] {
        let map = signed_put("/b/k", "", value);
        let auth = run("PUT", "/b/k", &map, at(0)).expect(value);
        assert!(check(&auth.payload), "{value}: {:?}", auth.payload);
    }
    for bad in [
        "",
        "abc",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        &"g".repeat(64),
        &"a".repeat(500),
    ] {
        let map = signed_put("/b/k", "", bad);
        let err = run("PUT", "/b/k", &map, at(0)).expect_err(bad);
        assert!(
            matches!(&err, AuthError::BadContentSha256 { value } if value.len() <= ECHO_BYTES_MAX),
            "{err:?}"
        );
        assert_eq!((err.s3_code(), err.http_status()), ("InvalidArgument", 400));
    }
    let mut map = signed_put("/b/k", "", UNSIGNED_PAYLOAD);
    map.remove("x-amz-content-sha256");
    assert_eq!(
        run("PUT", "/b/k", &map, at(0)).map(|_| ()),
        Err(AuthError::MissingContentSha256)
    );
}

#[test]
fn date_header_instead_of_x_amz_date() {
    let canonical = format!(
        "GET\n/b/k\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:localhost:9000\n\
         x-amz-content-sha256:{EMPTY_SHA256}\n\ndate;host;x-amz-content-sha256\n{EMPTY_SHA256}"
    );
    let map = headers(&[
        ("host", "localhost:9000"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &auth_header("date;host;x-amz-content-sha256", &sign(&canonical)),
        ),
    ]);
    assert!(run("GET", "/b/k", &map, at(0)).is_ok());
}

#[test]
fn header_values_canonicalised() {
    // Spaces around and inside values, a repeated header, an uppercase name on the wire.
    let canonical = format!(
        "GET\n/b/k\n\nhost:localhost:9000\nx-amz-content-sha256:{EMPTY_SHA256}\n\
         x-amz-date:{AMZ_DATE}\nx-amz-meta-note:a b c,d\n\n\
         host;x-amz-content-sha256;x-amz-date;x-amz-meta-note\n{EMPTY_SHA256}"
    );
    let map = headers(&[
        ("host", "localhost:9000"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", AMZ_DATE),
        ("X-Amz-Meta-Note", "  a   b  c "),
        ("x-amz-meta-note", "d"),
        (
            "authorization",
            &auth_header(
                "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note",
                &sign(&canonical),
            ),
        ),
    ]);
    assert!(run("GET", "/b/k", &map, at(0)).is_ok());
}

#[test]
fn wrong_secret_region_key() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    let wrong_secret = |_: &str| Some("not-the-secret".to_owned());
    assert_eq!(
        authenticate(
            &parts("GET", "/test.txt", &map),
            REGION,
            false,
            &wrong_secret,
            at(0)
        )
        .map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
    let err = authenticate(
        &parts("GET", "/test.txt", &map),
        "eu-west-1",
        false,
        &secrets,
        at(0),
    )
    .expect_err("region");
    assert_eq!(
        err,
        AuthError::WrongRegion {
            location: AuthLocation::Header,
            expected: "eu-west-1".into(),
            got: REGION.into()
        }
    );
    assert_eq!(
        (err.s3_code(), err.http_status()),
        ("AuthorizationHeaderMalformed", 400)
    );
    let nobody = |_: &str| None;
    let err = authenticate(
        &parts("GET", "/test.txt", &map),
        REGION,
        false,
        &nobody,
        at(0),
    )
    .expect_err("unknown");
    assert_eq!(
        err,
        AuthError::UnknownAccessKey {
            access_key: ACCESS_KEY.into()
        }
    );
    assert_eq!(
        (err.s3_code(), err.http_status()),
        ("InvalidAccessKeyId", 403)
    );
    // A signature off by one bit.
    let flipped = GET_OBJECT_SIGNATURE.replace("f0e8", "f0e9");
    let map = get_object_headers(&flipped);
    assert_eq!(
        run("GET", "/test.txt", &map, at(0)).map(|_| ()),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn clock_skew() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    assert!(run("GET", "/test.txt", &map, at(15 * 60)).is_ok());
    assert!(run("GET", "/test.txt", &map, at(-15 * 60)).is_ok());
    let late = run("GET", "/test.txt", &map, at(15 * 60 + 1)).expect_err("too old");
    assert_eq!(
        late,
        AuthError::TimeSkewed {
            skew_s: -901,
            skew_s_max: 900
        }
    );
    assert_eq!(
        (late.s3_code(), late.http_status()),
        ("RequestTimeTooSkewed", 403)
    );
    let early = run("GET", "/test.txt", &map, at(-15 * 60 - 1)).expect_err("from the future");
    assert_eq!(
        early,
        AuthError::TimeSkewed {
            skew_s: 901,
            skew_s_max: 900
        }
    );
    // A server clock before 1970 must not overflow anything.
    assert!(run(
        "GET",
        "/test.txt",
        &map,
        UNIX_EPOCH - Duration::from_secs(10)
    )
    .is_err());
}

#[test]
fn signed_headers_must_include_host() {
    let canonical = format!(
        "GET\n/b/k\n\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{AMZ_DATE}\n\n\
         x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"
    );
    let map = headers(&[
        ("host", "localhost:9000"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            &auth_header("x-amz-content-sha256;x-amz-date", &sign(&canonical)),
        ),
    ]);
    let err = run("GET", "/b/k", &map, at(0)).expect_err("host unsigned");
    assert_eq!(
        err,
        AuthError::Malformed {
            location: AuthLocation::Header,
            reason: "SignedHeaders must include host"
        }
    );
}

#[test]
fn garbage_authorization_headers() {
    let sig = GET_OBJECT_SIGNATURE;
    let cases = [
        String::new(),
        " ".into(),
        "AWS4-HMAC-SHA256".into(),
        "AWS4-HMAC-SHA256 ".into(),
        "AWS4-HMAC-SHA256 Credential".into(),
        "AWS4-HMAC-SHA256 Credential=,SignedHeaders=,Signature=".into(),
        "AWS4-HMAC-SHA256 ,,,".into(),
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=zz".into(),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host,Signature={sig},Extra=1"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=HOST,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host;;,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host,Signature={}", &sig[..63]),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host,Signature={sig}0"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3,SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/2013/us-east-1/s3/aws4_request,SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential=/{SCOPE},SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130525/us-east-1/s3/aws4_request,SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/sqs/aws4_request,SignedHeaders=host,Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders=host;\u{e9},Signature={sig}"),
        "AWS4-HMAC-SHA256 Credential=é/é/é/é/é".into(),
        "AWS4-HMAC-SHA256 =".repeat(1000),
    ];
    for value in &cases {
        let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
        map.remove("authorization");
        // Non-ASCII bytes are legal in a HeaderValue; from_bytes keeps them.
        map.insert(
            "authorization",
            HeaderValue::from_bytes(value.as_bytes()).expect("no control bytes"),
        );
        let err = run("GET", "/test.txt", &map, at(0)).expect_err(value);
        assert!(
            matches!(
                err,
                AuthError::Malformed {
                    location: AuthLocation::Header,
                    ..
                }
            ),
            "{value:?}: {err:?}"
        );
    }
    // SigV2 on a node without --sigv2 is refused by name.
    let mut map = presigned_host();
    let v2 = "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=";
    map.insert("authorization", HeaderValue::from_static(v2));
    let err = run("GET", "/test.txt", &map, at(0)).expect_err(v2);
    assert_eq!(err, AuthError::SigV2Refused);
    for value in ["Bearer token", "aws4-hmac-sha256 x"] {
        let mut map = presigned_host();
        map.insert("authorization", HeaderValue::from_static(value));
        let err = run("GET", "/test.txt", &map, at(0)).expect_err(value);
        assert_eq!(
            err,
            AuthError::UnsupportedAlgorithm {
                location: AuthLocation::Header
            }
        );
        assert_eq!((err.s3_code(), err.http_status()), ("InvalidRequest", 400));
    }
    // Two Authorization headers.
    let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
    map.append(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
    );
    assert!(matches!(
        run("GET", "/test.txt", &map, at(0)),
        Err(AuthError::Malformed { .. })
    ));
    // Missing or garbage dates.
    for date in [None, Some("yesterday"), Some("20130524T250000Z")] {
        let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
        map.remove("x-amz-date");
        if let Some(date) = date {
            map.insert("x-amz-date", HeaderValue::from_static(date));
        }
        assert!(
            matches!(
                run("GET", "/test.txt", &map, at(0)),
                Err(AuthError::Malformed { .. })
            ),
            "{date:?}"
        );
    }
}

#[test]
fn which_mechanism() {
    let empty = headers(&[("host", "localhost")]);
    assert_eq!(
        run("GET", "/b/k", &empty, at(0)).map(|_| ()),
        Err(AuthError::Missing)
    );
    assert_eq!(
        run("GET", "/b/k?prefix=a&x-id=GetObject", &empty, at(0)).map(|_| ()),
        Err(AuthError::Missing)
    );
    let err = run(
        "GET",
        "/b/k?AWSAccessKeyId=AK&Signature=x&Expires=1",
        &empty,
        at(0),
    )
    .expect_err("sigv2");
    assert_eq!(err, AuthError::SigV2Refused);
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    let err = run("GET", &presigned_target(""), &map, at(0)).expect_err("both");
    assert_eq!(err, AuthError::MultipleMechanisms);
    assert_eq!((err.s3_code(), err.http_status()), ("InvalidArgument", 400));
    assert_eq!(
        (
            AuthError::Missing.s3_code(),
            AuthError::Missing.http_status()
        ),
        ("AccessDenied", 403)
    );
}

#[test]
fn garbage_queries_never_panic() {
    let map = presigned_host();
    let alphabet = b"XAmz-=&%0123456789abcdefSignatureCredentialAlgorithm+/_.~";
    let mut seed = 42u64;
    for round in 0..3000 {
        let mut query = String::from(if round % 2 == 0 {
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
        } else {
            ""
        });
        for _ in 0..(round % 120) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            query.push(char::from(alphabet[(seed >> 33) as usize % alphabet.len()]));
        }
        let target = format!("/k?{query}");
        let _ = run("GET", &target, &map, at(0));
    }
}

#[test]
fn error_codes() {
    let cases = [
        (
            AuthError::Malformed {
                location: AuthLocation::Header,
                reason: "x",
            },
            "AuthorizationHeaderMalformed",
            400,
        ),
        (
            AuthError::Malformed {
                location: AuthLocation::Query,
                reason: "x",
            },
            "AuthorizationQueryParametersError",
            400,
        ),
        (AuthError::SignatureMismatch, "SignatureDoesNotMatch", 403),
        (AuthError::Expired { expired_ago_s: 1 }, "AccessDenied", 403),
        (AuthError::MissingContentSha256, "InvalidRequest", 400),
        (
            AuthError::WrongRegion {
                location: AuthLocation::Query,
                expected: "a".into(),
                got: "b".into(),
            },
            "AuthorizationQueryParametersError",
            400,
        ),
    ];
    for (err, code, status) in cases {
        assert_eq!((err.s3_code(), err.http_status()), (code, status), "{err}");
    }
}
