//! PutBucketVersioning and GetBucketVersioning, and what the object
//! handlers share about versions: the `versionId` a request names and the
//! `x-amz-version-id` a response carries.
//!
//! A bucket's versioning lives in its record on the metadata shard; each
//! write reads it from the node's directory and carries it in its raft
//! command, so every member of the object's group applies it alike. As on
//! S3, a write that races the change may still see the earlier state.

use std::rc::Rc;

use http::{HeaderMap, Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{BucketRecord, ObjectManifest, PutBucketVersioning, Versioning};
use shoal_shard::raft::ApplyOutcome;
use shoal_shard::version_id::{is_version_id, NULL_VERSION_ID};

use super::receive::receive_small_body;
use super::{commit_bucket_setting, header_value};
use crate::limits::VERSIONING_BODY_BYTES_MAX;
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{empty_response, xml_response, Body, S3Context};

/// The bucket's versioning as this node's directory has it.
pub(super) fn bucket_versioning(ctx: &S3Context, bucket: &str) -> Versioning {
    ctx.directory
        .read_bucket(bucket, BucketRecord::versioning)
        .unwrap_or(Versioning::Unversioned)
}

pub fn get_bucket_versioning(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    let mut out = XmlWriter::new();
    out.open_root("VersioningConfiguration");
    match record.versioning() {
        // A bucket that never had versioning shows no status at all.
        Versioning::Unversioned => {}
        Versioning::Enabled => out.leaf("Status", "Enabled"),
        Versioning::Suspended => out.leaf("Status", "Suspended"),
    }
    out.close("VersioningConfiguration");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

pub async fn put_bucket_versioning(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    let body =
        receive_small_body(ctx, &mut request, payload, VERSIONING_BODY_BYTES_MAX, true).await?;
    let versioning = parse_configuration(&body)?;
    if versioning == Versioning::Unversioned {
        // No status at all: S3 leaves the bucket as it is.
        return Ok(empty_response(StatusCode::OK));
    }
    if versioning == record.versioning() {
        return Ok(empty_response(StatusCode::OK));
    }
    let put = PutBucketVersioning {
        bucket: bucket.to_string(),
        versioning: versioning.into(),
    };
    let op = Op::PutBucketVersioning(put);
    commit_bucket_setting(ctx, bucket, op, StatusCode::OK, |other| match other {
        ApplyOutcome::InvalidBucketState => S3Error::InvalidBucketState {
            message: "Versioning cannot be suspended on a bucket with Object Lock".into(),
        },
        other => S3Error::internal(format!("put bucket versioning applied as {other:?}")),
    })
    .await
}

/// The status a `VersioningConfiguration` sets (`Unversioned`: none
/// given). MFA delete is refused: Shoal has no MFA devices.
fn parse_configuration(body: &[u8]) -> Result<Versioning, S3Error> {
    const ROOT: &[u8] = b"VersioningConfiguration";
    let mut status = None;
    let mut mfa_delete = None;
    xml::walk(body, ROOT, |event| {
        if let XmlEvent::Text(path, text) = event {
            if xml::path_is(path, &[ROOT, b"Status"]) {
                status = Some(text.trim().to_string());
            } else if xml::path_is(path, &[ROOT, b"MfaDelete"]) {
                mfa_delete = Some(text.trim().to_string());
            }
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if mfa_delete.as_deref().is_some_and(|m| m != "Disabled") {
        return Err(S3Error::NotImplemented { what: "MFA delete" });
    }
    match status.as_deref() {
        None => Ok(Versioning::Unversioned),
        Some("Enabled") => Ok(Versioning::Enabled),
        Some("Suspended") => Ok(Versioning::Suspended),
        Some(_) => Err(S3Error::MalformedXml),
    }
}

/// The `versionId` query parameter, checked: S3 answers a malformed one
/// (the empty string included) with `InvalidArgument`.
pub(super) fn requested_version(request: &S3Request) -> Result<Option<String>, S3Error> {
    match request.query("versionId") {
        None => Ok(None),
        Some(id) if is_version_id(id) => Ok(Some(id.to_string())),
        Some(_) => Err(S3Error::InvalidArgument {
            message: "Invalid version id specified".into(),
        }),
    }
}

/// The id S3 shows for a stored version: its own, or "null".
pub(super) fn version_id_of(manifest: &ObjectManifest) -> &str {
    if manifest.version_id.is_empty() {
        NULL_VERSION_ID
    } else {
        &manifest.version_id
    }
}

/// `x-amz-version-id` of a version a response is about: shown once the
/// bucket has had versioning (a never-versioned bucket's responses carry
/// none, as S3's do).
pub(super) fn insert_version_id(
    headers: &mut HeaderMap,
    version_id: &str,
    versioning: Versioning,
) -> Result<(), S3Error> {
    if versioning != Versioning::Unversioned || version_id != NULL_VERSION_ID {
        headers.insert("x-amz-version-id", header_value(version_id)?);
    }
    Ok(())
}

/// The version id a write made, from its outcome: its own id with
/// versioning enabled, else the null version.
pub(super) fn written_version(outcome: ApplyOutcome) -> String {
    match outcome {
        ApplyOutcome::Versioned(stamp) => stamp.id(),
        _ => NULL_VERSION_ID.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_as_s3_reads_them() {
        let doc = |inner: &str| {
            format!(
                r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>"#
            )
        };
        let parse = |inner: &str| parse_configuration(doc(inner).as_bytes());
        assert_eq!(
            parse("<Status>Enabled</Status>").ok(),
            Some(Versioning::Enabled)
        );
        assert_eq!(
            parse("<Status>Suspended</Status>").ok(),
            Some(Versioning::Suspended)
        );
        assert_eq!(parse("").ok(), Some(Versioning::Unversioned));
        assert!(matches!(
            parse("<Status>On</Status>"),
            Err(S3Error::MalformedXml)
        ));
        assert!(matches!(
            parse("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"),
            Err(S3Error::NotImplemented { .. })
        ));
        assert!(parse("<Status>Enabled</Status><MfaDelete>Disabled</MfaDelete>").is_ok());
        assert!(matches!(
            parse_configuration(b"<Other/>"),
            Err(S3Error::MalformedXml)
        ));
    }
}
