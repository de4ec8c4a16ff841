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
use shoal_proto::meta::{BucketEncryption, ObjectEncryption, ObjectManifest};
use shoal_shard::admission::{AdmissionError, Charge, Protocol, Stage};
use shoal_shard::chunk_hash::ChunkHash;
use shoal_shard::ops::{ChunkPlacement, ShardRequest};

use super::object_lock::{default_retention, requested_lock};
use super::ownership::requested_owner;
use super::put::{
    chunk_placements, chunk_refs, stored_encryption, stored_headers, user_metadata, write_outcome,
    DEFAULT_CONTENT_TYPE,
};
use super::restream::restream;
use super::tagging::requested_tags;
use super::versioning::{bucket_versioning, insert_version_id, version_id_of, written_version};
use super::{etag, header_value, iso8601, load_object, now_unix_ms, require_bucket};
use crate::s3::access::{self, Caller, Permission};
use crate::s3::conditional::{Preconditions, Verdict};
use crate::s3::error::S3Error;
use crate::s3::ingest::{Ingest, Ingested};
use crate::s3::range::ByteRange;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, keys::DataKey, ObjectKey, Use};
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};
use shoal_proto::meta::Versioning;
use shoal_shard::ids::{NodeId, ShardIndex};
use shoal_shard::version_id::is_version_id;

pub async fn copy_object(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
    source: &str,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let CopySource {
        bucket: src_bucket,
        key: src_key,
        version_id: src_version,
    } = parse_source(source)?;
    require_bucket(ctx, &src_bucket)?;
    let replace = replaces(request, "x-amz-metadata-directive")?;
    let src_owner = ctx.router.owner(&src_bucket, &src_key);
    let reader = access::source_reader(ctx, caller, &src_bucket, &src_key, request)?;
    let source = load_object(
        ctx,
        &reader,
        &src_bucket,
        &src_key,
        src_version.as_deref(),
        Permission::Read,
    )
    .await?;
    check_source_conditions(request, &source)?;
    let encryption = copy_encryption(ctx, request, &source, bucket)?;
    // Copying an earlier version over its key restores it: allowed; so is
    // a copy onto itself that changes how it is encrypted.
    let same = src_bucket == bucket && src_key == key && src_version.is_none();
    if same && !replace && encryption.keep {
        return Err(S3Error::InvalidRequest {
            message: "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into(),
        });
    }
    let source_version = version_id_of(&source).to_string();
    let src_versioning = bucket_versioning(ctx, &src_bucket);
    let versioning = bucket_versioning(ctx, bucket);
    // The copy is a new object: the caller's, with the ACL this request
    // asks for (S3 does not copy ACLs).
    let (owner_id, acl) = requested_owner(ctx, caller, bucket, request)?;
    // Nor its Object Lock: the copy has what this request asks, if any.
    let lock = requested_lock(ctx, bucket, request, false)?;
    let replace_tags = match replaces(request, "x-amz-tagging-directive")? {
        true => Some(requested_tags(request)?),
        false => None,
    };

    let owner = ctx.router.owner(bucket, key);
    let Copied {
        source,
        chunks,
        object_key,
        charge,
    } = copy_bytes(ctx, (src_owner, owner), source, encryption).await?;
    let mut manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        last_modified_unix_ms: now_unix_ms(),
        owner_id,
        acl,
        ..source
    };
    lock.apply_to(&mut manifest);
    if let Some(tags) = replace_tags {
        manifest.tags = tags;
    }
    if replace {
        manifest.content_type = request
            .header("content-type")
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string();
        manifest.user_metadata = user_metadata(request.headers());
        manifest.headers = stored_headers(request.headers());
    }
    let tag = etag(&manifest.md5, manifest.part_count);
    let modified = manifest.last_modified_unix_ms;
    let outcome = ctx
        .router
        .call(owner, |reply| ShardRequest::CommitObject {
            manifest,
            chunks,
            condition: None,
            versioning,
            default_retention: default_retention(ctx, bucket),
            reply,
        })
        .await?;
    drop(charge);
    write_outcome(outcome, key)?;

    let mut out = XmlWriter::new();
    out.open_root("CopyObjectResult");
    out.leaf("LastModified", &iso8601(modified));
    out.leaf("ETag", &tag);
    out.close("CopyObjectResult");
    let mut response = xml_response(StatusCode::OK, out.finish());
    let headers = response.headers_mut();
    if src_versioning != Versioning::Unversioned || src_version.is_some() {
        headers.insert(
            "x-amz-copy-source-version-id",
            header_value(&source_version)?,
        );
    }
    insert_version_id(headers, &written_version(outcome), versioning)?;
    if let Some(object_key) = &object_key {
        object_key.insert_headers(headers)?;
    }
    Ok(response)
}

/// Whether a `COPY`/`REPLACE` directive header says REPLACE.
fn replaces(request: &S3Request, header: &str) -> Result<bool, S3Error> {
    match request.header(header) {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(S3Error::InvalidArgument {
            message: format!("Unknown {header} {other:?}"),
        }),
    }
}

/// How a copy's source is read and its copy encrypted.
struct CopyEncryption {
    /// The source's key (its SSE-C key, presented by the request).
    source_key: Option<ObjectKey>,
    requested: sse::Requested,
    bucket_default: Option<BucketEncryption>,
    /// The copy keeps the source's protection and key: it shares the
    /// stored bytes.
    keep: bool,
}

fn copy_encryption(
    ctx: &S3Context,
    request: &S3Request,
    source: &ObjectManifest,
    bucket: &str,
) -> Result<CopyEncryption, S3Error> {
    let field = sse::header_field(request.headers());
    let presented = sse::customer_key(ctx, &field, sse::COPY_SOURCE_KEY_PREFIX)?;
    let stored = source.encryption.as_ref();
    let source_key = sse::stored_key(ctx, stored, presented.as_ref(), Use::Read)?;
    let requested = sse::requested(ctx, &field)?;
    let bucket_default = sse::bucket_default(ctx, bucket)?;
    let keep = sse::keeps_protection(
        stored,
        presented.as_ref(),
        &requested,
        bucket_default.is_some(),
    );
    Ok(CopyEncryption {
        source_key,
        requested,
        bucket_default,
        keep,
    })
}

/// The copy's bytes, where they are: the source's manifest as the copy's
/// starting point, the chunks to index on the destination shard, the key
/// the response describes, and the admission charge of bytes stored anew.
struct Copied {
    source: ObjectManifest,
    chunks: Vec<(ChunkHash, ChunkPlacement)>,
    object_key: Option<ObjectKey>,
    charge: Option<Charge>,
}

/// Makes the source's bytes the copy's on shard `to`: shared as they are
/// (the same shard), appended as they are (another shard), or stored again
/// under the copy's encryption.
async fn copy_bytes(
    ctx: &Rc<S3Context>,
    (from, to): (ShardIndex, ShardIndex),
    source: ObjectManifest,
    encryption: CopyEncryption,
) -> Result<Copied, S3Error> {
    let object_key = encryption.source_key;
    if encryption.keep {
        let chunks = match from == to {
            true => Vec::new(),
            false => copy_chunks(ctx, from, to, &source).await?,
        };
        return Ok(Copied {
            source,
            chunks,
            object_key,
            charge: None,
        });
    }
    let default = encryption.bucket_default.as_ref();
    let (stored_encryption, dest_key) =
        sse::new_object_key(ctx, encryption.requested, default).unzip();
    let data_key = object_key.as_ref().map(|k| &k.data_key);
    let dest_data_key = dest_key.as_ref().map(|k| k.data_key.clone());
    let stored = reencrypt(ctx, from, to, &source, data_key, dest_data_key).await?;
    Ok(Copied {
        chunks: chunk_placements(&stored.chunks),
        source: restreamed(source, &stored, stored_encryption),
        object_key: dest_key,
        charge: Some(stored.charge),
    })
}

/// Stores the source's bytes again on shard `to`, decrypted with `key`
/// and encrypted with `dest_key` (a copy that changes the encryption).
async fn reencrypt(
    ctx: &Rc<S3Context>,
    from: ShardIndex,
    to: ShardIndex,
    source: &ObjectManifest,
    key: Option<&DataKey>,
    dest_key: Option<DataKey>,
) -> Result<Ingested, S3Error> {
    let mut ingest = Ingest::new(Rc::clone(ctx), to, Protocol::FixedLength, false, None);
    ingest.embed_up_to(ctx.config.embed_max_bytes);
    ingest.encrypt_with(dest_key);
    let span = (source.size_bytes > 0).then(|| ByteRange {
        first: 0,
        last: source.size_bytes - 1,
    });
    restream(ctx, from, source, key, span, &mut ingest).await?;
    ingest.finish().await
}

/// The source's manifest with the bytes stored again as `stored`: one
/// body now (its ETag the MD5 of it), under `encryption`. A composite
/// checksum described the parts, which the copy no longer has.
fn restreamed(
    source: ObjectManifest,
    stored: &Ingested,
    encryption: Option<ObjectEncryption>,
) -> ObjectManifest {
    let composite = source.checksum_type == "COMPOSITE";
    ObjectManifest {
        md5: stored.md5.to_vec(),
        chunks: chunk_refs(&stored.chunks),
        embedded: stored.embedded.clone(),
        encryption: stored_encryption(encryption, stored.embedded_iv),
        part_count: 0,
        parts: Vec::new(),
        checksums: match composite {
            true => Default::default(),
            false => source.checksums.clone(),
        },
        checksum_type: match composite {
            true => String::new(),
            false => source.checksum_type.clone(),
        },
        ..source
    }
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
/// The copy's `x-amz-copy-source-if-*` conditions on its source: any that
/// fails refuses the copy (412), as S3 answers.
pub(super) fn check_source_conditions(
    request: &S3Request,
    source: &ObjectManifest,
) -> Result<(), S3Error> {
    let preconditions = Preconditions {
        if_match: request.header("x-amz-copy-source-if-match"),
        if_none_match: request.header("x-amz-copy-source-if-none-match"),
        if_modified_since: request.header("x-amz-copy-source-if-modified-since"),
        if_unmodified_since: request.header("x-amz-copy-source-if-unmodified-since"),
    };
    let tag = etag(&source.md5, source.part_count);
    match preconditions.evaluate(&tag, source.last_modified_unix_ms) {
        Verdict::Proceed => Ok(()),
        Verdict::Failed | Verdict::NotModified => Err(S3Error::PreconditionFailed),
    }
}

pub(super) fn parse_source(header: &str) -> Result<CopySource, S3Error> {
    let invalid = || S3Error::InvalidArgument {
        message: "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
            .into(),
    };
    let (path, version_id) = match header.split_once('?') {
        Some((path, query)) => {
            let version_id = query.strip_prefix("versionId=").ok_or_else(invalid)?;
            if !is_version_id(version_id) {
                return Err(S3Error::InvalidArgument {
                    message: "Invalid version id specified".into(),
                });
            }
            (path, Some(version_id.to_string()))
        }
        None => (header, None),
    };
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
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

/// What `x-amz-copy-source` names: an object, or one version of it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        let source = |bucket: &str, key: &str, version_id: Option<&str>| CopySource {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.map(str::to_string),
        };
        assert_eq!(parse_source("/b/k").unwrap(), source("b", "k", None));
        assert_eq!(
            parse_source("b/dir/a%20b").unwrap(),
            source("b", "dir/a b", None)
        );
        assert_eq!(
            parse_source("b/k?versionId=null").unwrap(),
            source("b", "k", Some("null"))
        );
        let id = "0193a5e8f0000000000000000000002a00000000";
        let id = &id[..36];
        assert_eq!(
            parse_source(&format!("b/k?versionId={id}")).unwrap(),
            source("b", "k", Some(id))
        );
        assert!(parse_source("b").is_err());
        assert!(parse_source("/b/").is_err());
        assert!(parse_source("b/k?versionId=3").is_err());
        assert!(parse_source("b/k?other=3").is_err());
    }
}
