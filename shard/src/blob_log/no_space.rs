//! A full disk is a condition the log comes back from, not a failure.
//!
//! A write or segment creation that finds the disk full poisons the log
//! with [`PoisonCause::NoSpace`], like any failed write: every append
//! waiting fails and none is acknowledged from then on. Nothing
//! acknowledged is at risk: an append is acknowledged only once it *and
//! every append before it* is durable, and the one that failed never is,
//! so every acknowledged record lies before the failed one.
//!
//! [`BlobLog::recover_from_no_space`] then puts the log back where a
//! restart would: once every append in flight has settled and no sync
//! runs, it drops a segment a failed roll left half made, scans the newest
//! segment, truncates it after its last valid record (the failed write,
//! and anything written after it, was never acknowledged) and syncs it.
//! Appends start again from there. If the disk is still full, the next
//! append fails the same way and the shard tries again later.

use std::rc::Rc;

use super::commit_group::CommitGroup;
use super::segment::{file_name, io_error, Tail};
use super::{BlobLog, BlobLogError, PoisonCause, SegmentSlot};
use crate::limits::BLOB_LOG_APPENDS_INFLIGHT_MAX;

impl BlobLog {
    /// Whether the log refuses appends because the disk was full.
    pub fn out_of_space(&self) -> bool {
        matches!(
            self.shared.state.borrow().poison,
            Some(PoisonCause::NoSpace { .. })
        )
    }

    /// Takes a log poisoned by a full disk back to its last valid record
    /// and lets it append again (see the module docs). Returns false, and
    /// does nothing, unless the log was poisoned by a full disk.
    pub async fn recover_from_no_space(&self) -> Result<bool, BlobLogError> {
        if !self.out_of_space() {
            return Ok(false);
        }
        let shared = &self.shared;
        // Appends the poison failed may still have writes landing.
        let _all = shared.quiesce().await;
        let (half_made, newest) = {
            let mut state = shared.state.borrow_mut();
            let half_made: Vec<u64> = state
                .segments
                .iter()
                .filter(|(_, slot)| matches!(slot, SegmentSlot::Creating(_)))
                .map(|(&n, _)| n)
                .collect();
            for n in &half_made {
                state.segments.remove(n);
            }
            let newest = state
                .segments
                .values()
                .rev()
                .find_map(|slot| match slot {
                    SegmentSlot::Ready(segment) => Some(Rc::clone(segment)),
                    SegmentSlot::Creating(_) => None,
                })
                .expect("a log always has a ready segment");
            (half_made, newest)
        };
        for number in &half_made {
            let path = shared.dir_path.join(file_name(*number));
            if let Err(e) = glommio::io::remove(&path).await {
                let e = std::io::Error::from(e);
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(io_error("remove half-made segment", &path, e));
                }
            }
        }
        if !half_made.is_empty() {
            shared
                .dir
                .sync()
                .await
                .map_err(|e| io_error("sync directory", &shared.dir_path, e))?;
        }
        let recovered = newest.recover().await?;
        let cause = {
            let mut state = shared.state.borrow_mut();
            state.tail = Tail {
                segment: newest.number(),
                offset_bytes: recovered.end_offset_bytes,
            };
            state.group = CommitGroup::new(BLOB_LOG_APPENDS_INFLIGHT_MAX);
            state.dirty.clear();
            state.poison.take()
        };
        tracing::info!(
            dir = %shared.dir_path.display(),
            ?cause,
            segment = newest.number(),
            tail_offset_bytes = recovered.end_offset_bytes,
            dropped_bytes = recovered.truncated_bytes,
            "blob log taking appends again after the disk was full"
        );
        Ok(true)
    }
}
