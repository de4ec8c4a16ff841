//! One module per group of S3 operations. Handlers check what they can
//! before touching the body, reach shards only through the router, and
//! return `S3Error` for every failure.

pub mod acl;
pub mod attributes;
pub mod bucket;
pub mod copy;
pub mod cors;
pub mod delete_objects;
pub mod encryption;
pub mod get;
pub mod lifecycle;
pub mod list;
pub mod list_versions;
pub mod multipart;
pub mod object_lock;
pub mod ownership;
pub mod policy;
pub mod post;
pub mod put;
mod receive;
mod restream;
pub mod tagging;
pub mod versioning;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use hyper::body::{Frame, Incoming};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use shoal_proto::meta::ObjectManifest;
use shoal_shard::ops::ShardRequest;
use shoal_shard::raft::ApplyOutcome;

use super::access::{self, Caller, Permission};
use super::error::S3Error;
use super::request::S3Request;
use super::S3Context;
use versioning::version_id_of;

/// The bucket must exist (in the node's directory).
fn require_bucket(ctx: &S3Context, bucket: &str) -> Result<(), S3Error> {
    if ctx.directory.contains_bucket(bucket) {
        Ok(())
    } else {
        Err(S3Error::NoSuchBucket {
            bucket: bucket.to_string(),
        })
    }
}

/// The object's manifest (the version `version_id` names, else the
/// current one), once the caller is allowed `wanted` on it
/// (`access::authorize_object`). A missing object is NoSuchKey, or
/// AccessDenied for a caller who may not list the bucket; a missing
/// version NoSuchVersion; a delete marker is no object to read.
async fn load_object(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    wanted: Permission,
) -> Result<ObjectManifest, S3Error> {
    let manifest = existing_version(ctx, caller, bucket, key, version_id).await?;
    access::authorize_object(ctx, caller, &manifest, wanted)?;
    Ok(manifest)
}

/// The version the request's `versionId` names (else the current one),
/// once the caller is allowed `wanted` on it: [`load_object`] for a GET,
/// HEAD or a read of one of the version's subresources.
async fn load_requested(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
    wanted: Permission,
) -> Result<ObjectManifest, S3Error> {
    let version_id = versioning::requested_version(request)?;
    load_object(ctx, caller, bucket, key, version_id.as_deref(), wanted).await
}

/// What a change to one version's own metadata (its ACL, tags, retention,
/// legal hold) came to, as S3 answers it; `what` names the change in an
/// internal error.
fn version_change_result(
    outcome: ApplyOutcome,
    key: &str,
    version_id: Option<String>,
    what: &str,
) -> Result<(), S3Error> {
    match outcome {
        ApplyOutcome::Applied => Ok(()),
        ApplyOutcome::ObjectLocked => Err(object_lock::locked_error()),
        ApplyOutcome::NoSuchResource => Err(S3Error::NoSuchKey {
            key: key.to_string(),
        }),
        ApplyOutcome::NoSuchVersion => Err(S3Error::NoSuchVersion {
            key: key.to_string(),
            version_id: version_id.unwrap_or_default(),
        }),
        other => Err(S3Error::internal(format!("{what} applied as {other:?}"))),
    }
}

/// Commits a change to a bucket's settings through the metadata shard
/// and answers `done` once it applied; an outcome other than applied or
/// NoSuchBucket becomes what `refused` makes of it.
async fn commit_bucket_setting(
    ctx: &S3Context,
    bucket: &str,
    op: shoal_proto::meta::meta_command::Op,
    done: http::StatusCode,
    refused: impl FnOnce(ApplyOutcome) -> S3Error,
) -> Result<http::Response<super::Body>, S3Error> {
    match ctx.router.propose(crate::route::METADATA_SHARD, op).await? {
        ApplyOutcome::Applied => Ok(super::empty_response(done)),
        ApplyOutcome::NoSuchBucket => Err(S3Error::NoSuchBucket {
            bucket: bucket.to_string(),
        }),
        other => Err(refused(other)),
    }
}

/// A PUT of one of a bucket's settings (or, `delete`, its DELETE): the
/// document read and checked ([`setting_document`]), the change `change`
/// makes of it (`None`: deleted) committed through the metadata shard;
/// 200, or 204 for a DELETE.
async fn put_bucket_setting<T>(
    ctx: &S3Context,
    bucket: &str,
    (mut request, payload): (S3Request, crate::s3::auth::PayloadMode),
    delete: bool,
    limits: (usize, bool),
    parse: impl FnOnce(&[u8]) -> Result<T, S3Error>,
    change: impl FnOnce(Option<T>) -> Result<shoal_proto::meta::meta_command::Op, S3Error>,
) -> Result<http::Response<super::Body>, S3Error> {
    let value = setting_document(ctx, &mut request, payload, delete, limits, parse).await?;
    let op = change(value)?;
    commit_bucket_setting(ctx, bucket, op, setting_status(delete), |other| {
        S3Error::internal(format!("a bucket setting applied as {other:?}"))
    })
    .await
}

/// What a PUT of one of a bucket's settings sent, read whole (at most
/// `bytes_max`) and checked by `parse`; `None` for its DELETE. Some
/// settings S3 takes only with a Content-MD5 or checksum (`integrity`).
async fn setting_document<T>(
    ctx: &S3Context,
    request: &mut S3Request,
    payload: crate::s3::auth::PayloadMode,
    delete: bool,
    (bytes_max, integrity): (usize, bool),
    parse: impl FnOnce(&[u8]) -> Result<T, S3Error>,
) -> Result<Option<T>, S3Error> {
    if delete {
        return Ok(None);
    }
    if integrity {
        require_integrity(request)?;
    }
    let body = receive::receive_small_body(ctx, request, payload, bytes_max, true).await?;
    parse(&body).map(Some)
}

/// A bucket setting's answer: 200 for a PUT, 204 for a DELETE.
fn setting_status(delete: bool) -> http::StatusCode {
    match delete {
        true => http::StatusCode::NO_CONTENT,
        false => http::StatusCode::OK,
    }
}

/// The version `version_id` names (else the current one), with the errors
/// of [`load_object`] for a missing version or a delete marker, but not
/// yet authorized: for a handler whose access rule is the bucket's.
async fn existing_version(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<ObjectManifest, S3Error> {
    let manifest = fetch_version(ctx, bucket, key, version_id).await?;
    let manifest = match (manifest, version_id) {
        (Some(manifest), _) => manifest,
        (None, None) => return Err(access::missing_object(ctx, caller, bucket, key)),
        (None, Some(version_id)) => {
            return Err(S3Error::NoSuchVersion {
                key: key.to_string(),
                version_id: version_id.to_string(),
            })
        }
    };
    if manifest.delete_marker {
        return Err(S3Error::DeleteMarker {
            key: key.to_string(),
            version_id: version_id_of(&manifest).to_string(),
            by_id: version_id.is_some(),
        });
    }
    Ok(manifest)
}

/// The version `version_id` names (else the current one, or a delete
/// marker that is newest) from the key's shard, unchecked: what it is and
/// who may see it is the caller's to decide.
async fn fetch_version(
    ctx: &S3Context,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<ObjectManifest>, S3Error> {
    let owner = ctx.router.owner(bucket, key);
    let manifest = ctx
        .router
        .call(owner, |reply| ShardRequest::GetObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.map(str::to_string),
            reply,
        })
        .await?;
    Ok(manifest)
}

/// A request S3 wants proof of integrity for (Object Lock settings, a
/// lifecycle configuration) must carry `Content-MD5` or a checksum.
fn require_integrity(request: &S3Request) -> Result<(), S3Error> {
    let has = |name: &str| request.header(name).is_some();
    let checksummed = has("content-md5")
        || has("x-amz-sdk-checksum-algorithm")
        || has("x-amz-trailer")
        || request.headers().keys().any(|name| {
            name.as_str().starts_with("x-amz-checksum-") && name != "x-amz-checksum-mode"
        });
    if checksummed {
        Ok(())
    } else {
        Err(S3Error::InvalidRequest {
            message: "This request must carry Content-MD5 or an x-amz-checksum-* header".into(),
        })
    }
}

/// Reads a small request body (an XML document) whole; a body over
/// `bytes_max` is `MalformedXML`, as S3 answers for oversized documents.
async fn read_xml_body(
    ctx: &S3Context,
    request: &mut S3Request,
    bytes_max: usize,
) -> Result<Vec<u8>, S3Error> {
    let mut body = request
        .take_body()
        .ok_or_else(|| S3Error::internal("request body taken twice"))?;
    let mut bytes = Vec::new();
    while let Some(frame) = next_frame(&mut body, ctx.config.body_idle_timeout).await? {
        let frame = frame.map_err(|_| S3Error::IncompleteBody {
            expected_bytes: 0,
            received_bytes: bytes.len() as u64,
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > bytes_max {
                return Err(S3Error::MalformedXml);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// The body's next frame (`None` at its end), waiting at most `idle` for
/// it (`--body-idle-timeout`): a client that stops sending is answered
/// `RequestTimeout`, and the request's admission units go back as it ends.
async fn next_frame(
    body: &mut Incoming,
    idle: Duration,
) -> Result<Option<Result<Frame<Bytes>, hyper::Error>>, S3Error> {
    use http_body_util::BodyExt;
    glommio::timer::timeout(idle, async { Ok(body.frame().await) })
        .await
        .map_err(|_| S3Error::RequestTimeout { idle })
}

fn part_number_error() -> S3Error {
    S3Error::InvalidArgument {
        message: format!(
            "Part number must be an integer between 1 and {}, inclusive",
            shoal_shard::limits::PARTS_MAX
        ),
    }
}

/// The `partNumber` query parameter, 1 to [`shoal_shard::limits::PARTS_MAX`].
fn part_number(request: &S3Request) -> Result<u32, S3Error> {
    request
        .query("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=shoal_shard::limits::PARTS_MAX).contains(n))
        .ok_or_else(part_number_error)
}

/// `"<hex md5>"`, as S3 quotes ETags; a multipart object's ends in
/// `-<parts>`.
fn etag(md5: &[u8], part_count: u32) -> String {
    if part_count == 0 {
        format!("\"{}\"", hex::encode(md5))
    } else {
        format!("\"{}-{part_count}\"", hex::encode(md5))
    }
}

pub(crate) fn header_value(text: &str) -> Result<HeaderValue, S3Error> {
    HeaderValue::from_str(text)
        .map_err(|_| S3Error::internal(format!("unencodable header value {text:?}")))
}

/// ISO 8601 with milliseconds, as listings show times.
fn iso8601(unix_ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut text = at.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 prints as many fraction digits as needed; S3 prints exactly 3.
    if let Some(dot) = text.find('.') {
        text.truncate(dot);
    } else if let Some(z) = text.strip_suffix('Z') {
        text = z.to_string();
    }
    format!("{text}.{:03}Z", unix_ms % 1000)
}

/// RFC 7231 date, as `Last-Modified` shows times.
fn http_date(unix_ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms))
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(iso8601(1_369_353_600_123), "2013-05-24T00:00:00.123Z");
        assert_eq!(iso8601(1_369_353_600_000), "2013-05-24T00:00:00.000Z");
        assert_eq!(
            http_date(1_369_353_600_999),
            "Fri, 24 May 2013 00:00:00 GMT"
        );
    }
}
