//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort,
//! ListParts and ListMultipartUploads.
//!
//! An upload lives on the shard that will own the finished object, so its
//! parts' chunks land in the blob log the object's manifest will point
//! into: completing an upload copies no bytes, it commits one manifest
//! that concatenates the chosen parts' chunk refs (and drops the upload
//! and its parts in the same raft entry). A part is received exactly like
//! a PUT body (admission, MD5 lanes, checksums) and committed as its own
//! raft entry; uploading a part number again replaces it.
//!
//! Uploads neither completed nor aborted are reaped by their shard after
//! `--multipart-expiry` (see `Shard::reap_uploads`).

use std::collections::BTreeMap;
use std::rc::Rc;

use http::{Response, StatusCode};
use md5_many::Md5State;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    ChosenPart as PartChoice, CompleteUpload, MultipartUpload, ObjectManifest, PartExtent,
    UploadRef, UploadedPart, Versioning,
};
use shoal_shard::admission::Protocol;
use shoal_shard::limits::{
    COMPLETE_BODY_BYTES_MAX, LIST_KEYS_MAX, MULTIPART_OBJECT_BYTES_MAX, PARTS_MAX, PART_BYTES_MAX,
    PART_BYTES_MIN,
};
use shoal_shard::meta::is_upload_id;
use shoal_shard::ops::ShardRequest;
use shoal_shard::raft::ApplyOutcome;

use super::acl::write_owner;
use super::copy::{check_source_conditions, parse_source};
use super::object_lock::{default_retention, requested_lock};
use super::ownership::requested_owner;
use super::put::{
    chunk_placements, chunk_refs, insert_checksums, stored_headers, user_metadata, write_condition,
    write_outcome, DEFAULT_CONTENT_TYPE,
};
use super::receive::{checksum_header, receive_body, receive_small_body, BodyLimits};
use super::restream::restream;
use super::tagging::requested_tags;
use super::versioning::{bucket_versioning, insert_version_id, written_version};
use super::{
    etag, header_value, iso8601, load_object, now_unix_ms, part_number, part_number_error,
    require_bucket,
};
use crate::s3::access::{self, Caller, Permission};
use crate::s3::auth::PayloadMode;
use crate::s3::checksum::{multipart_checksum, ChecksumAlgorithm, ChecksumType, Checksummer};
use crate::s3::conditional::parse_etag;
use crate::s3::error::S3Error;
use crate::s3::ingest::{Ingest, Ingested};
use crate::s3::range::ByteRange;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, ObjectKey, Use};
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{empty_response, xml_response, Body, S3Context};
use shoal_shard::ids::ShardIndex;

/// `POST /bucket/key?uploads`.
pub async fn create(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let (algorithm, kind) = upload_checksum(request)?;
    let (owner_id, acl) = requested_owner(ctx, caller, bucket, request)?;
    let lock = requested_lock(ctx, bucket, request, false)?;
    let tags = requested_tags(request)?;
    let (encryption, object_key) =
        sse::for_new_object(ctx, bucket, &sse::header_field(request.headers()))?.unzip();
    let initiated_unix_ms = now_unix_ms();
    let upload_id = format!(
        "{:012x}{:020x}",
        initiated_unix_ms & 0xFFFF_FFFF_FFFF,
        rand::random::<u128>() & ((1 << 80) - 1)
    );
    debug_assert!(is_upload_id(&upload_id));
    let upload = MultipartUpload {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: upload_id.clone(),
        initiated_unix_ms,
        content_type: request
            .header("content-type")
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string(),
        user_metadata: user_metadata(request.headers()),
        headers: stored_headers(request.headers()),
        checksum_algorithm: algorithm.map_or(String::new(), |a| a.name().to_string()),
        checksum_type: kind.map_or(String::new(), |k| k.name().to_string()),
        owner_id,
        acl,
        retention_mode: lock.mode.into(),
        retain_until_unix_ms: lock.retain_until_unix_ms,
        legal_hold: lock.legal_hold,
        tags,
        encryption,
    };
    let owner = ctx.router.owner(bucket, key);
    let outcome = ctx.router.propose(owner, Op::CreateUpload(upload)).await?;
    if outcome != ApplyOutcome::Applied {
        return Err(S3Error::internal(format!(
            "create_upload applied as {outcome:?}"
        )));
    }
    let mut out = XmlWriter::new();
    out.open_root("InitiateMultipartUploadResult");
    out.leaf("Bucket", bucket);
    out.leaf("Key", key);
    out.leaf("UploadId", &upload_id);
    out.close("InitiateMultipartUploadResult");
    let mut response = xml_response(StatusCode::OK, out.finish());
    let headers = response.headers_mut();
    if let (Some(algorithm), Some(kind)) = (algorithm, kind) {
        headers.insert("x-amz-checksum-algorithm", header_value(algorithm.name())?);
        headers.insert("x-amz-checksum-type", header_value(kind.name())?);
    }
    if let Some(object_key) = &object_key {
        object_key.insert_headers(headers)?;
    }
    Ok(response)
}

/// `x-amz-checksum-algorithm` and `x-amz-checksum-type` of a create, as S3
/// allows them together.
fn upload_checksum(
    request: &S3Request,
) -> Result<(Option<ChecksumAlgorithm>, Option<ChecksumType>), S3Error> {
    let algorithm = match request.header("x-amz-checksum-algorithm") {
        None => None,
        Some(name) => {
            Some(
                ChecksumAlgorithm::from_name(name).ok_or_else(|| S3Error::InvalidRequest {
                    message: format!("Checksum algorithm {name:?} is not supported"),
                })?,
            )
        }
    };
    let kind = match request.header("x-amz-checksum-type") {
        None => None,
        Some(name) => {
            Some(
                ChecksumType::from_name(name).ok_or_else(|| S3Error::InvalidRequest {
                    message: format!("Checksum type {name:?} is not supported"),
                })?,
            )
        }
    };
    match (algorithm, kind) {
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(S3Error::InvalidRequest {
            message: "x-amz-checksum-type requires x-amz-checksum-algorithm".into(),
        }),
        (Some(algorithm), kind) => {
            let kind = kind.unwrap_or(algorithm.default_type());
            if !algorithm.supports(kind) {
                return Err(S3Error::InvalidRequest {
                    message: format!(
                        "The {} checksum type cannot be used with the {algorithm} algorithm",
                        kind.name()
                    ),
                });
            }
            Ok((Some(algorithm), Some(kind)))
        }
    }
}

/// The upload's checksum algorithm and type, as stored.
fn stored_checksum(upload: &MultipartUpload) -> Option<(ChecksumAlgorithm, ChecksumType)> {
    let algorithm = ChecksumAlgorithm::from_name(&upload.checksum_algorithm)?;
    let kind = ChecksumType::from_name(&upload.checksum_type).unwrap_or(algorithm.default_type());
    Some((algorithm, kind))
}

/// `PUT /bucket/key?partNumber=N&uploadId=ID`.
pub async fn upload_part(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let part_number = part_number(&request)?;
    let owner = ctx.router.owner(bucket, key);
    let upload = fetch_upload(ctx, owner, bucket, key, &request).await?;
    let algorithm = stored_checksum(&upload).map(|(algorithm, _)| algorithm);
    if let (Some(expected), Some((sent, _))) = (algorithm, checksum_header(&request)?) {
        if sent != expected {
            return Err(S3Error::InvalidRequest {
                message: format!(
                    "The upload was created with the {expected} checksum algorithm, not {sent}"
                ),
            });
        }
    }
    let part_key = upload_key(ctx, &upload, &request)?;
    let limits = BodyLimits {
        bytes_max: PART_BYTES_MAX,
        embed_max: 0,
        encrypt_with: part_key.as_ref().map(|k| k.data_key.clone()),
    };
    let received = receive_body(ctx, owner, &mut request, payload, limits, algorithm).await?;
    let checksums = received.checksums.clone();
    let part = commit_part(ctx, owner, &upload, part_number, received.stored, checksums).await?;
    let mut response = empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, header_value(&etag(&part.md5, 0))?);
    insert_checksums(headers, &received.checksums)?;
    if let Some(part_key) = &part_key {
        part_key.insert_headers(headers)?;
    }
    Ok(response)
}

/// The key an upload's parts are written with (and the upload completed
/// under): for SSE-C, the client's key, presented again on each request.
fn upload_key(
    ctx: &S3Context,
    upload: &MultipartUpload,
    request: &S3Request,
) -> Result<Option<ObjectKey>, S3Error> {
    let field = sse::header_field(request.headers());
    let presented = sse::customer_key(ctx, &field, sse::CUSTOMER_KEY_PREFIX)?;
    sse::stored_key(
        ctx,
        upload.encryption.as_ref(),
        presented.as_ref(),
        Use::Upload,
    )
}

/// `PUT /bucket/key?partNumber=N&uploadId=ID` with `x-amz-copy-source`
/// (and optionally `x-amz-copy-source-range: bytes=A-B`). The bytes are
/// read from the source's shard and stored again as the part's own chunks:
/// a range rarely falls on chunk boundaries, and the part's MD5 must be
/// computed anyway.
pub async fn upload_part_copy(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
    source: &str,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let part_number = part_number(request)?;
    let source = parse_source(source)?;
    require_bucket(ctx, &source.bucket)?;
    let owner = ctx.router.owner(bucket, key);
    let upload = fetch_upload(ctx, owner, bucket, key, request).await?;
    let algorithm = stored_checksum(&upload).map(|(algorithm, _)| algorithm);
    let src_owner = ctx.router.owner(&source.bucket, &source.key);
    let reader = access::source_reader(ctx, caller, &source.bucket, &source.key, request)?;
    let src = load_object(
        ctx,
        &reader,
        &source.bucket,
        &source.key,
        source.version_id.as_deref(),
        Permission::Read,
    )
    .await?;
    check_source_conditions(request, &src)?;
    let field = sse::header_field(request.headers());
    let presented = sse::customer_key(ctx, &field, sse::COPY_SOURCE_KEY_PREFIX)?;
    let src_key = sse::stored_key(ctx, src.encryption.as_ref(), presented.as_ref(), Use::Read)?;
    let part_key = upload_key(ctx, &upload, request)?;
    let span = copy_range(request.header("x-amz-copy-source-range"), src.size_bytes)?;
    let span_bytes = span.map_or(0, |s| s.len());
    if span_bytes > PART_BYTES_MAX {
        return Err(S3Error::EntityTooLarge {
            size_bytes: span_bytes,
            max_bytes: PART_BYTES_MAX,
        });
    }

    let mut ingest = Ingest::new(
        Rc::clone(ctx),
        owner,
        Protocol::FixedLength,
        false,
        algorithm.map(Checksummer::new),
    );
    ingest.encrypt_with(part_key.as_ref().map(|k| k.data_key.clone()));
    let src_data_key = src_key.as_ref().map(|k| &k.data_key);
    restream(ctx, src_owner, &src, src_data_key, span, &mut ingest).await?;
    let stored = ingest.finish().await?;
    let mut checksums = BTreeMap::new();
    if let (Some(algorithm), Some(value)) = (algorithm, &stored.checksum) {
        checksums.insert(algorithm.name().to_ascii_lowercase(), value.clone());
    }
    let part = commit_part(ctx, owner, &upload, part_number, stored, checksums).await?;

    let mut out = XmlWriter::new();
    out.open_root("CopyPartResult");
    out.leaf("LastModified", &iso8601(part.last_modified_unix_ms));
    out.leaf("ETag", &etag(&part.md5, 0));
    for (name, value) in &part.checksums {
        out.leaf(&checksum_element(name), value);
    }
    out.close("CopyPartResult");
    let mut response = xml_response(StatusCode::OK, out.finish());
    if let Some(part_key) = &part_key {
        part_key.insert_headers(response.headers_mut())?;
    }
    Ok(response)
}

/// `x-amz-copy-source-range`: `bytes=A-B` inside the source, both ends
/// given. `None` means the whole source, and an empty source has no range.
fn copy_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(header) = header else {
        return Ok((size > 0).then(|| ByteRange {
            first: 0,
            last: size - 1,
        }));
    };
    let invalid = || {
        S3Error::InvalidArgument {
        message: format!(
            "The x-amz-copy-source-range {header:?} is not bytes=first-last inside the source object of {size} bytes"
        ),
    }
    };
    let (first, last) = header
        .trim()
        .strip_prefix("bytes=")
        .and_then(|spec| spec.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok(Some(ByteRange { first, last }))
}

/// Commits a received part on the upload's shard (replacing an earlier
/// part of that number), then lets go of its admission charge; returns the
/// part as committed, without its chunk refs.
async fn commit_part(
    ctx: &Rc<S3Context>,
    owner: ShardIndex,
    upload: &MultipartUpload,
    part_number: u32,
    stored: Ingested,
    checksums: BTreeMap<String, String>,
) -> Result<UploadedPart, S3Error> {
    let part = UploadedPart {
        bucket: upload.bucket.clone(),
        key: upload.key.clone(),
        upload_id: upload.upload_id.clone(),
        part_number,
        size_bytes: stored.size_bytes,
        md5: stored.md5.to_vec(),
        last_modified_unix_ms: now_unix_ms(),
        chunks: chunk_refs(&stored.chunks),
        checksums,
    };
    let committed = UploadedPart {
        chunks: Vec::new(),
        ..part.clone()
    };
    let outcome = ctx
        .router
        .call(owner, |reply| ShardRequest::PutPart {
            part,
            chunks: chunk_placements(&stored.chunks),
            reply,
        })
        .await?;
    drop(stored.charge);
    match outcome {
        ApplyOutcome::Applied => Ok(committed),
        ApplyOutcome::NoSuchUpload => Err(S3Error::NoSuchUpload {
            upload_id: upload.upload_id.clone(),
        }),
        other => Err(S3Error::internal(format!("put_part applied as {other:?}"))),
    }
}

/// One `<Part>` of a CompleteMultipartUpload document.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ChosenPart {
    part_number: Option<u32>,
    etag: Option<String>,
    /// `<ChecksumCRC32>` and friends: algorithm and base64 value.
    checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>
/// <ETag>"…"</ETag></Part>…</CompleteMultipartUpload>`.
pub(crate) fn parse_complete(body: &[u8]) -> Result<Vec<ChosenPart>, S3Error> {
    const ROOT: &[u8] = b"CompleteMultipartUpload";
    let mut parts: Vec<ChosenPart> = Vec::new();
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &[ROOT, b"Part"]) => {
                parts.push(ChosenPart::default());
            }
            XmlEvent::Text(path, text)
                if path.len() == 3 && xml::path_is(&path[..2], &[ROOT, b"Part"]) =>
            {
                let part = parts.last_mut().ok_or(xml::MalformedXml)?;
                let field = path[2].as_slice();
                if field == b"PartNumber" {
                    part.part_number = Some(text.trim().parse().map_err(|_| xml::MalformedXml)?);
                } else if field == b"ETag" {
                    part.etag = Some(text.trim().to_string());
                } else if let Some(algorithm) = field
                    .strip_prefix(b"Checksum")
                    .and_then(|name| std::str::from_utf8(name).ok())
                    .and_then(ChecksumAlgorithm::from_name)
                {
                    part.checksums.push((algorithm, text.trim().to_string()));
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if parts.is_empty() || parts.len() > PARTS_MAX as usize {
        return Err(S3Error::MalformedXml);
    }
    Ok(parts)
}

/// Every chosen part has a valid number, in ascending order.
fn check_part_order(chosen: &[ChosenPart]) -> Result<(), S3Error> {
    let mut previous = 0;
    for part in chosen {
        let number = part.part_number.ok_or(S3Error::MalformedXml)?;
        if !(1..=PARTS_MAX).contains(&number) {
            return Err(part_number_error());
        }
        if number <= previous {
            return Err(S3Error::InvalidPartOrder);
        }
        previous = number;
    }
    Ok(())
}

/// The stored part for each part the client chose, if each is there with
/// the ETag and checksums the client names; every part but the last must
/// be at least [`PART_BYTES_MIN`].
fn match_parts<'a>(
    chosen: &[ChosenPart],
    stored: &'a BTreeMap<u32, UploadedPart>,
) -> Result<Vec<&'a UploadedPart>, S3Error> {
    let mut parts: Vec<&'a UploadedPart> = Vec::with_capacity(chosen.len());
    for request_part in chosen {
        let number = request_part.part_number.unwrap_or_default();
        let missing = || {
            S3Error::InvalidPart {
            message: format!(
                "Part {number} could not be found, or its ETag or checksum does not match the uploaded part's."
            ),
        }
        };
        let part = stored.get(&number).ok_or_else(missing)?;
        let etag_matches = request_part
            .etag
            .as_deref()
            .and_then(parse_etag)
            .is_some_and(|(md5, count)| md5 == part.md5 && count == 0);
        if !etag_matches {
            return Err(missing());
        }
        for (algorithm, value) in &request_part.checksums {
            let name = algorithm.name().to_ascii_lowercase();
            if part.checksums.get(&name) != Some(value) {
                return Err(missing());
            }
        }
        parts.push(part);
    }
    assert!(
        !parts.is_empty(),
        "parse_complete refuses an empty part list"
    );
    for part in &parts[..parts.len() - 1] {
        if part.size_bytes < PART_BYTES_MIN {
            return Err(S3Error::EntityTooSmall {
                part_number: part.part_number,
                size_bytes: part.size_bytes,
                min_bytes: PART_BYTES_MIN,
            });
        }
    }
    Ok(parts)
}

/// The object's checksums, combined from its parts' (the upload's
/// algorithm and type), checked against the one the client sent with the
/// completion, if any.
fn combined_checksums(
    parts: &[&UploadedPart],
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    object_checksum: Option<&(ChecksumAlgorithm, String)>,
) -> Result<BTreeMap<String, String>, S3Error> {
    let mut checksums = BTreeMap::new();
    if let Some((algorithm, kind)) = checksum {
        let name = algorithm.name().to_ascii_lowercase();
        let mut raw = Vec::with_capacity(parts.len());
        for part in parts {
            let value = part
                .checksums
                .get(&name)
                .and_then(|v| algorithm.decode(v))
                .ok_or_else(|| S3Error::InvalidPart {
                    message: format!(
                        "Part {} has no {algorithm} checksum, which this upload requires.",
                        part.part_number
                    ),
                })?;
            raw.push((value, part.size_bytes));
        }
        let value = multipart_checksum(algorithm, kind, &raw)
            .ok_or_else(|| S3Error::internal("checksum type checked at create"))?;
        checksums.insert(name, value);
    }
    if let Some((algorithm, expected)) = object_checksum {
        let name = algorithm.name().to_ascii_lowercase();
        // Either side may carry the composite's `-<parts>`; a client's
        // must count these parts.
        let (expected, expected_parts) = match expected.split_once('-') {
            Some((value, parts)) => (value, Some(parts)),
            None => (expected.as_str(), None),
        };
        let actual = checksums
            .get(&name)
            .map(|v| v.split('-').next().unwrap_or(v));
        let parts_counted = expected_parts.is_none_or(|n| n.parse() == Ok(parts.len()));
        if actual != Some(expected) || !parts_counted {
            return Err(S3Error::BadDigest {
                algorithm: algorithm.header_name(),
            });
        }
    }
    Ok(checksums)
}

/// Where each chosen part lies in the object (GET `?partNumber=`).
fn extents(parts: &[&UploadedPart]) -> Vec<PartExtent> {
    parts
        .iter()
        .map(|p| PartExtent {
            number: p.part_number,
            size_bytes: p.size_bytes,
            checksums: p.checksums.clone(),
        })
        .collect()
}

/// `POST /bucket/key?uploadId=ID`.
pub async fn complete(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let condition = write_condition(&request)?;
    let owner = ctx.router.owner(bucket, key);
    let upload = fetch_upload(ctx, owner, bucket, key, &request).await?;
    let object_key = upload_key(ctx, &upload, &request)?;
    let object_checksum = checksum_header(&request)?;
    let body =
        receive_small_body(ctx, &mut request, payload, COMPLETE_BODY_BYTES_MAX, false).await?;
    let chosen = parse_complete(&body)?;
    check_part_order(&chosen)?;

    let stored = all_parts(ctx, owner, &upload.upload_id).await?;
    let checksum = stored_checksum(&upload);
    let parts = match_parts(&chosen, &stored)?;
    let size_bytes: u64 = parts.iter().map(|p| p.size_bytes).sum();
    if size_bytes > MULTIPART_OBJECT_BYTES_MAX {
        return Err(S3Error::EntityTooLarge {
            size_bytes,
            max_bytes: MULTIPART_OBJECT_BYTES_MAX,
        });
    }

    let mut md5 = Md5State::new();
    for part in &parts {
        md5.update(&part.md5);
    }
    let checksums = combined_checksums(&parts, checksum, object_checksum.as_ref())?;
    let part_count = parts.len() as u32;
    let manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size_bytes,
        md5: md5.finalize().to_vec(),
        last_modified_unix_ms: now_unix_ms(),
        content_type: upload.content_type.clone(),
        user_metadata: upload.user_metadata.clone(),
        // Filled in from the parts when the entry is applied.
        chunks: Vec::new(),
        checksums: checksums.clone(),
        headers: upload.headers.clone(),
        checksum_type: checksum.map_or(String::new(), |(_, kind)| kind.name().to_string()),
        part_count,
        owner_id: upload.owner_id.clone(),
        acl: upload.acl.clone(),
        retention_mode: upload.retention_mode,
        retain_until_unix_ms: upload.retain_until_unix_ms,
        legal_hold: upload.legal_hold,
        tags: upload.tags.clone(),
        parts: extents(&parts),
        encryption: upload.encryption.clone(),
        ..Default::default()
    };
    let tag = etag(&manifest.md5, part_count);
    let versioning = bucket_versioning(ctx, bucket);
    let chosen_parts = parts
        .iter()
        .map(|p| PartChoice {
            part_number: p.part_number,
            md5: p.md5.clone(),
        })
        .collect();
    let upload_ref = UploadRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: upload.upload_id.clone(),
    };
    let outcome = ctx
        .router
        .propose(
            owner,
            Op::CompleteUpload(CompleteUpload {
                upload: Some(upload_ref),
                manifest: Some(manifest),
                condition,
                parts: chosen_parts,
                versioning: versioning.into(),
                default_retention: default_retention(ctx, bucket),
            }),
        )
        .await?;
    match outcome {
        ApplyOutcome::NoSuchUpload => {
            return Err(S3Error::NoSuchUpload {
                upload_id: upload.upload_id,
            })
        }
        ApplyOutcome::InvalidPart => {
            return Err(S3Error::InvalidPart {
                message: "A part was uploaded again while the upload was being completed.".into(),
            })
        }
        _ => {}
    }
    write_outcome(outcome, key)?;
    let completed = Completed {
        etag: tag,
        checksums,
        checksum_type: checksum.map(|(_, kind)| kind.name()),
        version_id: written_version(outcome),
    };
    let mut response = completion_response(bucket, key, &completed, versioning)?;
    if let Some(object_key) = &object_key {
        object_key.insert_headers(response.headers_mut())?;
    }
    Ok(response)
}

/// What a completed upload's response tells.
struct Completed {
    etag: String,
    checksums: BTreeMap<String, String>,
    checksum_type: Option<&'static str>,
    version_id: String,
}

fn completion_response(
    bucket: &str,
    key: &str,
    completed: &Completed,
    versioning: Versioning,
) -> Result<Response<Body>, S3Error> {
    let mut out = XmlWriter::new();
    out.open_root("CompleteMultipartUploadResult");
    out.leaf("Location", &format!("/{bucket}/{key}"));
    out.leaf("Bucket", bucket);
    out.leaf("Key", key);
    out.leaf("ETag", &completed.etag);
    for (name, value) in &completed.checksums {
        out.leaf(&checksum_element(name), value);
    }
    if let Some(kind) = completed.checksum_type {
        out.leaf("ChecksumType", kind);
    }
    out.close("CompleteMultipartUploadResult");
    let mut response = xml_response(StatusCode::OK, out.finish());
    insert_version_id(response.headers_mut(), &completed.version_id, versioning)?;
    Ok(response)
}

/// `DELETE /bucket/key?uploadId=ID`.
pub async fn abort(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let upload_id = request.query("uploadId").unwrap_or_default().to_string();
    let owner = ctx.router.owner(bucket, key);
    let upload = UploadRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: upload_id.clone(),
    };
    if !is_upload_id(&upload_id) {
        return Err(S3Error::NoSuchUpload { upload_id });
    }
    let outcome = ctx.router.propose(owner, Op::AbortUpload(upload)).await?;
    match outcome {
        ApplyOutcome::Applied => Ok(empty_response(StatusCode::NO_CONTENT)),
        ApplyOutcome::NoSuchUpload => Err(S3Error::NoSuchUpload { upload_id }),
        other => Err(S3Error::internal(format!("abort applied as {other:?}"))),
    }
}

/// `GET /bucket/key?uploadId=ID[&max-parts=N][&part-number-marker=M]`.
pub async fn list_parts(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let max_parts = count_param(request, "max-parts", LIST_KEYS_MAX)?;
    let marker = match request.query("part-number-marker") {
        None | Some("") => 0,
        Some(text) => text.parse::<u32>().map_err(|_| S3Error::InvalidArgument {
            message: format!("part-number-marker {text:?} is not a part number"),
        })?,
    };
    let owner = ctx.router.owner(bucket, key);
    let upload = fetch_upload(ctx, owner, bucket, key, request).await?;
    let mut parts = ctx
        .router
        .call(owner, |reply| ShardRequest::ListParts {
            upload_id: upload.upload_id.clone(),
            after: marker,
            limit: max_parts + 1,
            reply,
        })
        .await?;
    let truncated = parts.len() > max_parts;
    parts.truncate(max_parts);

    let mut out = XmlWriter::new();
    out.open_root("ListPartsResult");
    out.leaf("Bucket", bucket);
    out.leaf("Key", key);
    out.leaf("UploadId", &upload.upload_id);
    write_owner(ctx, &mut out, "Initiator", &upload.owner_id);
    write_owner(ctx, &mut out, "Owner", &upload.owner_id);
    out.leaf("StorageClass", "STANDARD");
    out.leaf("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        out.leaf("NextPartNumberMarker", &last.part_number.to_string());
    }
    out.leaf("MaxParts", &max_parts.to_string());
    out.leaf("IsTruncated", if truncated { "true" } else { "false" });
    if let Some((algorithm, kind)) = stored_checksum(&upload) {
        out.leaf("ChecksumAlgorithm", algorithm.name());
        out.leaf("ChecksumType", kind.name());
    }
    for part in &parts {
        out.open("Part");
        out.leaf("PartNumber", &part.part_number.to_string());
        out.leaf("LastModified", &iso8601(part.last_modified_unix_ms));
        out.leaf("ETag", &etag(&part.md5, 0));
        out.leaf("Size", &part.size_bytes.to_string());
        for (name, value) in &part.checksums {
            out.leaf(&checksum_element(name), value);
        }
        out.close("Part");
    }
    out.close("ListPartsResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// One entry of ListMultipartUploads.
enum Listed {
    Upload(Box<MultipartUpload>),
    Prefix(String),
}

/// Up to `max_uploads + 1` uploads from each shard, merged in (key, upload
/// id) order, and the horizon: the earliest last entry of any shard that
/// returned a full page (nothing after it may be listed yet: that shard
/// has more before it).
async fn uploads_of_every_shard(
    ctx: &Rc<S3Context>,
    bucket: &str,
    prefix: &str,
    after: &Option<(String, Option<String>)>,
    max_uploads: usize,
) -> Result<(Vec<MultipartUpload>, Option<(String, String)>), S3Error> {
    let asks = ctx.router.shards().map(|shard| {
        let (bucket, prefix, after) = (bucket.to_string(), prefix.to_string(), after.clone());
        ctx.router
            .call(shard, move |reply| ShardRequest::ListUploads {
                bucket,
                prefix,
                after,
                limit: max_uploads + 1,
                reply,
            })
    });
    let mut merged = Vec::new();
    // The earliest last entry of any shard that returned a full page.
    let mut horizon: Option<(String, String)> = None;
    for answer in futures::future::join_all(asks).await {
        let uploads = answer?;
        if uploads.len() > max_uploads {
            let last = uploads.last().expect("a full page is not empty");
            let last = (last.key.clone(), last.upload_id.clone());
            if horizon.as_ref().is_none_or(|h| last < *h) {
                horizon = Some(last);
            }
        }
        merged.extend(uploads);
    }
    merged.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    Ok((merged, horizon))
}

/// `GET /bucket?uploads[&prefix][&delimiter][&key-marker]
/// [&upload-id-marker][&max-uploads][&encoding-type=url]`.
///
/// Uploads are spread over the shards like their objects: every shard is
/// asked for its next `max-uploads + 1` after the marker, and only entries
/// no later than the last one of any shard that may hold more are used,
/// so nothing a shard did not return can sort before what is shown.
pub async fn list_uploads(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let max_uploads = count_param(request, "max-uploads", LIST_KEYS_MAX)?;
    let prefix = request.query("prefix").unwrap_or_default().to_string();
    let delimiter = request.query("delimiter").filter(|d| !d.is_empty());
    let key_marker = request.query("key-marker").filter(|m| !m.is_empty());
    let id_marker = request.query("upload-id-marker").filter(|m| !m.is_empty());
    let url_encode = request.query("encoding-type") == Some("url");
    let after = key_marker.map(|key| (key.to_string(), id_marker.map(str::to_string)));

    let (merged, horizon) =
        uploads_of_every_shard(ctx, bucket, &prefix, &after, max_uploads).await?;

    let mut entries: Vec<Listed> = Vec::new();
    let mut truncated = false;
    let mut next_markers: Option<(String, String)> = None;
    for upload in merged {
        let position = (upload.key.clone(), upload.upload_id.clone());
        if horizon.as_ref().is_some_and(|h| position > *h) {
            truncated = true;
            break;
        }
        let rolled = delimiter.and_then(|d| {
            let rest = &upload.key[prefix.len()..];
            rest.find(d)
                .map(|at| upload.key[..prefix.len() + at + d.len()].to_string())
        });
        if let Some(common) = rolled {
            if matches!(entries.last(), Some(Listed::Prefix(p)) if *p == common) {
                next_markers = Some(position);
                continue;
            }
            if entries.len() == max_uploads {
                truncated = true;
                break;
            }
            entries.push(Listed::Prefix(common));
        } else {
            if entries.len() == max_uploads {
                truncated = true;
                break;
            }
            entries.push(Listed::Upload(Box::new(upload)));
        }
        next_markers = Some(position);
    }

    let encode = |text: &str| super::list::encode(text, url_encode);
    let mut out = XmlWriter::new();
    out.open_root("ListMultipartUploadsResult");
    out.leaf("Bucket", bucket);
    out.leaf("KeyMarker", &encode(key_marker.unwrap_or_default()));
    out.leaf("UploadIdMarker", id_marker.unwrap_or_default());
    if truncated {
        if let Some((key, id)) = &next_markers {
            out.leaf("NextKeyMarker", &encode(key));
            out.leaf("NextUploadIdMarker", id);
        }
    }
    out.leaf("Prefix", &encode(&prefix));
    if let Some(d) = delimiter {
        out.leaf("Delimiter", &encode(d));
    }
    out.leaf("MaxUploads", &max_uploads.to_string());
    if url_encode {
        out.leaf("EncodingType", "url");
    }
    out.leaf("IsTruncated", if truncated { "true" } else { "false" });
    for entry in &entries {
        if let Listed::Upload(upload) = entry {
            out.open("Upload");
            out.leaf("Key", &encode(&upload.key));
            out.leaf("UploadId", &upload.upload_id);
            write_owner(ctx, &mut out, "Initiator", &upload.owner_id);
            write_owner(ctx, &mut out, "Owner", &upload.owner_id);
            out.leaf("StorageClass", "STANDARD");
            out.leaf("Initiated", &iso8601(upload.initiated_unix_ms));
            if let Some((algorithm, kind)) = stored_checksum(upload) {
                out.leaf("ChecksumAlgorithm", algorithm.name());
                out.leaf("ChecksumType", kind.name());
            }
            out.close("Upload");
        }
    }
    for entry in &entries {
        if let Listed::Prefix(common) = entry {
            out.open("CommonPrefixes");
            out.leaf("Prefix", &encode(common));
            out.close("CommonPrefixes");
        }
    }
    out.close("ListMultipartUploadsResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// The upload named by the `uploadId` query parameter, or NoSuchUpload.
async fn fetch_upload(
    ctx: &Rc<S3Context>,
    owner: ShardIndex,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<MultipartUpload, S3Error> {
    let upload_id = request.query("uploadId").unwrap_or_default().to_string();
    if !is_upload_id(&upload_id) {
        return Err(S3Error::NoSuchUpload { upload_id });
    }
    let upload = UploadRef {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: upload_id.clone(),
    };
    ctx.router
        .call(owner, |reply| ShardRequest::GetUpload { upload, reply })
        .await?
        .ok_or(S3Error::NoSuchUpload { upload_id })
}

/// Every part of an upload, by part number.
async fn all_parts(
    ctx: &Rc<S3Context>,
    owner: ShardIndex,
    upload_id: &str,
) -> Result<BTreeMap<u32, UploadedPart>, S3Error> {
    let mut parts = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = ctx
            .router
            .call(owner, |reply| ShardRequest::ListParts {
                upload_id: upload_id.to_string(),
                after,
                limit: LIST_KEYS_MAX,
                reply,
            })
            .await?;
        let full = page.len() == LIST_KEYS_MAX;
        for part in page {
            after = part.part_number;
            parts.insert(part.part_number, part);
        }
        if !full {
            return Ok(parts);
        }
    }
}

/// A `max-*` query parameter: default and ceiling `max`.
fn count_param(request: &S3Request, name: &str, max: usize) -> Result<usize, S3Error> {
    match request.query(name) {
        None | Some("") => Ok(max),
        Some(text) => {
            text.parse::<usize>()
                .map(|n| n.min(max))
                .map_err(|_| S3Error::InvalidArgument {
                    message: format!("{name} {text:?} is not a non-negative integer"),
                })
        }
    }
}

/// `Checksum` + the algorithm name as S3 spells it: `crc32` → `ChecksumCRC32`.
pub(super) fn checksum_element(name: &str) -> String {
    format!("Checksum{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_documents() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><ETag>"0123"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
            <Part><PartNumber>3</PartNumber><ETag>&quot;4567&quot;</ETag></Part>
        </CompleteMultipartUpload>"#;
        let parts = parse_complete(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].part_number, Some(1));
        assert_eq!(parts[0].etag.as_deref(), Some("\"0123\""));
        assert_eq!(
            parts[0].checksums,
            vec![(ChecksumAlgorithm::Crc32, "AAAAAA==".to_string())]
        );
        assert_eq!(parts[1].part_number, Some(3));
        assert_eq!(parts[1].etag.as_deref(), Some("\"4567\""));
        for bad in [
            &b""[..],
            b"<CompleteMultipartUpload></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>",
            b"<Other><Part><PartNumber>1</PartNumber></Part></Other>",
        ] {
            assert!(parse_complete(bad).is_err());
        }
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(
            copy_range(None, 10).unwrap(),
            Some(ByteRange { first: 0, last: 9 })
        );
        assert_eq!(copy_range(None, 0).unwrap(), None);
        assert_eq!(
            copy_range(Some("bytes=2-5"), 10).unwrap(),
            Some(ByteRange { first: 2, last: 5 })
        );
        for bad in ["bytes=5-2", "bytes=0-10", "bytes=-3", "bytes=3-", "2-5"] {
            assert!(copy_range(Some(bad), 10).is_err(), "{bad}");
        }
    }

    #[test]
    fn etags_parse_both_forms() {
        let md5 = vec![0xab; 16];
        let single = format!("\"{}\"", hex::encode(&md5));
        assert_eq!(parse_etag(&single), Some((md5.clone(), 0)));
        let multi = format!("{}-12", hex::encode(&md5));
        assert_eq!(parse_etag(&multi), Some((md5, 12)));
        assert_eq!(parse_etag("\"zz\""), None);
        assert_eq!(parse_etag("\"abab-0\""), None);
    }
}
