//! Damaged chunks: finding the index entries whose records are bad or gone
//! (after the blob log's recovery, and when a read fails its checks), and
//! dropping those entries so that the chunk counts as missing here. In a
//! cluster a missing chunk is fetched from another member (SHA-256
//! checked) and stored again, by the read that needs it or by catch-up; a
//! single node can only report it.
//!
//! Why drop the entry rather than keep it: a record that failed its checks
//! twice will not get better, and an entry pointing at it would make every
//! read fail the same way and count the same damage again. Once dropped,
//! the chunk is stored anew by the first upload of the same bytes, and the
//! reclaimer gives the bad record's space back like any dead record's.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Shard;
use crate::blob_log::{BlobLocation, BlobLogError, RecoveryReport};
use crate::catchup::Catchup;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ids::{NodeId, ShardIndex};
use crate::meta::MetaStore;

/// Source hint for a chunk whose storing node is unknown: catch-up asks
/// any member.
pub(super) const ANY_MEMBER: NodeId = NodeId(0);

/// After the blob log's recovery: drops the index entries whose records
/// did not survive it (cut off the newest segment, in a damaged range, or
/// in a segment that is gone), logs each, and, in a cluster, queues them
/// for catch-up. Runs before the raft group starts, so no append can land
/// where a lost record was while the index still points there. Returns how
/// many entries it dropped.
pub(super) async fn forget_lost_records(
    shard: ShardIndex,
    meta: &MetaStore,
    segments: Vec<u64>,
    recovery: &RecoveryReport,
    catchup: Option<&Catchup>,
) -> Result<usize, ShardError> {
    let present: BTreeSet<u64> = segments.into_iter().collect();
    let newest = recovery.tail.segment;
    let intact = {
        let present = present.clone();
        move |segment: u64| segment < newest && present.contains(&segment)
    };
    let report = recovery.clone();
    let readable = move |at: shoal_proto::meta::BlobLocation| {
        report.may_hold(at.into(), |segment| present.contains(&segment))
    };
    let lost = meta.forget_unreadable(intact, readable).await?;
    for (hash, at) in &lost {
        tracing::error!(
            shard = shard.get(),
            sha256 = %hash,
            segment = at.segment,
            offset_bytes = at.offset_bytes,
            "an indexed chunk did not survive blob log recovery; it is fetched from another member in a cluster, else lost here"
        );
    }
    if let Some(catchup) = catchup {
        catchup.offer(lost.iter().map(|(hash, _)| (*hash, ANY_MEMBER)));
    }
    Ok(lost.len())
}

impl Shard {
    /// A local read of `location` failed its checks with `first`: reads it
    /// once more (a transient fault passes), and if it fails again, counts
    /// the damage, logs it and drops the index entry.
    pub(super) async fn confirm_damage(
        &self,
        sha256: ChunkHash,
        location: BlobLocation,
        first: BlobLogError,
    ) -> Result<Bytes, ShardError> {
        let reason = match self.blob_log.read(location, &sha256).await {
            Ok(bytes) => {
                tracing::warn!(shard = self.index.get(), sha256 = %sha256, error = %first, "a chunk read failed its checks once, then passed");
                return Ok(bytes);
            }
            Err(again) if again.is_damage() => again,
            Err(other) => return Err(other.into()),
        };
        self.stats.chunk_damaged.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            shard = self.index.get(),
            sha256 = %sha256,
            segment = location.segment,
            offset_bytes = location.offset_bytes,
            error = %reason,
            "a chunk on this node is damaged; dropping its index entry"
        );
        self.meta.forget_damaged(sha256, location.into()).await?;
        Err(ShardError::ChunkDamaged {
            sha256_hex: sha256.hex(),
            reason,
        })
    }
}
