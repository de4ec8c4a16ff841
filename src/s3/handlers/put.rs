//! PutObject: frame the body, ingest it chunk by chunk, verify every
//! checksum the client sent, then commit the manifest on the owner shard.
//!
//! Order matters for durability and for `Expect: 100-continue`: everything
//! that can be checked from the headers is checked before the first body
//! read (hyper sends `100 Continue` only when the body is first polled),
//! and the manifest is proposed only after all chunks are durable and all
//! digests matched, so a failed PUT is never visible.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use shoal_proto::meta::{ChunkRef, ObjectManifest};
use shoal_shard::admission::Protocol;
use shoal_shard::limits::{CHUNK_BYTES, OBJECT_BYTES_MAX};
use shoal_shard::ops::ShardRequest;

use super::{etag, header_value, now_unix_ms, require_bucket};
use crate::s3::auth::PayloadMode;
use crate::s3::checksum::{ChecksumAlgorithm, Checksummer};
use crate::s3::chunked::{ChunkedDecoder, ChunkedMode};
use crate::s3::error::S3Error;
use crate::s3::ingest::Ingest;
use crate::s3::request::S3Request;
use crate::s3::{empty_response, Body, S3Context};

/// Content type S3 records when the client sends none.
pub(super) const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// How the request body is framed on the wire.
enum Framing {
    /// Plain body of exactly this many bytes.
    Fixed { length: u64 },
    /// aws-chunked: frames to decode, `decoded_length` payload bytes inside.
    Chunked {
        decoder: Box<ChunkedDecoder>,
        decoded_length: u64,
    },
}

pub async fn put_object(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let expected_body_sha = match &payload {
        PayloadMode::Sha256(sha) => Some(*sha),
        _ => None,
    };
    let mut framing = framing(&request, payload)?;
    let declared_bytes = match &framing {
        Framing::Fixed { length } => *length,
        Framing::Chunked { decoded_length, .. } => *decoded_length,
    };
    if declared_bytes > OBJECT_BYTES_MAX {
        return Err(S3Error::EntityTooLarge {
            size_bytes: declared_bytes,
            max_bytes: OBJECT_BYTES_MAX,
        });
    }
    let content_md5 = content_md5(&request)?;
    let requested_checksum = checksum_header(&request)?;
    let user_metadata = user_metadata(&request);
    let content_type = request
        .header("content-type")
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_string();

    let owner = ctx.router.owner(bucket, key);
    let protocol = match framing {
        Framing::Fixed { .. } => Protocol::FixedLength,
        Framing::Chunked { .. } => Protocol::Chunked,
    };
    // Fail fast, before `100 Continue`, when the owner shard has no room
    // for even the first chunk. Charges nothing. aws-chunked bodies skip it
    // and only ever wait (their length is a promise, not a frame size).
    if protocol == Protocol::FixedLength {
        ctx.gates[usize::from(owner)]
            .peek(declared_bytes.min(CHUNK_BYTES as u64), protocol)
            .map_err(|reason| S3Error::SlowDown { reason })?;
    }
    let mut ingest = Ingest::new(
        Rc::clone(ctx),
        owner,
        protocol,
        expected_body_sha.is_some(),
        requested_checksum
            .as_ref()
            .map(|(alg, _)| Checksummer::new(*alg)),
    );
    let mut body = request
        .take_body()
        .ok_or_else(|| S3Error::internal("PUT body taken twice"))?;
    let mut raw_bytes = 0u64;
    loop {
        // Charge before reading, not after: a frame read while waiting for
        // budget would be memory outside the budget.
        if ingest.size_bytes() < declared_bytes {
            ingest.ensure_room().await?;
        }
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|_| S3Error::IncompleteBody {
            expected_bytes: declared_bytes,
            received_bytes: ingest.size_bytes(),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        raw_bytes += data.len() as u64;
        // Feed the frame in pieces no larger than the chunk buffer's room,
        // so each new buffer is charged before it is filled. Decoding never
        // grows data, so an aws-chunked piece fits too: it pays as it
        // decodes.
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            let room = ingest.ensure_room().await?;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            match &mut framing {
                Framing::Fixed { .. } => ingest.absorb(piece),
                Framing::Chunked { decoder, .. } => {
                    decoder.feed(piece, &mut |decoded| ingest.absorb(decoded))?
                }
            }
            rest = tail;
            if ingest.size_bytes() > declared_bytes {
                return Err(S3Error::InvalidRequest {
                    message: format!("The body is longer than the declared {declared_bytes} bytes"),
                });
            }
            ingest.send_sealed().await?;
        }
    }
    ctx.metrics.add_bytes_in(raw_bytes);
    let trailer_checksum = match &mut framing {
        Framing::Fixed { length } => {
            if raw_bytes != *length {
                return Err(S3Error::IncompleteBody {
                    expected_bytes: *length,
                    received_bytes: raw_bytes,
                });
            }
            None
        }
        Framing::Chunked { decoder, .. } => decoder.finish()?.checksum,
    };
    if ingest.size_bytes() != declared_bytes {
        return Err(S3Error::IncompleteBody {
            expected_bytes: declared_bytes,
            received_bytes: ingest.size_bytes(),
        });
    }
    let stored = ingest.finish().await?;

    if let (Some(expected), Some(actual)) = (expected_body_sha, stored.body_sha256) {
        if expected != actual {
            return Err(S3Error::ContentSha256Mismatch);
        }
    }
    if let Some(expected) = content_md5 {
        if expected != stored.md5 {
            return Err(S3Error::BadDigest {
                algorithm: "Content-MD5",
            });
        }
    }
    let mut checksums = BTreeMap::new();
    if let Some((algorithm, expected)) = &requested_checksum {
        if stored.checksum.as_deref() != Some(expected.as_str()) {
            return Err(S3Error::BadDigest {
                algorithm: algorithm.header_name(),
            });
        }
        checksums.insert(algorithm.name().to_ascii_lowercase(), expected.clone());
    }
    // The decoder already verified a trailer checksum against the body.
    if let Some((algorithm, value)) = trailer_checksum {
        checksums.insert(algorithm.name().to_ascii_lowercase(), value);
    }

    let manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size_bytes: stored.size_bytes,
        md5: stored.md5.to_vec(),
        last_modified_unix_ms: now_unix_ms(),
        content_type,
        user_metadata,
        chunks: stored
            .chunks
            .iter()
            .map(|c| ChunkRef {
                sha256: c.sha256.to_vec(),
                size_bytes: c.size_bytes,
                source_node: ctx.config.node_id,
            })
            .collect(),
        checksums: checksums.clone(),
        headers: stored_headers(&request),
    };
    let blobs = stored
        .chunks
        .iter()
        .map(|c| (c.sha256, c.location))
        .collect();
    ctx.router
        .call(owner, |reply| ShardRequest::CommitObject {
            manifest,
            blobs,
            reply,
        })
        .await?;
    // The commit is final: the upload's last admission unit goes back.
    drop(stored.charge);

    let mut response = empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, header_value(&etag(&stored.md5))?);
    for (name, value) in &checksums {
        headers.insert(
            http::HeaderName::try_from(format!("x-amz-checksum-{name}"))
                .map_err(S3Error::internal)?,
            header_value(value)?,
        );
    }
    Ok(response)
}

fn framing(request: &S3Request, payload: PayloadMode) -> Result<Framing, S3Error> {
    let declared_trailer =
        match request.header("x-amz-trailer") {
            Some(name) => Some(ChecksumAlgorithm::from_header_name(name.trim()).ok_or_else(
                || S3Error::InvalidRequest {
                    message: format!("Unsupported x-amz-trailer {name:?}"),
                },
            )?),
            None => None,
        };
    let mode = match payload {
        PayloadMode::StreamingSigned { seed } => Some(ChunkedMode::Signed(seed)),
        PayloadMode::StreamingSignedTrailer { seed } => Some(ChunkedMode::SignedTrailer(seed)),
        PayloadMode::StreamingUnsignedTrailer => Some(ChunkedMode::UnsignedTrailer),
        PayloadMode::Sha256(_) | PayloadMode::Unsigned => None,
    };
    let content_length = || -> Result<u64, S3Error> {
        let value = request
            .header("content-length")
            .ok_or(S3Error::MissingContentLength)?;
        value.parse().map_err(|_| S3Error::InvalidArgument {
            message: format!("Invalid Content-Length {value:?}"),
        })
    };
    match mode {
        Some(mode) => {
            let value = request
                .header("x-amz-decoded-content-length")
                .ok_or(S3Error::MissingContentLength)?;
            let decoded_length = value.parse().map_err(|_| S3Error::InvalidArgument {
                message: format!("Invalid x-amz-decoded-content-length {value:?}"),
            })?;
            Ok(Framing::Chunked {
                decoder: Box::new(ChunkedDecoder::new(mode, declared_trailer)),
                decoded_length,
            })
        }
        None => {
            let encoding = request.header("content-encoding").unwrap_or("");
            if encoding.split(',').any(|e| e.trim() == "aws-chunked") {
                return Err(S3Error::InvalidRequest {
                    message: "aws-chunked bodies need a STREAMING-* x-amz-content-sha256".into(),
                });
            }
            Ok(Framing::Fixed {
                length: content_length()?,
            })
        }
    }
}

/// The decoded `Content-MD5` header, if sent.
pub(super) fn content_md5(request: &S3Request) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(value) = request.header("content-md5") else {
        return Ok(None);
    };
    let bytes = BASE64
        .decode(value.trim())
        .map_err(|_| S3Error::InvalidDigest)?;
    let md5: [u8; 16] = bytes.try_into().map_err(|_| S3Error::InvalidDigest)?;
    Ok(Some(md5))
}

/// The one `x-amz-checksum-*` header the client sent, if any.
pub(super) fn checksum_header(
    request: &S3Request,
) -> Result<Option<(ChecksumAlgorithm, String)>, S3Error> {
    let mut found = None;
    for (name, value) in request.headers() {
        let Some(algorithm) = ChecksumAlgorithm::from_header_name(name.as_str()) else {
            continue;
        };
        if found.is_some() {
            return Err(S3Error::InvalidRequest {
                message: "Expecting a single x-amz-checksum- header".into(),
            });
        }
        let value = value.to_str().map_err(|_| S3Error::InvalidDigest)?;
        found = Some((algorithm, value.trim().to_string()));
    }
    Ok(found)
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
pub(super) fn stored_headers(request: &S3Request) -> BTreeMap<String, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|&name| {
            let value = request.header(name)?;
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
pub(super) fn user_metadata(request: &S3Request) -> BTreeMap<String, String> {
    request
        .headers()
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
