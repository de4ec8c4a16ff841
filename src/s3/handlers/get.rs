//! GetObject, HeadObject and DeleteObject.
//!
//! GET streams the chunks a range needs from the owner shard, one read
//! ahead of the one being sent, so disk and network overlap without holding
//! more than two chunks per download, each taken from the core's download
//! budget (`s3::downloads`) before it is read and given back once the
//! client has taken it. The first chunk is read before the
//! response is built: one that cannot be read answers `500` instead of a
//! `200` whose body is cut (a client that does not check the length would
//! take that as a short object); a later one can only cut the connection.

use std::rc::Rc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{HeaderName, Response, StatusCode};
use http_body_util::StreamBody;
use hyper::body::Frame;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{DeleteCondition, DeleteObject, ObjectManifest};
use shoal_shard::chunk_hash::ChunkHash;
use shoal_shard::error::ShardError;
use shoal_shard::ops::ShardRequest;

use super::object_lock::{bypass_governance, insert_lock_headers, locked_error};
use super::put::insert_checksums;
use super::versioning;
use super::{etag, header_value, http_date, load_requested, part_number, require_bucket};
use crate::s3::access::{Caller, Permission};
use crate::s3::conditional::{delete_condition, Preconditions, Verdict};
use crate::s3::downloads::Held;
use crate::s3::error::S3Error;
use crate::s3::range::{self, ByteRange, RangeRequest};
use crate::s3::request::S3Request;
use crate::s3::sse::cipher::IV_BYTES;
use crate::s3::sse::keys::DataKey;
use crate::s3::sse::{self, ObjectKey, Use};
use crate::s3::{empty_response, Body, S3Context};
use shoal_shard::ids::{NodeId, ShardIndex};
use shoal_shard::raft::ApplyOutcome;
use shoal_shard::version_id::NULL_VERSION_ID;

pub async fn get_object(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
    head: bool,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let owner = ctx.router.owner(bucket, key);
    let mut manifest = load_requested(ctx, caller, bucket, key, request, Permission::Read).await?;
    let bucket_versioning = versioning::bucket_versioning(ctx, bucket);
    let tag = etag(&manifest.md5, manifest.part_count);
    if let Some(not_modified) = check_preconditions(request, &manifest, &tag)? {
        return Ok(not_modified);
    }
    let size = manifest.size_bytes;
    let (status, span) = answered_span(request, &manifest)?;
    let object_key = read_key(ctx, request, &manifest)?;
    let body_len = span.map_or(size, |s| s.len());
    let mut response = if head || body_len == 0 {
        empty_response(status)
    } else {
        let whole = ByteRange {
            first: 0,
            last: size - 1,
        };
        let span = span.unwrap_or(whole);
        let data_key = object_key.as_ref().map(|k| k.data_key.clone());
        let body = match manifest.embedded.is_empty() {
            true => chunk_stream(Rc::clone(ctx), owner, &manifest, span, data_key).await?,
            false => {
                let embedded = std::mem::take(&mut manifest.embedded);
                let iv = embedded_iv(&manifest)?;
                embedded_body(ctx, embedded, span, data_key.as_ref(), iv)?
            }
        };
        Response::new(body)
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_LENGTH,
        header_value(&body_len.to_string())?,
    );
    headers.insert(http::header::ETAG, header_value(&tag)?);
    headers.insert(
        http::header::LAST_MODIFIED,
        header_value(&http_date(manifest.last_modified_unix_ms))?,
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        header_value(&manifest.content_type)?,
    );
    headers.insert(http::header::ACCEPT_RANGES, header_value("bytes")?);
    versioning::insert_version_id(
        headers,
        versioning::version_id_of(&manifest),
        bucket_versioning,
    )?;
    insert_lock_headers(headers, &manifest)?;
    if let Some(object_key) = &object_key {
        object_key.insert_headers(headers)?;
    }
    if !manifest.tags.is_empty() {
        headers.insert(
            "x-amz-tagging-count",
            header_value(&manifest.tags.len().to_string())?,
        );
    }
    if request.has_query("partNumber") && manifest.part_count > 0 {
        headers.insert(
            "x-amz-mp-parts-count",
            header_value(&manifest.part_count.to_string())?,
        );
        insert_part_checksums(headers, request, &manifest)?;
    }
    if let Some(span) = span {
        headers.insert(
            http::header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", span.first, span.last))?,
        );
    }
    for (name, value) in &manifest.headers {
        let name = HeaderName::try_from(name.as_str()).map_err(S3Error::internal)?;
        headers.insert(name, header_value(value)?);
    }
    for (name, value) in &manifest.user_metadata {
        let name = HeaderName::try_from(format!("x-amz-meta-{name}")).map_err(S3Error::internal)?;
        headers.insert(name, header_value(value)?);
    }
    insert_response_overrides(headers, caller, request)?;
    let checksum_mode = request.header("x-amz-checksum-mode");
    if span.is_none() && checksum_mode.is_some_and(|m| m.eq_ignore_ascii_case("enabled")) {
        insert_checksums(headers, &manifest.checksums)?;
        if !manifest.checksums.is_empty() {
            let kind = match manifest.checksum_type.as_str() {
                "" => "FULL_OBJECT",
                kind => kind,
            };
            headers.insert("x-amz-checksum-type", header_value(kind)?);
        }
    }
    Ok(response)
}

/// The `304 Not Modified` answer the request's conditions call for, if
/// they call for one; `412` if one fails.
fn check_preconditions(
    request: &S3Request,
    manifest: &ObjectManifest,
    tag: &str,
) -> Result<Option<Response<Body>>, S3Error> {
    let preconditions = Preconditions {
        if_match: request.header("if-match"),
        if_none_match: request.header("if-none-match"),
        if_modified_since: request.header("if-modified-since"),
        if_unmodified_since: request.header("if-unmodified-since"),
    };
    match preconditions.evaluate(tag, manifest.last_modified_unix_ms) {
        Verdict::Proceed => Ok(None),
        Verdict::Failed => Err(S3Error::PreconditionFailed),
        Verdict::NotModified => {
            let mut response = empty_response(StatusCode::NOT_MODIFIED);
            let headers = response.headers_mut();
            headers.insert(http::header::ETAG, header_value(tag)?);
            headers.insert(
                http::header::LAST_MODIFIED,
                header_value(&http_date(manifest.last_modified_unix_ms))?,
            );
            Ok(Some(response))
        }
    }
}

/// The checksums of the part `?partNumber=` names, and the object's
/// checksum type: what a client verifies a part it fetched by number with.
fn insert_part_checksums(
    headers: &mut http::HeaderMap,
    request: &S3Request,
    manifest: &ObjectManifest,
) -> Result<(), S3Error> {
    let number = part_number(request)?;
    let Some(part) = manifest.parts.iter().find(|p| p.number == number) else {
        return Ok(());
    };
    insert_checksums(headers, &part.checksums)?;
    if !part.checksums.is_empty() && !manifest.checksum_type.is_empty() {
        headers.insert(
            "x-amz-checksum-type",
            header_value(&manifest.checksum_type)?,
        );
    }
    Ok(())
}

/// The key a GET or HEAD reads the object with: the SSE-C key it must
/// present, or the node's for SSE-S3; `None` for plaintext. Reads take no
/// `x-amz-server-side-encryption` header, as S3 answers.
pub(super) fn read_key(
    ctx: &S3Context,
    request: &S3Request,
    manifest: &ObjectManifest,
) -> Result<Option<ObjectKey>, S3Error> {
    if request.header("x-amz-server-side-encryption").is_some() {
        return Err(S3Error::InvalidArgument {
            message: "x-amz-server-side-encryption is for writes; a read of an SSE-S3 object needs no header.".into(),
        });
    }
    let field = sse::header_field(request.headers());
    let presented = sse::customer_key(ctx, &field, sse::CUSTOMER_KEY_PREFIX)?;
    sse::stored_key(
        ctx,
        manifest.encryption.as_ref(),
        presented.as_ref(),
        Use::Read,
    )
}

/// The counter block of an object's embedded body, if it is encrypted.
pub(super) fn embedded_iv(manifest: &ObjectManifest) -> Result<Option<[u8; IV_BYTES]>, S3Error> {
    manifest
        .encryption
        .as_ref()
        .map_or(Ok(None), |e| sse::chunk_iv(&e.embedded_iv))
}

/// What a signed GET may ask to be told instead of what was stored, by
/// query parameter: (parameter, header it replaces).
const RESPONSE_OVERRIDES: [(&str, HeaderName); 6] = [
    ("response-content-type", http::header::CONTENT_TYPE),
    ("response-content-language", http::header::CONTENT_LANGUAGE),
    ("response-expires", http::header::EXPIRES),
    ("response-cache-control", http::header::CACHE_CONTROL),
    (
        "response-content-disposition",
        http::header::CONTENT_DISPOSITION,
    ),
    ("response-content-encoding", http::header::CONTENT_ENCODING),
];

/// Applies the `response-*` overrides a GET or HEAD asks for; S3 takes
/// them from signed requests only.
fn insert_response_overrides(
    headers: &mut http::HeaderMap,
    caller: &Caller,
    request: &S3Request,
) -> Result<(), S3Error> {
    for (parameter, header) in RESPONSE_OVERRIDES {
        let Some(value) = request.query(parameter) else {
            continue;
        };
        if caller.user_id().is_none() {
            return Err(S3Error::InvalidRequest {
                message:
                    "Request specific response headers cannot be used for anonymous GET requests."
                        .into(),
            });
        }
        let value = http::HeaderValue::from_str(value).map_err(|_| S3Error::InvalidArgument {
            message: format!("{parameter} is not a valid header value"),
        })?;
        headers.insert(header, value);
    }
    Ok(())
}

/// The status and byte range a GET answers with: the part `?partNumber=`
/// names, the `Range` asked for, or the whole object.
fn answered_span(
    request: &S3Request,
    manifest: &ObjectManifest,
) -> Result<(StatusCode, Option<ByteRange>), S3Error> {
    let part = match request.query("partNumber") {
        Some(_) => Some(part_number(request)?),
        None => None,
    };
    let has_range = request.header("range").is_some();
    if let Some(answer) = requested_part(part, has_range, manifest)? {
        return Ok(answer);
    }
    let size = manifest.size_bytes;
    match range::resolve(request.header("range"), size) {
        RangeRequest::Whole => Ok((StatusCode::OK, None)),
        RangeRequest::Partial(span) => Ok((StatusCode::PARTIAL_CONTENT, Some(span))),
        RangeRequest::Unsatisfiable => Err(S3Error::InvalidRange { size_bytes: size }),
    }
}

/// What `?partNumber=` (`part`) asks of the object, as the status and
/// byte range to answer with; `None` without that parameter. A multipart
/// object's part is served like a range of it (206); part 1 of an object
/// written by one PUT is the whole object, as S3 answers.
fn requested_part(
    part: Option<u32>,
    has_range: bool,
    manifest: &ObjectManifest,
) -> Result<Option<(StatusCode, Option<ByteRange>)>, S3Error> {
    let Some(number) = part else {
        return Ok(None);
    };
    if has_range {
        return Err(S3Error::InvalidRequest {
            message: "Cannot specify both Range header and partNumber query parameter".into(),
        });
    }
    let no_such_part = || S3Error::InvalidPart {
        message: format!("The object has no part {number}."),
    };
    if manifest.part_count == 0 {
        return match number {
            1 => Ok(Some((StatusCode::OK, None))),
            _ => Err(no_such_part()),
        };
    }
    if manifest.parts.is_empty() {
        return Err(S3Error::NotImplemented {
            what: "GET and HEAD by partNumber of an object completed before this version of Shoal kept part sizes",
        });
    }
    let mut first = 0;
    for part in &manifest.parts {
        if part.number == number {
            let span = (part.size_bytes > 0).then(|| ByteRange {
                first,
                last: first + part.size_bytes - 1,
            });
            return Ok(Some((StatusCode::PARTIAL_CONTENT, span)));
        }
        first += part.size_bytes;
    }
    Err(no_such_part())
}

pub async fn delete_object(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let condition = delete_condition(
        request.header("if-match"),
        request.header("x-amz-if-match-last-modified-time"),
        request.header("x-amz-if-match-size"),
    )?;
    let version_id = versioning::requested_version(request)?;
    let bypass = bypass_governance(ctx, caller, bucket, request);
    let deleted = delete_one(ctx, bucket, key, version_id, bypass, condition).await?;
    let mut response = empty_response(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    if deleted.delete_marker {
        headers.insert("x-amz-delete-marker", header_value("true")?);
    }
    if let Some(version_id) = &deleted.version_id {
        headers.insert("x-amz-version-id", header_value(version_id)?);
    }
    Ok(response)
}

/// What one DELETE did, as its response tells it.
pub(super) struct Deleted {
    /// A delete marker was written, or (by version id) removed.
    pub delete_marker: bool,
    /// The version named, or the delete marker written; `None` in a
    /// bucket that never had versioning.
    pub version_id: Option<String>,
}

/// Deletes one object (or one version of it) as the bucket's versioning
/// says, on the key's shard, if `condition` holds when it applies.
pub(super) async fn delete_one(
    ctx: &S3Context,
    bucket: &str,
    key: &str,
    version_id: Option<String>,
    bypass_governance: bool,
    condition: Option<DeleteCondition>,
) -> Result<Deleted, S3Error> {
    let owner = ctx.router.owner(bucket, key);
    let outcome = ctx
        .router
        .propose(
            owner,
            Op::DeleteObject(DeleteObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                versioning: versioning::bucket_versioning(ctx, bucket).into(),
                version_id: version_id.clone(),
                bypass_governance,
                condition,
            }),
        )
        .await?;
    Ok(match outcome {
        ApplyOutcome::DeleteMarkerWritten(stamp) => Deleted {
            delete_marker: true,
            version_id: Some(stamp.map_or_else(|| NULL_VERSION_ID.to_string(), |s| s.id())),
        },
        ApplyOutcome::ObjectLocked => return Err(locked_error()),
        ApplyOutcome::PreconditionFailed => return Err(S3Error::PreconditionFailed),
        ApplyOutcome::DeleteMarkerRemoved => Deleted {
            delete_marker: true,
            version_id,
        },
        _ => Deleted {
            delete_marker: false,
            version_id,
        },
    })
}

/// The part of one chunk a response needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Piece {
    pub sha256: ChunkHash,
    pub size_bytes: u32,
    /// The ref's hint of which node stored the chunk first.
    pub source_node: u64,
    pub skip: usize,
    pub take: usize,
    /// The counter block it was encrypted from; `None`: plaintext.
    pub iv: Option<[u8; IV_BYTES]>,
}

/// Chunks overlapping `span`, with the bytes to skip and take from each.
pub(super) fn plan(manifest: &ObjectManifest, span: ByteRange) -> Result<Vec<Piece>, S3Error> {
    let mut pieces = Vec::new();
    let mut chunk_first = 0u64;
    for chunk in &manifest.chunks {
        let size = u64::from(chunk.size_bytes);
        let chunk_last = chunk_first + size; // exclusive
        if chunk_last > span.first && chunk_first <= span.last {
            let skip = span.first.saturating_sub(chunk_first);
            let end = (span.last + 1).min(chunk_last) - chunk_first;
            pieces.push(Piece {
                // A malformed ref reads as a missing chunk.
                sha256: ChunkHash::from_slice(&chunk.sha256).unwrap_or_default(),
                size_bytes: chunk.size_bytes,
                source_node: chunk.source_node,
                skip: skip as usize,
                take: (end - skip) as usize,
                iv: sse::chunk_iv(&chunk.iv)?,
            });
        }
        chunk_first = chunk_last;
    }
    Ok(pieces)
}

type ReadTask = glommio::Task<Result<Bytes, ShardError>>;

/// A chunk read under way, and the budget it holds until its bytes are
/// sent.
struct Pending {
    piece: Piece,
    task: ReadTask,
    held: Held,
}

/// Starts reading `piece`, with the budget `held` for it.
fn start_read(ctx: &Rc<S3Context>, owner: ShardIndex, piece: Piece, held: Held) -> Pending {
    let reader = Rc::clone(ctx);
    let task = glommio::spawn_local(async move {
        reader
            .router
            .call(owner, |reply| ShardRequest::ReadChunk {
                sha256: piece.sha256,
                source_node: NodeId(piece.source_node),
                reply,
            })
            .await
    });
    Pending { piece, task, held }
}

/// Starts reading the next piece if its budget is free now: the read
/// ahead never waits (the stream waits when it needs the piece).
fn read_ahead(ctx: &Rc<S3Context>, owner: ShardIndex, pieces: &mut Pieces) -> Option<Pending> {
    let piece = *pieces.peek()?;
    let held = ctx.downloads.try_take(u64::from(piece.size_bytes))?;
    pieces.next();
    Some(start_read(ctx, owner, piece, held))
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// A GET body stream's state: what is left to read, the read under way,
/// and the budget of the frame last sent.
type StreamState = (Rc<S3Context>, Pieces, Option<Pending>, Option<Held>);

/// Where `span` lies in an object's embedded body, checked against the
/// body's length (the manifest's size is what the span was resolved
/// against).
pub(super) fn embedded_range(
    embedded: &[u8],
    span: ByteRange,
) -> Result<std::ops::Range<usize>, S3Error> {
    let range = span.first as usize..span.last as usize + 1;
    if range.end > embedded.len() {
        return Err(S3Error::internal(format!(
            "an embedded body of {} bytes is shorter than its manifest says",
            embedded.len()
        )));
    }
    Ok(range)
}

/// The body of a GET of `span` of an object whose bytes are in its
/// manifest: already in memory, so no read and no download budget.
fn embedded_body(
    ctx: &S3Context,
    embedded: Vec<u8>,
    span: ByteRange,
    key: Option<&DataKey>,
    iv: Option<[u8; IV_BYTES]>,
) -> Result<Body, S3Error> {
    let range = embedded_range(&embedded, span)?;
    ctx.metrics.add_bytes_out(range.len() as u64);
    let bytes = sse::open_bytes(key, iv, span.first, Bytes::from(embedded).slice(range))?;
    let frame: std::io::Result<Frame<Bytes>> = Ok(Frame::data(bytes));
    Ok(Box::pin(StreamBody::new(
        stream::once(async move { frame }).boxed_local(),
    )))
}

/// The last item of a GET body that cannot go on: headers are out, so all
/// it can do is cut the connection.
fn cut(
    ctx: Rc<S3Context>,
    error: std::io::Error,
) -> Option<(std::io::Result<Frame<Bytes>>, StreamState)> {
    let nothing_left = Vec::new().into_iter().peekable();
    Some((Err(error), (ctx, nothing_left, None, None)))
}

/// The body of a GET of `span` (not empty), once its first chunk has been
/// read; see the module docs.
async fn chunk_stream(
    ctx: Rc<S3Context>,
    owner: ShardIndex,
    manifest: &ObjectManifest,
    span: ByteRange,
    key: Option<DataKey>,
) -> Result<Body, S3Error> {
    let mut pieces: Pieces = plan(manifest, span)?.into_iter().peekable();
    let piece = pieces.next().expect("a span is never empty");
    // A new GET waits for budget as a PUT does, then is turned away; one
    // under way waits as long as its client may stall.
    let held = ctx
        .downloads
        .take(u64::from(piece.size_bytes), ctx.config.admission.timeout)
        .await
        .map_err(S3Error::DownloadsFull)?;
    let first = start_read(&ctx, owner, piece, held);
    let next = read_ahead(&ctx, owner, &mut pieces);
    let bytes = piece_bytes(&ctx, first.piece, first.task.await, key.as_ref()).map_err(|e| {
        tracing::error!(error = %e, "GET failed before its response");
        S3Error::internal(e)
    })?;
    let streaming = ctx.config.body_idle_timeout;
    // Each frame's budget is given back when the stream is asked for the
    // next one: hyper has then handed the frame to the socket.
    let key = Rc::new(key);
    let rest = stream::unfold(
        (ctx, pieces, next, Some(first.held)),
        move |(ctx, mut pieces, pending, sent)| {
            let key = Rc::clone(&key);
            async move {
                drop(sent);
                let pending = match pending {
                    Some(pending) => pending,
                    None => {
                        let piece = pieces.next()?;
                        match ctx
                            .downloads
                            .take(u64::from(piece.size_bytes), streaming)
                            .await
                        {
                            Ok(held) => start_read(&ctx, owner, piece, held),
                            Err(full) => {
                                tracing::warn!(error = %full, "GET cut mid-stream: no download budget");
                                return cut(ctx, std::io::Error::other(full.to_string()));
                            }
                        }
                    }
                };
                let next = read_ahead(&ctx, owner, &mut pieces);
                match piece_bytes(
                    &ctx,
                    pending.piece,
                    pending.task.await,
                    key.as_ref().as_ref(),
                ) {
                    Ok(bytes) => Some((
                        Ok(Frame::data(bytes)),
                        (ctx, pieces, next, Some(pending.held)),
                    )),
                    Err(e) => {
                        tracing::error!(error = %e, "GET failed mid-stream");
                        cut(ctx, e)
                    }
                }
            }
        },
    );
    let frames = stream::once(async move { Ok(Frame::data(bytes)) }).chain(rest);
    Ok(Box::pin(StreamBody::new(frames.boxed_local())))
}

/// The bytes of `piece` a read returned, checked against the manifest's
/// chunk size, decrypted with `key` and counted as sent.
fn piece_bytes(
    ctx: &S3Context,
    piece: Piece,
    read: Result<Bytes, ShardError>,
    key: Option<&DataKey>,
) -> std::io::Result<Bytes> {
    match read {
        Ok(bytes) if bytes.len() == piece.size_bytes as usize => {
            let taken = bytes.slice(piece.skip..piece.skip + piece.take);
            let plain = sse::open_bytes(key, piece.iv, piece.skip as u64, taken)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            ctx.metrics.add_bytes_out(piece.take as u64);
            Ok(plain)
        }
        Ok(bytes) => Err(std::io::Error::other(format!(
            "chunk {} read {} bytes, manifest says {}",
            piece.sha256,
            bytes.len(),
            piece.size_bytes
        ))),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::meta::ChunkRef;

    fn manifest(sizes: &[u32]) -> ObjectManifest {
        ObjectManifest {
            chunks: sizes
                .iter()
                .map(|&size_bytes| ChunkRef {
                    sha256: vec![0; 32],
                    size_bytes,
                    source_node: 1,
                    iv: Vec::new(),
                })
                .collect(),
            size_bytes: sizes.iter().map(|&s| u64::from(s)).sum(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_crosses_chunk_boundaries() {
        let m = manifest(&[10, 10, 5]);
        let pieces = plan(&m, ByteRange { first: 8, last: 21 }).unwrap();
        let spans: Vec<_> = pieces.iter().map(|p| (p.skip, p.take)).collect();
        assert_eq!(spans, vec![(8, 2), (0, 10), (0, 2)]);
        let whole = plan(&m, ByteRange { first: 0, last: 24 }).unwrap();
        assert_eq!(whole.iter().map(|p| p.take).sum::<usize>(), 25);
        let inside = plan(
            &m,
            ByteRange {
                first: 12,
                last: 13,
            },
        )
        .unwrap();
        assert_eq!(
            inside.iter().map(|p| (p.skip, p.take)).collect::<Vec<_>>(),
            vec![(2, 2)]
        );
    }

    #[test]
    fn a_part_is_a_range_of_the_object_by_its_own_number() {
        let mut object = ObjectManifest {
            size_bytes: 15,
            part_count: 3,
            parts: [(1, 5), (3, 0), (7, 10)]
                .map(|(number, size_bytes)| shoal_proto::meta::PartExtent {
                    number,
                    size_bytes,
                    ..Default::default()
                })
                .to_vec(),
            ..Default::default()
        };
        let range = |first, last| {
            Ok(Some((
                StatusCode::PARTIAL_CONTENT,
                Some(ByteRange { first, last }),
            )))
        };
        assert_eq!(part_of(&object, 1), range(0, 4));
        assert_eq!(
            part_of(&object, 3),
            Ok(Some((StatusCode::PARTIAL_CONTENT, None))),
            "an empty part"
        );
        assert_eq!(part_of(&object, 7), range(5, 14));
        assert_eq!(
            part_of(&object, 2),
            Err("InvalidPart"),
            "a number the upload skipped"
        );
        assert_eq!(part_of(&object, 8), Err("InvalidPart"));
        let both = requested_part(Some(1), true, &object).map_err(|e| e.code());
        assert_eq!(both, Err("InvalidRequest"));
        assert_eq!(
            requested_part(None, true, &object).map_err(|e| e.code()),
            Ok(None)
        );

        // Completed before part sizes were kept: refused, never guessed.
        object.parts.clear();
        assert_eq!(part_of(&object, 1), Err("NotImplemented"));
        // Written by one PUT: part 1 is the whole object.
        object.part_count = 0;
        assert_eq!(part_of(&object, 1), Ok(Some((StatusCode::OK, None))));
        assert_eq!(part_of(&object, 2), Err("InvalidPart"));
    }

    fn part_of(
        object: &ObjectManifest,
        number: u32,
    ) -> Result<Option<(StatusCode, Option<ByteRange>)>, &'static str> {
        requested_part(Some(number), false, object).map_err(|e| e.code())
    }
}
