//! DeleteObjects: `POST /bucket?delete` with an XML list of up to 1000 keys.
//!
//! The body is small and read whole (bounded by [`DELETE_BODY_BYTES_MAX`]),
//! checked against any digest the client sent, parsed, and every key is
//! deleted on its owner shard concurrently. Each key gets its own outcome:
//! a failure is an `<Error>` entry, never a failed request.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_shard::version_id::is_version_id;

use super::get::delete_one;
use super::object_lock::bypass_governance;
use super::receive::receive_small_body;
use super::require_bucket;
use crate::limits::DELETE_BODY_BYTES_MAX;
use crate::limits::DELETE_KEYS_MAX;
use crate::s3::access::{self, Caller};
use crate::s3::auth::PayloadMode;
use crate::s3::conditional::delete_condition;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{xml_response, Body, S3Context};

pub(crate) struct DeleteList {
    quiet: bool,
    objects: Vec<ToDelete>,
}

/// One `<Object>` of the list: a key, a version of it when named, and
/// what it must be for the delete to apply.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ToDelete {
    key: String,
    version_id: Option<String>,
    /// `<ETag>`, `<LastModifiedTime>`, `<Size>`.
    etag: Option<String>,
    last_modified: Option<String>,
    size: Option<String>,
}

pub async fn delete_objects(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let body = receive_small_body(ctx, &mut request, payload, DELETE_BODY_BYTES_MAX, true).await?;
    let list = parse(&body)?;
    let bypass = bypass_governance(ctx, caller, bucket, &request);

    let deletes = list.objects.iter().map(|object| async {
        if object
            .version_id
            .as_deref()
            .is_some_and(|id| !is_version_id(id))
        {
            return Err(S3Error::InvalidArgument {
                message: "Invalid version id specified".into(),
            });
        }
        // The request was allowed for the bucket; the policy may still
        // deny some of its keys.
        access::refuse_denied_key(ctx, caller, bucket, &object.key, &request)?;
        let condition = delete_condition(
            object.etag.as_deref(),
            object.last_modified.as_deref(),
            object.size.as_deref(),
        )?;
        let version_id = object.version_id.clone();
        delete_one(ctx, bucket, &object.key, version_id, bypass, condition).await
    });
    let outcomes = futures::future::join_all(deletes).await;

    let mut out = XmlWriter::new();
    out.open_root("DeleteResult");
    for (object, outcome) in list.objects.iter().zip(outcomes) {
        match outcome {
            Ok(_) if list.quiet => {}
            Ok(deleted) => {
                out.open("Deleted");
                out.leaf("Key", &object.key);
                if let Some(version_id) = &object.version_id {
                    out.leaf("VersionId", version_id);
                }
                if deleted.delete_marker {
                    out.leaf("DeleteMarker", "true");
                    if let (None, Some(marker)) = (&object.version_id, &deleted.version_id) {
                        out.leaf("DeleteMarkerVersionId", marker);
                    }
                }
                out.close("Deleted");
            }
            Err(error) => {
                if matches!(error, S3Error::Internal { .. }) {
                    tracing::error!(bucket, key = object.key, error = %error, "DeleteObjects entry failed");
                }
                out.open("Error");
                out.leaf("Key", &object.key);
                if let Some(version_id) = &object.version_id {
                    out.leaf("VersionId", version_id);
                }
                out.leaf("Code", error.code());
                out.leaf("Message", &error.to_string());
                out.close("Error");
            }
        }
    }
    out.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// `<Delete><Quiet>true</Quiet><Object><Key>k</Key>[<VersionId>v</VersionId>]</Object>…</Delete>`.
/// An `<Object>` without a key is malformed.
pub(crate) fn parse(body: &[u8]) -> Result<DeleteList, S3Error> {
    const OBJECT: [&[u8]; 2] = [b"Delete", b"Object"];
    let mut list = DeleteList {
        quiet: false,
        objects: Vec::new(),
    };
    let mut keys: Vec<Option<String>> = Vec::new();
    xml::walk(body, b"Delete", |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &OBJECT) => {
                list.objects.push(ToDelete::default());
                keys.push(None);
            }
            XmlEvent::Text(path, text) if xml::path_is(path, &[b"Delete", b"Quiet"]) => {
                list.quiet = text.trim().eq_ignore_ascii_case("true");
            }
            XmlEvent::Text(path, text) if xml::path_is(path, &[b"Delete", b"Object", b"Key"]) => {
                *keys.last_mut().ok_or(xml::MalformedXml)? = Some(text);
            }
            XmlEvent::Text(path, text)
                if xml::path_is(path, &[b"Delete", b"Object", b"VersionId"]) =>
            {
                list.objects.last_mut().ok_or(xml::MalformedXml)?.version_id = Some(text);
            }
            XmlEvent::Text(path, text) if path.len() == 3 && xml::path_is(&path[..2], &OBJECT) => {
                let object = list.objects.last_mut().ok_or(xml::MalformedXml)?;
                match path[2].as_slice() {
                    b"ETag" => object.etag = Some(text),
                    b"LastModifiedTime" => object.last_modified = Some(text),
                    b"Size" => object.size = Some(text),
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    for (object, key) in list.objects.iter_mut().zip(keys) {
        object.key = key.ok_or(S3Error::MalformedXml)?;
    }
    if list.objects.is_empty() || list.objects.len() > DELETE_KEYS_MAX {
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
        let object = |key: &str, version_id: Option<&str>| ToDelete {
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(
            list.objects,
            vec![object("a/b", None), object("c&d", Some("null"))]
        );
    }

    #[test]
    fn rejects_what_s3_rejects() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<Delete></Delete>").is_err());
        assert!(parse(b"<Other><Object><Key>a</Key></Object></Other>").is_err());
        assert!(parse(b"<Delete><Object><Key>a</Key></Object>").is_err());
        assert!(parse(b"<Delete><Object><VersionId>null</VersionId></Object></Delete>").is_err());
        let many: String = (0..=DELETE_KEYS_MAX)
            .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
            .collect();
        assert!(parse(format!("<Delete>{many}</Delete>").as_bytes()).is_err());
    }
}
