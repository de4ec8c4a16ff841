//! Compaction, for a file system that cannot punch holes: the live records
//! of a mostly dead sealed segment are copied to the tail of the log and
//! the index moved to the copies, so the whole segment can be deleted.
//!
//! A record moves under the same marker the sweeper forgets with
//! (`crate::pins`): not while a read, commit or upload pins its chunk (the
//! segment then waits for a later pass), and a pin taken meanwhile waits
//! for the move, then finds the new location. The copy is durable (the
//! append syncs) and the index write is synced before the old segment can
//! be deleted, so a crash at any point leaves the index pointing at a
//! whole record: the old one, or the copy.

use std::time::Instant;

use shoal_proto::meta::BlobLocation;

use super::Shard;
use crate::chunk::ChunkBuf;
use crate::error::ShardError;
use crate::meta::LiveRecord;

impl Shard {
    /// Copies each of `live` (records of `segment`) forward; returns the
    /// payload bytes it moved.
    pub(super) async fn compact_segment(
        &self,
        segment: u64,
        live: Vec<LiveRecord>,
    ) -> Result<u64, ShardError> {
        let mut moved_bytes = 0;
        for record in live {
            let Some(_moving) = self.pins.begin_forget(record.hash, Instant::now()) else {
                continue; // in use: a later pass moves it
            };
            let from = BlobLocation {
                segment,
                offset_bytes: record.offset_bytes,
                size_bytes: record.size_bytes,
            };
            let bytes = self.blob_log.read(from.into(), &record.hash).await?;
            let mut buf = ChunkBuf::new();
            buf.fill_from(&bytes);
            let hold = self.blob_log.hold();
            let (to, _) = self.blob_log.append(buf, record.hash).await?;
            // The copy is durable; the index still names the original.
            crate::crash_point::crash_point("crash::compacting");
            if self.meta.move_blob(record.hash, from, to.into()).await? {
                moved_bytes += u64::from(record.size_bytes);
            }
            drop(hold);
        }
        Ok(moved_bytes)
    }
}

#[cfg(test)]
impl Shard {
    /// Makes this shard's blob log behave as on a file system that cannot
    /// punch holes.
    pub(crate) fn forbid_punching(&self) {
        self.blob_log.forbid_punching();
    }
}
