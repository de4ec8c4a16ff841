//! DeleteObjects: `POST /bucket?delete` with an XML list of up to 1000 keys.
//!
//! The body is small and read whole (bounded by [`DELETE_BODY_BYTES_MAX`]),
//! checked against any digest the client sent, parsed, and every key is
//! deleted on its owner shard concurrently. Each key gets its own outcome:
//! a failure is an `<Error>` entry, never a failed request.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::DeleteObject;

use super::receive::receive_small_body;
use super::require_bucket;
use crate::limits::DELETE_BODY_BYTES_MAX;
use crate::limits::DELETE_KEYS_MAX;
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{xml_response, Body, S3Context};

pub(crate) struct DeleteList {
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
    let body = receive_small_body(ctx, &mut request, payload, DELETE_BODY_BYTES_MAX, true).await?;
    let list = parse(&body)?;

    let deletes = list.keys.iter().map(|key| {
        let owner = ctx.router.owner(bucket, key);
        ctx.router.propose(
            owner,
            Op::DeleteObject(DeleteObject {
                bucket: bucket.to_string(),
                key: key.clone(),
            }),
        )
    });
    let outcomes = futures::future::join_all(deletes).await;

    let mut out = XmlWriter::new();
    out.open_root("DeleteResult");
    for (key, outcome) in list.keys.iter().zip(outcomes) {
        match outcome {
            Ok(_) if list.quiet => {}
            Ok(_) => {
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
pub(crate) fn parse(body: &[u8]) -> Result<DeleteList, S3Error> {
    let mut list = DeleteList {
        quiet: false,
        keys: Vec::new(),
    };
    xml::walk(body, b"Delete", |event| {
        if let XmlEvent::Text(path, text) = event {
            if xml::path_is(path, &[b"Delete", b"Quiet"]) {
                list.quiet = text.trim().eq_ignore_ascii_case("true");
            } else if xml::path_is(path, &[b"Delete", b"Object", b"Key"]) {
                list.keys.push(text);
            }
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if list.keys.is_empty() || list.keys.len() > DELETE_KEYS_MAX {
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
