//! PutObject: receive the body ([`receive_body`]), then commit the manifest
//! on the owner shard, conditionally when the client sent `If-None-Match`
//! or `If-Match`.

use std::collections::BTreeMap;
use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::{ChunkRef, ObjectEncryption, ObjectManifest, WriteCondition};
use shoal_shard::chunk_hash::ChunkHash;
use shoal_shard::ids::ShardIndex;
use shoal_shard::limits::OBJECT_BYTES_MAX;
use shoal_shard::ops::{ChunkPlacement, ShardRequest};
use shoal_shard::raft::ApplyOutcome;

use super::object_lock::{default_retention, locked_error, requested_lock};
use super::ownership::requested_owner;
use super::receive::{receive_body, BodyLimits};
use super::tagging::requested_tags;
use super::versioning::{bucket_versioning, insert_version_id, written_version};
use super::{etag, header_value, now_unix_ms, require_bucket};
use crate::s3::access::Caller;
use crate::s3::auth::PayloadMode;
use crate::s3::conditional::parse_etag;
use crate::s3::error::S3Error;
use crate::s3::ingest::StoredChunk;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, cipher::IV_BYTES};
use crate::s3::{empty_response, Body, S3Context};

/// Content type S3 records when the client sends none.
pub(super) const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

pub async fn put_object(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let condition = write_condition(&request)?;
    let (owner_id, acl) = requested_owner(ctx, caller, bucket, &request)?;
    let owner = ctx.router.owner(bucket, key);
    let versioning = bucket_versioning(ctx, bucket);
    let lock = requested_lock(ctx, bucket, &request, true)?;
    let tags = requested_tags(&request)?;
    let (encryption, object_key) =
        sse::for_new_object(ctx, bucket, &sse::header_field(request.headers()))?.unzip();
    let limits = BodyLimits {
        bytes_max: OBJECT_BYTES_MAX,
        embed_max: ctx.config.embed_max_bytes,
        encrypt_with: object_key.as_ref().map(|key| key.data_key.clone()),
    };
    let received = receive_body(ctx, owner, &mut request, payload, limits, None).await?;
    let stored = received.stored;
    let manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size_bytes: stored.size_bytes,
        md5: stored.md5.to_vec(),
        last_modified_unix_ms: now_unix_ms(),
        content_type: request
            .header("content-type")
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string(),
        user_metadata: user_metadata(request.headers()),
        chunks: chunk_refs(&stored.chunks),
        checksums: received.checksums.clone(),
        headers: stored_headers(request.headers()),
        checksum_type: String::new(),
        part_count: 0,
        owner_id,
        acl,
        embedded: stored.embedded,
        encryption: stored_encryption(encryption, stored.embedded_iv),
        ..Default::default()
    };
    let mut manifest = manifest;
    lock.apply_to(&mut manifest);
    manifest.tags = tags;
    let outcome = commit_object(ctx, owner, manifest, &stored.chunks, condition).await?;
    // The commit is final: the upload's last admission unit goes back.
    drop(stored.charge);
    write_outcome(outcome, key)?;

    let mut response = empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, header_value(&etag(&stored.md5, 0))?);
    insert_checksums(headers, &received.checksums)?;
    insert_version_id(headers, &written_version(outcome), versioning)?;
    if let Some(object_key) = &object_key {
        object_key.insert_headers(headers)?;
    }
    Ok(response)
}

/// An object's encryption as its manifest keeps it, with the counter
/// block of its embedded body, if it has one.
pub(super) fn stored_encryption(
    encryption: Option<ObjectEncryption>,
    embedded_iv: Option<[u8; IV_BYTES]>,
) -> Option<ObjectEncryption> {
    encryption.map(|mut encryption| {
        encryption.embedded_iv = embedded_iv.map_or_else(Vec::new, |iv| iv.to_vec());
        encryption
    })
}

/// Commits a received object's manifest on its owner shard, as the
/// bucket's versioning and default retention say.
pub(super) async fn commit_object(
    ctx: &S3Context,
    owner: ShardIndex,
    manifest: ObjectManifest,
    stored: &[StoredChunk],
    condition: Option<WriteCondition>,
) -> Result<ApplyOutcome, S3Error> {
    let bucket = manifest.bucket.clone();
    let versioning = bucket_versioning(ctx, &bucket);
    let outcome = ctx
        .router
        .call(owner, |reply| ShardRequest::CommitObject {
            manifest,
            chunks: chunk_placements(stored),
            condition,
            versioning,
            default_retention: default_retention(ctx, &bucket),
            reply,
        })
        .await?;
    Ok(outcome)
}

/// The refs a manifest or part keeps for stored chunks. Their source hint
/// is filled in by the owner shard when it proposes them: it knows which
/// node stored the chunks.
pub(super) fn chunk_refs(chunks: &[StoredChunk]) -> Vec<ChunkRef> {
    chunks
        .iter()
        .map(|c| ChunkRef {
            sha256: c.sha256.to_vec(),
            size_bytes: c.size_bytes,
            source_node: 0,
            iv: c.iv.map_or_else(Vec::new, |iv| iv.to_vec()),
        })
        .collect()
}

/// Where stored chunks sit and which node stored each, for the owner
/// shard's blob index and the refs' source nodes.
pub(super) fn chunk_placements(chunks: &[StoredChunk]) -> Vec<(ChunkHash, ChunkPlacement)> {
    chunks.iter().map(|c| (c.sha256, c.placement)).collect()
}

/// `x-amz-checksum-<name>` response headers.
pub(super) fn insert_checksums(
    headers: &mut http::HeaderMap,
    checksums: &BTreeMap<String, String>,
) -> Result<(), S3Error> {
    for (name, value) in checksums {
        headers.insert(
            http::HeaderName::try_from(format!("x-amz-checksum-{name}"))
                .map_err(S3Error::internal)?,
            header_value(value)?,
        );
    }
    Ok(())
}

/// The write condition of `If-None-Match` (`*`: no object; an ETag: not
/// that object) and `If-Match` (`*`: an object; an ETag: that object),
/// decided when the write applies. An ETag that does not parse names no
/// object: it matches nothing.
pub(super) fn write_condition(request: &S3Request) -> Result<Option<WriteCondition>, S3Error> {
    let mut condition = WriteCondition::default();
    let mut any = false;
    if let Some(value) = request.header("if-none-match") {
        match value.trim() {
            "*" => condition.if_none_exists = true,
            etag => {
                let (md5, part_count) = parse_etag(etag).unwrap_or_default();
                condition.if_none_match = true;
                condition.none_match_md5 = md5;
                condition.none_match_part_count = part_count;
            }
        }
        any = true;
    }
    if let Some(value) = request.header("if-match") {
        if value.trim() == "*" {
            condition.if_exists = true;
            return Ok(Some(condition));
        }
        let (md5, part_count) = parse_etag(value).unwrap_or_default();
        condition.if_match = true;
        condition.match_md5 = md5;
        condition.match_part_count = part_count;
        any = true;
    }
    Ok(any.then_some(condition))
}

/// Maps the outcome of a (possibly conditional) object write.
pub(super) fn write_outcome(outcome: ApplyOutcome, key: &str) -> Result<(), S3Error> {
    match outcome {
        ApplyOutcome::Applied | ApplyOutcome::Versioned(_) => Ok(()),
        ApplyOutcome::ObjectLocked => Err(locked_error()),
        ApplyOutcome::PreconditionFailed => Err(S3Error::PreconditionFailed),
        ApplyOutcome::NoSuchKey => Err(S3Error::NoSuchKey {
            key: key.to_string(),
        }),
        ApplyOutcome::NoSuchUpload => Err(S3Error::internal("object write found no upload")),
        other => Err(S3Error::internal(format!(
            "object write applied as {other:?}"
        ))),
    }
}

/// Standard headers S3 stores with an object and returns on GET and HEAD.
pub(super) const STORED_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// The stored headers this request sets. `aws-chunked` is how the body
/// travelled, not how the object is encoded, so it is dropped from
/// Content-Encoding.
pub(super) fn stored_headers(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|&name| {
            let value = headers.get(name)?.to_str().ok()?;
            let value = if name == "content-encoding" {
                let kept: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty() && *e != "aws-chunked")
                    .collect();
                kept.join(", ")
            } else {
                value.to_string()
            };
            (!value.is_empty()).then(|| (name.to_string(), value))
        })
        .collect()
}

/// `x-amz-meta-*` headers, names lower-cased without the prefix.
pub(super) fn user_metadata(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect()
}
