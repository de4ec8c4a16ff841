//! CopyObject: `PUT /bucket/key` with `x-amz-copy-source`.
//!
//! Metadata comes from the source (`x-amz-metadata-directive: COPY`, the
//! default) or from this request (`REPLACE`). Chunk bytes are shared, not
//! copied, when the destination key belongs to the same shard as the
//! source (the refs point at chunks that shard already holds); otherwise
//! each chunk is read from the source shard, checked against its SHA-256
//! by the blob log, and appended to the destination shard's log, one chunk
//! at a time and charged to its admission budget like a PUT.

use std::rc::Rc;

use http::{Response, StatusCode};
use percent_encoding::percent_decode_str;
use shoal_proto::meta::ObjectManifest;
use shoal_shard::admission::{AdmissionError, Protocol, Stage};
use shoal_shard::chunk_hash::ChunkHash;
use shoal_shard::ops::{ChunkPlacement, ShardRequest};

use super::put::{stored_headers, user_metadata, write_outcome, writer_id, DEFAULT_CONTENT_TYPE};
use super::{etag, iso8601, load_object, now_unix_ms, require_bucket};
use crate::s3::access::{self, Caller, Permission};
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};
use shoal_shard::ids::{NodeId, ShardIndex};

pub async fn copy_object(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
    source: &str,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let (src_bucket, src_key) = parse_source(source)?;
    require_bucket(ctx, &src_bucket)?;
    let replace = match request.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::InvalidArgument {
                message: format!("Unknown metadata directive {other:?}"),
            })
        }
    };
    if src_bucket == bucket && src_key == key && !replace {
        return Err(S3Error::InvalidRequest {
            message: "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.".into(),
        });
    }
    let src_owner = ctx.router.owner(&src_bucket, &src_key);
    let source = load_object(ctx, caller, &src_bucket, &src_key, Permission::Read).await?;
    // The copy is a new object: the caller's, with the ACL this request
    // asks for (S3 does not copy ACLs).
    let acl = access::requested_acl(ctx, request)?;
    let owner_id = writer_id(ctx, caller, bucket);

    let owner = ctx.router.owner(bucket, key);
    let chunks = if owner == src_owner {
        Vec::new()
    } else {
        copy_chunks(ctx, src_owner, owner, &source).await?
    };
    let mut manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        last_modified_unix_ms: now_unix_ms(),
        owner_id,
        acl,
        ..source
    };
    if replace {
        manifest.content_type = request
            .header("content-type")
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string();
        manifest.user_metadata = user_metadata(request);
        manifest.headers = stored_headers(request);
    }
    let tag = etag(&manifest.md5, manifest.part_count);
    let modified = manifest.last_modified_unix_ms;
    let outcome = ctx
        .router
        .call(owner, |reply| ShardRequest::CommitObject {
            manifest,
            chunks,
            condition: None,
            reply,
        })
        .await?;
    write_outcome(outcome, key)?;

    let mut out = XmlWriter::new();
    out.open_root("CopyObjectResult");
    out.leaf("LastModified", &iso8601(modified));
    out.leaf("ETag", &tag);
    out.close("CopyObjectResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// Reads every chunk of `source` from `from` and appends it to `to`, one
/// at a time; returns where each landed.
async fn copy_chunks(
    ctx: &Rc<S3Context>,
    from: ShardIndex,
    to: ShardIndex,
    source: &ObjectManifest,
) -> Result<Vec<(ChunkHash, ChunkPlacement)>, S3Error> {
    let gate = &ctx.gates[to.as_usize()];
    let mut charge = gate.begin();
    let mut chunks = Vec::with_capacity(source.chunks.len());
    for chunk in &source.chunks {
        let sha256 = ChunkHash::from_slice(&chunk.sha256)
            .ok_or_else(|| S3Error::internal("chunk ref without a 32-byte hash"))?;
        match gate
            .acquire(&mut charge, Stage::PerBatch, Protocol::FixedLength)
            .await
        {
            Ok(()) => {}
            Err(AdmissionError::MustDrain { .. }) => {
                unreachable!("each chunk is durable before the next")
            }
            Err(reason) => return Err(S3Error::SlowDown { reason }),
        }
        let bytes = ctx
            .router
            .call(from, |reply| ShardRequest::ReadChunk {
                sha256,
                source_node: NodeId(chunk.source_node),
                reply,
            })
            .await?;
        let mut buf = ctx.pool.take();
        if buf.fill_from(&bytes) != bytes.len() || bytes.len() != chunk.size_bytes as usize {
            return Err(S3Error::internal(format!(
                "chunk {} is not {} bytes",
                sha256, chunk.size_bytes
            )));
        }
        ctx.disks.of_shard(to).consume(bytes.len() as u64);
        let (location, buf) = ctx
            .router
            .call(to, |reply| ShardRequest::AppendChunk { buf, sha256, reply })
            .await?;
        ctx.pool.give(buf);
        charge.release_durable(1);
        chunks.push((sha256, location));
    }
    Ok(chunks)
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=null]`, URL-encoded.
pub(super) fn parse_source(header: &str) -> Result<(String, String), S3Error> {
    let invalid = || S3Error::InvalidArgument {
        message: "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
            .into(),
    };
    let (path, version) = match header.split_once('?') {
        Some((path, query)) => (path, query.strip_prefix("versionId=")),
        None => (header, None),
    };
    if version.is_some_and(|v| v != "null") {
        return Err(S3Error::NotImplemented {
            what: "Copying a specific object version",
        });
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?;
    let (bucket, key) = decoded
        .trim_start_matches('/')
        .split_once('/')
        .ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        assert_eq!(parse_source("/b/k").unwrap(), ("b".into(), "k".into()));
        assert_eq!(
            parse_source("b/dir/a%20b").unwrap(),
            ("b".into(), "dir/a b".into())
        );
        assert_eq!(
            parse_source("b/k?versionId=null").unwrap(),
            ("b".into(), "k".into())
        );
        assert!(parse_source("b").is_err());
        assert!(parse_source("/b/").is_err());
        assert!(parse_source("b/k?versionId=3").is_err());
    }
}
