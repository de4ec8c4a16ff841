//! DeleteObjects: `POST /bucket?delete` with an XML list of up to 1000 keys.
//!
//! The body is small and read whole (bounded by [`DELETE_BODY_BYTES_MAX`]),
//! checked against any digest the client sent, parsed, and every key is
//! deleted on its owner shard concurrently. Each key gets its own outcome:
//! a failure is an `<Error>` entry, never a failed request.

use std::rc::Rc;

use http::{Response, StatusCode};
use quick_xml::events::Event;
use sha2::Digest as _;
use sha2::Sha256;
use shoal_shard::ops::ShardRequest;

use super::put::{checksum_header, content_md5};
use super::{read_xml_body, require_bucket};
use crate::s3::auth::PayloadMode;
use crate::s3::checksum::Checksummer;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};

/// Most keys one request may name (S3's limit).
const DELETE_KEYS_MAX: usize = 1000;

/// Largest request body read: 1000 keys of 1024 bytes with their markup.
const DELETE_BODY_BYTES_MAX: usize = 2 << 20;

struct DeleteList {
    quiet: bool,
    keys: Vec<String>,
}

pub async fn delete_objects(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let expected_sha = match payload {
        PayloadMode::Sha256(sha) => Some(sha),
        PayloadMode::Unsigned => None,
        _ => {
            return Err(S3Error::InvalidRequest {
                message: "DeleteObjects takes a plain (not aws-chunked) body".into(),
            })
        }
    };
    let md5 = content_md5(&request)?;
    let checksum = checksum_header(&request)?;
    let body = read_xml_body(&mut request, DELETE_BODY_BYTES_MAX).await?;
    if expected_sha.is_some_and(|sha| <[u8; 32]>::from(Sha256::digest(&body)) != sha) {
        return Err(S3Error::ContentSha256Mismatch);
    }
    if md5.is_some_and(|md5| md5_many::md5(&body) != md5) {
        return Err(S3Error::BadDigest {
            algorithm: "Content-MD5",
        });
    }
    if let Some((algorithm, expected)) = checksum {
        let mut summer = Checksummer::new(algorithm);
        summer.update(&body);
        if summer.finish_base64() != expected {
            return Err(S3Error::BadDigest {
                algorithm: algorithm.header_name(),
            });
        }
    }
    let list = parse(&body)?;

    let deletes = list.keys.iter().map(|key| {
        let owner = ctx.router.owner(bucket, key);
        ctx.router
            .call(owner, move |reply| ShardRequest::DeleteObject {
                bucket: bucket.to_string(),
                key: key.clone(),
                reply,
            })
    });
    let outcomes = futures::future::join_all(deletes).await;

    let mut out = XmlWriter::new();
    out.open_root("DeleteResult");
    for (key, outcome) in list.keys.iter().zip(outcomes) {
        match outcome {
            Ok(()) if list.quiet => {}
            Ok(()) => {
                out.open("Deleted");
                out.leaf("Key", key);
                out.close("Deleted");
            }
            Err(e) => {
                tracing::error!(bucket, key, error = %e, "DeleteObjects entry failed");
                let error = S3Error::internal(e);
                out.open("Error");
                out.leaf("Key", key);
                out.leaf("Code", error.code());
                out.leaf("Message", &error.to_string());
                out.close("Error");
            }
        }
    }
    out.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// `<Delete><Quiet>true</Quiet><Object><Key>k</Key></Object>…</Delete>`.
fn parse(body: &[u8]) -> Result<DeleteList, S3Error> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut list = DeleteList {
        quiet: false,
        keys: Vec::new(),
    };
    let mut saw_root = false;
    loop {
        match reader.read_event().map_err(|_| S3Error::MalformedXml)? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if path.is_empty() {
                    if name != b"Delete" {
                        return Err(S3Error::MalformedXml);
                    }
                    saw_root = true;
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop().ok_or(S3Error::MalformedXml)?;
            }
            Event::Empty(e) if path.is_empty() && e.local_name().as_ref() == b"Delete" => {
                saw_root = true
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| S3Error::MalformedXml)?;
                match path
                    .iter()
                    .map(Vec::as_slice)
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    [b"Delete", b"Quiet"] => list.quiet = text.trim().eq_ignore_ascii_case("true"),
                    [b"Delete", b"Object", b"Key"] => list.keys.push(text.into_owned()),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root || !path.is_empty() || list.keys.is_empty() || list.keys.len() > DELETE_KEYS_MAX {
        return Err(S3Error::MalformedXml);
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_quiet() {
        let body = br#"<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a/b</Key></Object><Object><Key>c&amp;d</Key><VersionId>null</VersionId></Object></Delete>"#;
        let list = parse(body).unwrap();
        assert!(list.quiet);
        assert_eq!(list.keys, vec!["a/b".to_string(), "c&d".to_string()]);
    }

    #[test]
    fn rejects_what_s3_rejects() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<Delete></Delete>").is_err());
        assert!(parse(b"<Other><Object><Key>a</Key></Object></Other>").is_err());
        assert!(parse(b"<Delete><Object><Key>a</Key></Object>").is_err());
        let many: String = (0..=DELETE_KEYS_MAX)
            .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
            .collect();
        assert!(parse(format!("<Delete>{many}</Delete>").as_bytes()).is_err());
    }
}
