//! Receiving an upload's body (PutObject, UploadPart): frame it, ingest it
//! chunk by chunk under admission control, and verify every digest the
//! client sent.
//!
//! Order matters for durability and for `Expect: 100-continue`: everything
//! that can be checked from the headers is checked before the first body
//! read (hyper sends `100 Continue` only when the body is first polled).
//! Nothing here makes the bytes visible: the caller commits a manifest or
//! a part only after [`receive_body`] returned, so a failed upload leaves
//! only unreferenced chunks.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hyper::body::Incoming;
use sha2::{Digest as _, Sha256};
use shoal_shard::admission::Protocol;
use shoal_shard::limits::CHUNK_BYTES;

use super::{next_frame, read_xml_body};
use crate::s3::auth::PayloadMode;
use crate::s3::checksum::{ChecksumAlgorithm, Checksummer};
use crate::s3::chunked::{ChunkedDecoder, ChunkedMode};
use crate::s3::error::S3Error;
use crate::s3::ingest::{Ingest, Ingested};
use crate::s3::post_form::FileDecoder;
use crate::s3::request::S3Request;
use crate::s3::sse::keys::DataKey;
use crate::s3::S3Context;
use shoal_shard::ids::ShardIndex;

/// Reads a small request body (an XML document) whole and checks it
/// against every digest the client sent: the signed payload hash,
/// Content-MD5, and an `x-amz-checksum-*` header when `checksum_is_body`
/// (CompleteMultipartUpload's describes the object instead). Over
/// `bytes_max` is `MalformedXML`, as S3 answers for oversized documents.
pub(super) async fn receive_small_body(
    ctx: &S3Context,
    request: &mut S3Request,
    payload: PayloadMode,
    bytes_max: usize,
    checksum_is_body: bool,
) -> Result<Vec<u8>, S3Error> {
    let expected_sha = match payload {
        PayloadMode::Sha256(sha) => Some(sha),
        PayloadMode::Unsigned => None,
        _ => {
            return Err(S3Error::InvalidRequest {
                message: "This operation takes a plain (not aws-chunked) body".into(),
            })
        }
    };
    let md5 = content_md5(request)?;
    let checksum = match checksum_is_body {
        true => checksum_header(request)?,
        false => None,
    };
    let body = read_xml_body(ctx, request, bytes_max).await?;
    if expected_sha.is_some_and(|sha| <[u8; 32]>::from(Sha256::digest(&body)) != sha) {
        return Err(S3Error::ContentSha256Mismatch);
    }
    if md5.is_some_and(|md5| md5_many::md5(&body) != md5) {
        return Err(S3Error::BadDigest {
            algorithm: "Content-MD5",
        });
    }
    if let Some((algorithm, expected)) = checksum {
        let mut summer = Checksummer::new(algorithm);
        summer.update(&body);
        if summer.finish_base64() != expected {
            return Err(S3Error::BadDigest {
                algorithm: algorithm.header_name(),
            });
        }
    }
    Ok(body)
}

/// How the request body is framed on the wire.
enum Framing {
    /// Plain body of exactly this many bytes.
    Fixed { length: u64 },
    /// Plain body of a length not told in advance (`Transfer-Encoding:
    /// chunked` without Content-Length; hyper removes the HTTP chunking):
    /// taken up to the operation's size limit, charged as it arrives.
    Streamed,
    /// aws-chunked: frames to decode, `decoded_length` payload bytes inside.
    Chunked {
        decoder: Box<ChunkedDecoder>,
        decoded_length: u64,
    },
    /// The file part of a browser upload form, up to the delimiter the
    /// decoder looks for.
    Form { decoder: FileDecoder },
}

/// A body stored and verified.
pub(super) struct Received {
    pub stored: Ingested,
    /// Checksums to keep with the data, by lower-case algorithm name
    /// (`crc32`, ...), base64: the one the client sent (header or
    /// trailer), or the one computed for `default_checksum`.
    pub checksums: BTreeMap<String, String>,
}

/// What [`receive_body`] may take and how it keeps it.
pub(super) struct BodyLimits {
    /// Bounds the declared length (EntityTooLarge).
    pub bytes_max: u64,
    /// A body up to this size is kept whole for the manifest (0: never).
    pub embed_max: u64,
    /// The data key to encrypt what is stored with; `None`: plaintext.
    pub encrypt_with: Option<DataKey>,
}

/// Receives the request body into `owner`'s blob log (or, when small
/// enough, whole for the manifest). `default_checksum` is computed when
/// the client sends no checksum of its own (a multipart upload created
/// with an algorithm).
pub(super) async fn receive_body(
    ctx: &Rc<S3Context>,
    owner: ShardIndex,
    request: &mut S3Request,
    payload: PayloadMode,
    limits: BodyLimits,
    default_checksum: Option<ChecksumAlgorithm>,
) -> Result<Received, S3Error> {
    let bytes_max = limits.bytes_max;
    let expected_body_sha = match &payload {
        PayloadMode::Sha256(sha) => Some(*sha),
        _ => None,
    };
    let mut framing = framing(request, payload)?;
    let (declared_bytes, trailer_declared) = match &framing {
        Framing::Fixed { length } => (*length, false),
        Framing::Streamed => (bytes_max, false),
        Framing::Chunked {
            decoded_length,
            decoder,
        } => (*decoded_length, decoder.declared_trailer().is_some()),
        Framing::Form { .. } => unreachable!("forms are received by receive_form_file"),
    };
    if declared_bytes > bytes_max {
        return Err(S3Error::EntityTooLarge {
            size_bytes: declared_bytes,
            max_bytes: bytes_max,
        });
    }
    let content_md5 = content_md5(request)?;
    let requested_checksum = checksum_header(request)?;
    let computed_checksum = match &requested_checksum {
        Some((algorithm, _)) => Some(*algorithm),
        None if trailer_declared => None,
        None => default_checksum,
    };

    let protocol = match framing {
        Framing::Fixed { .. } | Framing::Form { .. } => Protocol::FixedLength,
        // Neither knows its length before it ends: they wait for budget
        // rather than being refused up front.
        Framing::Chunked { .. } | Framing::Streamed => Protocol::Chunked,
    };
    // Fail fast, before `100 Continue`, when the owner shard has no room
    // for even the first chunk. Charges nothing. aws-chunked bodies skip it
    // and only ever wait (their length is a promise, not a frame size).
    if protocol == Protocol::FixedLength {
        ctx.gates[owner.as_usize()]
            .peek(declared_bytes.min(CHUNK_BYTES as u64), protocol)
            .map_err(|reason| S3Error::SlowDown { reason })?;
    }
    let mut ingest = Ingest::new(
        Rc::clone(ctx),
        owner,
        protocol,
        expected_body_sha.is_some(),
        computed_checksum.map(Checksummer::new),
    );
    ingest.embed_up_to(limits.embed_max);
    ingest.encrypt_with(limits.encrypt_with);
    let mut body = request
        .take_body()
        .ok_or_else(|| S3Error::internal("request body taken twice"))?;
    let idle = ctx.config.body_idle_timeout;
    let raw_bytes = feed_frames(&mut body, &mut framing, &mut ingest, declared_bytes, idle).await?;
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
        Framing::Streamed => None,
        Framing::Chunked { decoder, .. } => decoder.finish()?.checksum,
        Framing::Form { .. } => unreachable!("forms are received by receive_form_file"),
    };
    let streamed = matches!(framing, Framing::Streamed);
    if !streamed && ingest.size_bytes() != declared_bytes {
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
    let checksums = kept_checksums(
        requested_checksum,
        computed_checksum,
        &stored,
        trailer_checksum,
    )?;
    Ok(Received { stored, checksums })
}

/// Reads the body frame by frame into `ingest` (decoding aws-chunked
/// framing), charging admission before each buffer is filled; returns the
/// bytes read off the wire.
async fn feed_frames(
    body: &mut Incoming,
    framing: &mut Framing,
    ingest: &mut Ingest,
    declared_bytes: u64,
    idle: Duration,
) -> Result<u64, S3Error> {
    let mut raw_bytes = 0u64;
    loop {
        // Charge before reading, not after: a frame read while waiting for
        // budget would be memory outside the budget.
        if ingest.size_bytes() < declared_bytes {
            ingest.ensure_room().await?;
        }
        let Some(frame) = next_frame(body, idle).await? else {
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
        feed_data(&data, framing, ingest, declared_bytes).await?;
    }
    Ok(raw_bytes)
}

/// Feeds body bytes to `ingest` in pieces no larger than the chunk
/// buffer's room, so each new buffer is charged before it is filled.
/// Decoding never grows data, so an aws-chunked piece fits too: it pays
/// as it decodes.
async fn feed_data(
    data: &[u8],
    framing: &mut Framing,
    ingest: &mut Ingest,
    declared_bytes: u64,
) -> Result<(), S3Error> {
    let mut rest = data;
    while !rest.is_empty() {
        let room = ingest.ensure_room().await?;
        let (piece, tail) = rest.split_at(room.min(rest.len()));
        match framing {
            Framing::Fixed { .. } | Framing::Streamed => ingest.absorb(piece),
            Framing::Chunked { decoder, .. } => {
                decoder.feed(piece, &mut |decoded| ingest.absorb(decoded))?
            }
            Framing::Form { decoder } => decoder.feed(piece, &mut |file| ingest.absorb(file)),
        }
        rest = tail;
        if ingest.size_bytes() > declared_bytes {
            return Err(match framing {
                Framing::Streamed => S3Error::EntityTooLarge {
                    size_bytes: ingest.size_bytes(),
                    max_bytes: declared_bytes,
                },
                _ => S3Error::InvalidRequest {
                    message: format!("The body is longer than the declared {declared_bytes} bytes"),
                },
            });
        }
        ingest.send_sealed().await?;
    }
    Ok(())
}

/// Receives the file of a browser upload form into `owner`'s blob log:
/// `started` is what of it arrived with the fields, then the rest of
/// `body` up to the form's `boundary`. Charged like a PUT of at most
/// `length_max` bytes (what the request's length leaves for the file).
pub(super) async fn receive_form_file(
    ctx: &Rc<S3Context>,
    owner: ShardIndex,
    mut body: Incoming,
    started: &[u8],
    boundary: &str,
    length_max: u64,
    encrypt_with: Option<DataKey>,
) -> Result<Ingested, S3Error> {
    let protocol = Protocol::FixedLength;
    ctx.gates[owner.as_usize()]
        .peek(length_max.min(CHUNK_BYTES as u64), protocol)
        .map_err(|reason| S3Error::SlowDown { reason })?;
    let mut ingest = Ingest::new(Rc::clone(ctx), owner, protocol, false, None);
    ingest.embed_up_to(ctx.config.embed_max_bytes);
    ingest.encrypt_with(encrypt_with);
    let mut framing = Framing::Form {
        decoder: FileDecoder::new(boundary),
    };
    feed_data(started, &mut framing, &mut ingest, length_max).await?;
    let idle = ctx.config.body_idle_timeout;
    let raw_bytes = feed_frames(&mut body, &mut framing, &mut ingest, length_max, idle).await?;
    ctx.metrics.add_bytes_in(raw_bytes);
    let Framing::Form { decoder } = &framing else {
        unreachable!("set above")
    };
    if !decoder.is_done() {
        return Err(S3Error::IncompleteBody {
            expected_bytes: length_max,
            received_bytes: ingest.size_bytes(),
        });
    }
    ingest.finish().await
}

/// The checksums to keep with the object: the one the client sent (which
/// must match what was computed), else the one computed by default, and a
/// trailer's (the decoder already verified it against the body).
fn kept_checksums(
    requested: Option<(ChecksumAlgorithm, String)>,
    computed: Option<ChecksumAlgorithm>,
    stored: &Ingested,
    trailer: Option<(ChecksumAlgorithm, String)>,
) -> Result<BTreeMap<String, String>, S3Error> {
    let mut checksums = BTreeMap::new();
    match (&requested, computed, &stored.checksum) {
        (Some((algorithm, expected)), _, actual) => {
            if actual.as_deref() != Some(expected.as_str()) {
                return Err(S3Error::BadDigest {
                    algorithm: algorithm.header_name(),
                });
            }
            checksums.insert(algorithm.name().to_ascii_lowercase(), expected.clone());
        }
        (None, Some(algorithm), Some(actual)) => {
            checksums.insert(algorithm.name().to_ascii_lowercase(), actual.clone());
        }
        _ => {}
    }
    if let Some((algorithm, value)) = trailer {
        checksums.insert(algorithm.name().to_ascii_lowercase(), value);
    }
    Ok(checksums)
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
    let mode = ChunkedMode::of(payload);
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
            let chunked = request.header("transfer-encoding").is_some_and(|te| {
                te.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
            });
            match request.header("content-length") {
                None if chunked => Ok(Framing::Streamed),
                _ => Ok(Framing::Fixed {
                    length: content_length()?,
                }),
            }
        }
    }
}

/// The decoded `Content-MD5` header, if sent.
fn content_md5(request: &S3Request) -> Result<Option<[u8; 16]>, S3Error> {
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
