//! The signer against the AWS published S3 signature examples (access key
//! AKIAIOSFODNN7EXAMPLE, 2013-05-24, us-east-1).

use bytes::BytesMut;
use sha2::{Digest, Sha256};

use super::chunk::{encoded_length, header_bytes, write_header, ChunkSigner};
use super::*;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20130524T000000Z";

fn example_key() -> SigningKey {
    SigningKey::derive(SECRET, "20130524", "us-east-1")
}

fn signature_of(req: &RequestToSign<'_>) -> String {
    hex::encode(sign(ACCESS_KEY, &example_key(), AMZ_DATE, req).signature)
}

#[test]
fn aws_example_get_object() {
    let headers = [
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("x-amz-date", AMZ_DATE),
    ];
    let req = RequestToSign {
        method: "GET",
        path: "/test.txt",
        query: &[],
        headers: &headers,
        payload_hash: EMPTY_SHA256_HEX,
    };
    let (canonical, signed) = canonical_request(&req);
    assert_eq!(
        canonical,
        format!(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:{EMPTY_SHA256_HEX}\nx-amz-date:{AMZ_DATE}\n\n\
             host;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256_HEX}"
        )
    );
    assert_eq!(signed, "host;range;x-amz-content-sha256;x-amz-date");
    let signature = sign(ACCESS_KEY, &example_key(), AMZ_DATE, &req);
    assert_eq!(
        hex::encode(signature.signature),
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(
        signature.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn aws_example_put_object_encodes_the_key_and_sorts_headers() {
    let payload_hash = hex::encode(Sha256::digest(b"Welcome to Amazon S3."));
    // Given out of order: signing sorts them.
    let headers = [
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-content-sha256", payload_hash.as_str()),
    ];
    let req = RequestToSign {
        method: "PUT",
        path: "/test$file.text",
        query: &[],
        headers: &headers,
        payload_hash: &payload_hash,
    };
    assert_eq!(
        signature_of(&req),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

#[test]
fn aws_example_list_objects_sorts_and_encodes_the_query() {
    let headers = [
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
    ];
    let req = RequestToSign {
        method: "GET",
        path: "/",
        query: &[("prefix", "J"), ("max-keys", "2")],
        headers: &headers,
        payload_hash: EMPTY_SHA256_HEX,
    };
    assert_eq!(
        signature_of(&req),
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}

/// The AWS streaming example: 66560 bytes of `a` in a 64 KiB chunk and a
/// 1 KiB chunk. The seed signature, then each chunk's, must match.
#[test]
fn aws_example_chunk_signature_chain() {
    let headers = [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", STREAMING_PAYLOAD),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
    ];
    let req = RequestToSign {
        method: "PUT",
        path: "/examplebucket/chunkObject.txt",
        query: &[],
        headers: &headers,
        payload_hash: STREAMING_PAYLOAD,
    };
    let key = example_key();
    let seed = sign(ACCESS_KEY, &key, AMZ_DATE, &req).signature;
    assert_eq!(
        hex::encode(seed),
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );

    let mut signer = ChunkSigner::new(*key.bytes(), AMZ_DATE, key.scope(), &seed);
    let expected = [
        (
            65536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ];
    let mut wire = BytesMut::new();
    for (len, want) in expected {
        let data = vec![b'a'; len];
        let hash: [u8; 32] = Sha256::digest(&data).into();
        let got = signer.sign(&hash);
        assert_eq!(std::str::from_utf8(&got).unwrap(), want, "chunk of {len}");
        let before = wire.len();
        write_header(&mut wire, len, &got);
        assert_eq!(wire.len() - before, header_bytes(len));
        wire.extend_from_slice(&data);
        wire.extend_from_slice(b"\r\n");
    }
    assert_eq!(wire.len() as u64, encoded_length(66560, 65536));
    assert_eq!(encoded_length(66560, 65536), 66824);
    assert!(wire.starts_with(b"10000;chunk-signature=ad80c730"));
}

#[test]
fn encoded_length_counts_every_frame() {
    // Empty body: just the final chunk `0;chunk-signature=<64>\r\n\r\n`.
    assert_eq!(encoded_length(0, 65536), 1 + 17 + 64 + 2 + 2);
    // Exactly one full chunk, no partial one.
    assert_eq!(
        encoded_length(65536, 65536),
        (5 + 17 + 64 + 2 + 65536 + 2) + (1 + 17 + 64 + 2 + 2)
    );
}

#[test]
fn key_cache_derives_once_per_day() {
    let mut cache = KeyCache::new(SECRET, "us-east-1");
    let first = *cache.key(AMZ_DATE).bytes();
    assert_eq!(&first, example_key().bytes());
    assert_eq!(cache.key("20130524T235959Z").bytes(), &first);
    assert_ne!(cache.key("20130525T000000Z").bytes(), &first);
    assert_eq!(
        cache.key("20130525T000000Z").scope(),
        "20130525/us-east-1/s3/aws4_request"
    );
}

#[test]
fn uri_encoding_keeps_unreserved_and_slashes_in_paths() {
    assert_eq!(uri_encode("/a b/c~d_e.f-g", false), "/a%20b/c~d_e.f-g");
    assert_eq!(uri_encode("a/b", true), "a%2Fb");
    assert_eq!(uri_encode("é+$", false), "%C3%A9%2B%24");
}

#[test]
fn credentials_debug_hides_the_secret() {
    let creds = Credentials {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET.into(),
    };
    assert!(!format!("{creds:?}").contains("EXAMPLEKEY"));
}
