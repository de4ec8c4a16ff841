//! Reading an object's bytes back into a new upload: UploadPartCopy, and a
//! CopyObject that changes how the object is encrypted. The span is read
//! chunk by chunk from the source's shard, decrypted with the source's key
//! and absorbed into an [`Ingest`], which stores (and, with a key of its
//! own, encrypts) it under the destination's admission budget.

use bytes::Bytes;
use shoal_proto::meta::ObjectManifest;
use shoal_shard::ids::{NodeId, ShardIndex};
use shoal_shard::ops::ShardRequest;

use super::get::{embedded_iv, embedded_range, plan};
use crate::s3::error::S3Error;
use crate::s3::ingest::Ingest;
use crate::s3::range::ByteRange;
use crate::s3::sse::{self, keys::DataKey};
use crate::s3::S3Context;

/// Feeds `span` of `source` (on shard `from`, readable with `key`) to
/// `ingest` as plaintext; `None` is an empty span.
pub(super) async fn restream(
    ctx: &S3Context,
    from: ShardIndex,
    source: &ObjectManifest,
    key: Option<&DataKey>,
    span: Option<ByteRange>,
    ingest: &mut Ingest,
) -> Result<(), S3Error> {
    let Some(span) = span else {
        return Ok(());
    };
    if !source.embedded.is_empty() {
        let range = embedded_range(&source.embedded, span)?;
        let stored = Bytes::copy_from_slice(&source.embedded[range]);
        let plain = sse::open_bytes(key, embedded_iv(source)?, span.first, stored)?;
        return absorb_all(ingest, &plain).await;
    }
    for piece in plan(source, span)? {
        let (sha256, source_node) = (piece.sha256, piece.source_node);
        let bytes = ctx
            .router
            .call(from, |reply| ShardRequest::ReadChunk {
                sha256,
                source_node: NodeId(source_node),
                reply,
            })
            .await?;
        if bytes.len() != piece.size_bytes as usize {
            return Err(S3Error::internal(format!(
                "chunk {} read {} bytes, manifest says {}",
                sha256,
                bytes.len(),
                piece.size_bytes
            )));
        }
        let taken = bytes.slice(piece.skip..piece.skip + piece.take);
        let plain = sse::open_bytes(key, piece.iv, piece.skip as u64, taken)?;
        absorb_all(ingest, &plain).await?;
    }
    Ok(())
}

/// Feeds `bytes` to `ingest` a buffer's room at a time.
async fn absorb_all(ingest: &mut Ingest, mut bytes: &[u8]) -> Result<(), S3Error> {
    while !bytes.is_empty() {
        let room = ingest.ensure_room().await?;
        let (now, later) = bytes.split_at(room.min(bytes.len()));
        ingest.absorb(now);
        ingest.send_sealed().await?;
        bytes = later;
    }
    Ok(())
}
