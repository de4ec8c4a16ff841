//! Compactions that listings ask for.
//!
//! Every write of a key leaves its earlier entry in rocksdb until a
//! compaction merges the files that hold both; rocksdb compacts by file
//! counts and level sizes, not by what reads pay, so a bucket whose keys
//! were rewritten (overwrites, and the current version of every versioned
//! key) can list 10–15 % slower for as long as its level-0 files stay
//! under rocksdb's trigger, which on a quiet node is forever. A listing
//! knows what it paid: rocksdb's per-thread perf counters say how many
//! entries its iterator stepped over to find the keys it returned. When a
//! page stepped over at least one hidden entry for every
//! [`READ_COMPACTION_LISTED_PER_HIDDEN`] keys it listed, the store compacts
//! that bucket's key range on a thread of its own (one at a time, at most
//! one every [`READ_COMPACTION_INTERVAL_MIN`]), and later listings read
//! merged files. LevelDB's seek-triggered compactions answer the same
//! problem for point reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};
use rocksdb::DB;

use super::cf;
use super::keys::Cf;
use crate::limits::{
    READ_COMPACTION_INTERVAL_MIN, READ_COMPACTION_LISTED_MIN, READ_COMPACTION_LISTED_PER_HIDDEN,
};

/// What listings found and asked for, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct ReadCompactionStats {
    /// Entries listings stepped over that were not the newest of their key
    /// (overwritten or deleted).
    pub hidden_entries: AtomicU64,
    /// Compactions listings started.
    pub started: AtomicU64,
    /// Those that finished (rocksdb's C API reports no error for a
    /// manual compaction; one that fails leaves the files as they were).
    pub finished: AtomicU64,
}

/// What one listing stepped over, counted on the thread that ran it.
pub(super) struct IterationCost {
    context: PerfContext,
}

impl IterationCost {
    /// Starts counting on this thread (a blocking-pool thread: the count
    /// covers only the closure that made it).
    pub(super) fn start() -> IterationCost {
        set_perf_stats(PerfStatsLevel::EnableCount);
        let mut context = PerfContext::default();
        context.reset();
        IterationCost { context }
    }

    /// Entries stepped over that were not returned, given `listed` keys
    /// returned: rocksdb counts one step per returned key (moving off it)
    /// plus one per older or deleted entry it passed.
    pub(super) fn hidden(&self, listed: usize) -> u64 {
        self.context
            .metric(PerfMetric::InternalKeySkippedCount)
            .saturating_sub(listed as u64)
    }
}

impl Drop for IterationCost {
    fn drop(&mut self) {
        set_perf_stats(PerfStatsLevel::Disable);
    }
}

/// One store's read-triggered compactions.
#[derive(Debug, Default)]
pub(super) struct ReadCompactions {
    running: Arc<AtomicBool>,
    last_started: Mutex<Option<Instant>>,
    pub(super) stats: Arc<ReadCompactionStats>,
}

impl ReadCompactions {
    /// Notes what a listing of `family` between `start` and `end` paid
    /// and, when it stepped over too many hidden entries, compacts that
    /// range in the background. Never waits.
    pub(super) fn note(
        &self,
        db: &Arc<DB>,
        family: Cf,
        (start, end): (Vec<u8>, Vec<u8>),
        listed: usize,
        hidden: u64,
    ) {
        self.stats
            .hidden_entries
            .fetch_add(hidden, Ordering::Relaxed);
        if (listed as u64) < READ_COMPACTION_LISTED_MIN
            || hidden * READ_COMPACTION_LISTED_PER_HIDDEN < listed as u64
        {
            return;
        }
        {
            let mut last = self.last_started.lock().expect("never poisoned");
            if last.is_some_and(|at| at.elapsed() < READ_COMPACTION_INTERVAL_MIN) {
                return;
            }
            if self.running.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
        }
        let (db, running, stats) = (
            Arc::clone(db),
            Arc::clone(&self.running),
            Arc::clone(&self.stats),
        );
        let spawned = std::thread::Builder::new()
            .name("shoal-compact".into())
            .spawn(move || {
                let began = Instant::now();
                // rocksdb runs the compaction on its own background pool;
                // this thread only waits for it (the executor's blocking
                // pool must not, as every metadata call of the core
                // queues behind it).
                db.compact_range_cf(cf(&db, family), Some(&start), Some(&end));
                tracing::info!(
                    family = family.name(),
                    listed,
                    hidden,
                    took_ms = began.elapsed().as_millis() as u64,
                    "compacted a range a listing found full of overwritten or deleted entries"
                );
                stats.finished.fetch_add(1, Ordering::Relaxed);
                running.store(false, Ordering::Release);
            });
        match spawned {
            Ok(_) => {
                self.stats.started.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start a compaction thread");
                self.running.store(false, Ordering::Release);
            }
        }
    }
}
