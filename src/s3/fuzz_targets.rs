//! Entry points for fuzzing what the S3 front end decodes from clients:
//! aws-chunked bodies, the Range header, every XML body it parses, the
//! SigV4 Authorization header and the request target and query. Each takes
//! arbitrary bytes and must return without panicking or looping; what it
//! finds wrong is an error value (the S3 error a client gets).
//!
//! A libFuzzer harness (cargo-fuzz, nightly) can call these as they are.
//! Without one, the property tests below run them over seeded mutations
//! of valid inputs (`shoal_shard::fuzz_targets::Mutations`), so every
//! build checks them.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::auth::canonical::{self, parse_signed_headers, CanonicalRequest};
use super::auth::header::parse_authorization;
use super::auth::sigv4::{parse_signature, ChunkSigner};
use super::checksum::ChecksumAlgorithm;
use super::chunked::{ChunkedDecoder, ChunkedMode};
use super::handlers::{acl, delete_objects, multipart};
use super::range::{resolve, RangeRequest};
use super::request::{parse_query, parse_target};
use super::xml::location_constraint;

/// The first byte picks the framing (unsigned with a trailer, signed,
/// signed with a trailer), whether a CRC32 trailer is declared, whether a
/// decoded length is, and the size of the pieces the rest is fed in.
pub fn aws_chunked(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let signer = || {
        let seed = parse_signature(&"0".repeat(64)).expect("64 hex digits");
        ChunkSigner::new(
            [7; 32],
            "20261207T000000Z".into(),
            "20261207/us-east-1/s3/aws4_request".into(),
            seed,
        )
    };
    let mode = match control % 3 {
        0 => ChunkedMode::UnsignedTrailer,
        1 => ChunkedMode::Signed(signer()),
        _ => ChunkedMode::SignedTrailer(signer()),
    };
    let trailer = (control & 4 != 0).then_some(ChecksumAlgorithm::Crc32);
    let mut decoder = ChunkedDecoder::new(mode, trailer);
    if control & 8 != 0 {
        decoder = decoder.with_decoded_length(u64::from(control));
    }
    let piece = usize::from(control >> 4) + 1;
    let mut decoded = 0usize;
    for part in body.chunks(piece) {
        if decoder.feed(part, &mut |out| decoded += out.len()).is_err() {
            return;
        }
    }
    assert!(decoded <= body.len(), "decoding never grows the body");
    let _ = decoder.finish();
}

/// A Range header against objects of several sizes: a partial answer lies
/// inside the object.
pub fn range_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for size in [0, 1, 1000, u64::MAX] {
        if let RangeRequest::Partial(range) = resolve(Some(text), size) {
            assert!(
                range.first <= range.last && range.last < size,
                "{text:?} of {size}"
            );
        }
    }
}

/// Every XML body parser: DeleteObjects, CompleteMultipartUpload, an ACL
/// and CreateBucket's location.
pub fn xml_bodies(data: &[u8]) {
    let _ = delete_objects::parse(data);
    let _ = multipart::parse_complete(data);
    let _ = acl::parse_policy(data);
    let _ = location_constraint(data);
}

/// The Authorization header, a signature, the request target and query,
/// and the canonical request built from them. Lines after the first are
/// `name: value` headers; the Authorization header's `SignedHeaders`
/// picks which of them are signed.
pub fn sigv4(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (authorization, target) = first.split_once(' ').unwrap_or((first, "/"));
    let _ = parse_authorization(&text);
    let _ = parse_signature(authorization);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let _ = parse_target(path);
    let _ = parse_query(query);
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.trim()),
            HeaderValue::try_from(value),
        ) {
            headers.append(name, value);
        }
    }
    let signed = parse_signed_headers(authorization).unwrap_or_else(|_| vec!["host"]);
    let params = canonical::parse_query(Some(query));
    let request = CanonicalRequest {
        method: "PUT",
        raw_path: path,
        params: &params,
        skip_param: Some(b"X-Amz-Signature"),
        headers: &headers,
        signed_headers: &signed,
        hashed_payload: "UNSIGNED-PAYLOAD",
    };
    let bytes = request.to_bytes();
    let mut lines = bytes.split(|&b| b == b'\n');
    assert_eq!(lines.next(), Some(&b"PUT"[..]));
    for line in [lines.next(), lines.next()] {
        // The URI and the query are always encoded: no byte a signer
        // could read differently (space, control, non-ASCII).
        let line = line.expect("a canonical request has a URI and a query line");
        assert!(line.iter().all(u8::is_ascii_graphic), "{line:?}");
    }
    assert!(bytes.ends_with(b"UNSIGNED-PAYLOAD"));
}

/// Valid inputs of [`aws_chunked`]: one body in each framing.
pub fn aws_chunked_seeds() -> Vec<Vec<u8>> {
    seeds(&[
        b"\x00\x05\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n",
        b"\x01\x05;chunk-signature=0000000000000000000000000000000000000000000000000000000000000000\r\nhello\r\n0;chunk-signature=00\r\n\r\n",
        b"\x26\x03\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:00\r\n\r\n",
    ])
}

/// Valid inputs of [`range_header`].
pub fn range_header_seeds() -> Vec<Vec<u8>> {
    seeds(&[
        b"bytes=0-99",
        b"bytes=-5",
        b"bytes=10-",
        b"bytes=0-1,3-4",
        b" bytes = 1 - 2 ",
    ])
}

/// Valid inputs of [`xml_bodies`]: one body per parser, and a DTD.
pub fn xml_bodies_seeds() -> Vec<Vec<u8>> {
    seeds(&[
        b"<Delete><Quiet>true</Quiet><Object><Key>a</Key><VersionId>v</VersionId></Object></Delete>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag></Part></CompleteMultipartUpload>",
        b"<AccessControlPolicy><Owner><ID>me</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>me</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>",
        b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>",
        b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"b\">]><Delete><Object><Key>&a;</Key></Object></Delete>",
    ])
}

/// Valid inputs of [`sigv4`]: an Authorization header, and targets with headers.
pub fn sigv4_seeds() -> Vec<Vec<u8>> {
    seeds(&[
        b"AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        b"host;x-amz-date /bucket/key%20with%20space?list-type=2&prefix=a%2Fb&max-keys=10\nhost: h\nx-amz-date: 20261207T000000Z",
        b"host;range /b/k?uploadId=x&partNumber=1&X-Amz-Signature=00\nHost:  a  b \nrange: bytes=0-1\nrange: x",
    ])
}

fn seeds(examples: &[&[u8]]) -> Vec<Vec<u8>> {
    examples.iter().map(|e| e.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use shoal_shard::fuzz_targets::{runs as runs_or, write_seeds, Mutations};

    use super::*;

    /// Inputs per target: `SHOAL_FUZZ_RUNS` (e.g. 10000000), else enough
    /// for well under a second.
    fn runs() -> usize {
        runs_or(50_000)
    }

    #[test]
    fn aws_chunked_bodies_of_any_shape() {
        for input in Mutations::new(&aws_chunked_seeds(), 0xC4_0001, runs()) {
            aws_chunked(&input);
        }
    }

    #[test]
    fn range_headers_of_any_shape() {
        for input in Mutations::new(&range_header_seeds(), 0xC4_0002, runs()) {
            range_header(&input);
        }
    }

    #[test]
    fn xml_bodies_of_any_shape() {
        for input in Mutations::new(&xml_bodies_seeds(), 0xC4_0003, runs()) {
            xml_bodies(&input);
        }
    }

    #[test]
    fn sigv4_text_of_any_shape() {
        for input in Mutations::new(&sigv4_seeds(), 0xC4_0004, runs()) {
            sigv4(&input);
        }
    }

    /// Writes the seed corpus of this crate's cargo-fuzz targets under
    /// `SHOAL_FUZZ_SEED_DIR` (`fuzz/run.sh` does).
    #[test]
    #[ignore = "writes files; run by fuzz/run.sh"]
    fn write_seed_corpus() {
        let dir = std::env::var("SHOAL_FUZZ_SEED_DIR").expect("SHOAL_FUZZ_SEED_DIR");
        write_seeds(&dir, "aws_chunked", &aws_chunked_seeds());
        write_seeds(&dir, "range_header", &range_header_seeds());
        write_seeds(&dir, "xml_bodies", &xml_bodies_seeds());
        write_seeds(&dir, "sigv4", &sigv4_seeds());
    }
}
