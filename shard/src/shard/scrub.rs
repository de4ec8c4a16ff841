//! The scrub: re-reads every record the blob index points at, at a
//! bounded rate (`--scrub-rate`), so damage is found while other copies
//! still exist, not when a client or a recovering member needs this one.
//!
//! A pass walks the index in blob-log order (segment, then offset, so its
//! reads move forward on disk), paced by [`Pacer`], in the shard's
//! background queue. Each chunk is read the way a GET reads it (pinned,
//! checked, read twice before it is called damaged; see `repair`). A
//! damaged chunk is replaced from another member in a cluster; one that
//! cannot be is logged with the objects that name it and kept among the
//! findings `shoal-ctl scrub` shows.
//!
//! Passes start [`SCRUB_START_DELAY`] after start, then at most once per
//! [`SCRUB_PASS_INTERVAL_MIN`]; an operator can ask for one at once
//! ([`ScrubStats::request_pass`]). Bounds: one read in flight per shard,
//! [`SCRUB_RECORDS_PER_PAGE`] index records in memory,
//! [`SCRUB_FINDINGS_KEPT`] findings.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::repair::ANY_MEMBER;
use super::{Group, Shard};
use crate::blob_log::{BlobLocation, BlobLogError};
use crate::catchup::Pacer;
use crate::chunk_hash::ChunkHash;
use crate::clock::unix_ms_now;
use crate::error::ShardError;
use crate::limits::{
    SCRUB_FINDINGS_KEPT, SCRUB_NAMES_MAX, SCRUB_PASS_INTERVAL_MIN, SCRUB_RECORDS_PER_PAGE,
    SCRUB_REQUEST_POLL, SCRUB_START_DELAY,
};

/// What a shard's scrub has done, shared with the metrics and admin
/// endpoints (written by the owner core only, except `requested`).
#[derive(Debug, Default)]
pub struct ScrubStats {
    /// The pace, in bytes per second (0: the scrub is off).
    pub rate_bytes_per_s: AtomicU64,
    /// Passes finished since start.
    pub passes: AtomicU64,
    /// Whether a pass is under way.
    pub running: AtomicBool,
    /// Payload bytes the current (or last) pass has checked.
    pub pass_checked_bytes: AtomicU64,
    /// Payload bytes the index pointed at when the current (or last) pass
    /// began: how far it has to go.
    pub pass_live_bytes: AtomicU64,
    /// Payload bytes checked since start.
    pub checked_bytes: AtomicU64,
    /// Damaged chunks the scrub found since start.
    pub found: AtomicU64,
    /// Of those, the ones replaced with a good copy from another member.
    pub repaired: AtomicU64,
    /// Of those, the ones no member could replace.
    pub unrepaired: AtomicU64,
    /// When the last pass finished (Unix ms; 0: none yet).
    pub last_pass_end_unix_ms: AtomicU64,
    /// Set by an operator to start a pass now.
    requested: AtomicBool,
    findings: Mutex<VecDeque<ScrubFinding>>,
}

/// A damaged chunk the scrub found.
#[derive(Clone, Debug, Serialize)]
pub struct ScrubFinding {
    pub sha256: String,
    pub segment: u64,
    pub offset_bytes: u64,
    pub error: String,
    /// Replaced with a SHA-256-checked copy from another member.
    pub repaired: bool,
    /// `bucket/key` of objects that name it (unrepaired chunks only, up to
    /// [`SCRUB_NAMES_MAX`]).
    pub objects: Vec<String>,
    pub found_unix_ms: u64,
}

impl ScrubStats {
    /// Asks the shard to start a pass as soon as the current one (if any)
    /// is done.
    pub fn request_pass(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    /// The findings kept, oldest first.
    pub fn findings(&self) -> Vec<ScrubFinding> {
        self.findings_kept().iter().cloned().collect()
    }

    fn record(&self, finding: ScrubFinding) {
        let mut kept = self.findings_kept();
        if kept.len() == SCRUB_FINDINGS_KEPT {
            kept.pop_front();
        }
        kept.push_back(finding);
    }

    fn findings_kept(&self) -> std::sync::MutexGuard<'_, VecDeque<ScrubFinding>> {
        // A panic elsewhere cannot leave the list half-written.
        self.findings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shard {
    /// Runs scrub passes at `bytes_per_s` until the shard stops; returns at
    /// once when the rate is 0 (the scrub is off).
    pub(super) async fn scrub_periodically(&self, bytes_per_s: u64) {
        let scrub = &self.stats.scrub;
        scrub.rate_bytes_per_s.store(bytes_per_s, Ordering::Relaxed);
        if bytes_per_s == 0 {
            return;
        }
        let pacer = Pacer::new(bytes_per_s);
        let mut due = Instant::now() + SCRUB_START_DELAY;
        loop {
            while Instant::now() < due && !scrub.requested.load(Ordering::Relaxed) {
                if !self.background.sleep(SCRUB_REQUEST_POLL).await {
                    return;
                }
            }
            due = Instant::now() + SCRUB_PASS_INTERVAL_MIN;
            if !self.scrub_pass(&pacer).await {
                return;
            }
        }
    }

    /// One pass over the index; false if the shard began stopping.
    async fn scrub_pass(&self, pacer: &Pacer) -> bool {
        let scrub = &self.stats.scrub;
        scrub.requested.store(false, Ordering::Relaxed);
        let live_bytes = self.stats.blob_live_bytes.load(Ordering::Relaxed);
        scrub.pass_live_bytes.store(live_bytes, Ordering::Relaxed);
        scrub.pass_checked_bytes.store(0, Ordering::Relaxed);
        scrub.running.store(true, Ordering::Relaxed);
        let found_before = scrub.found.load(Ordering::Relaxed);
        tracing::info!(shard = self.index.get(), live_bytes, "scrub pass started");
        let mut after = None;
        let finished = loop {
            let (page, next) = match self.meta.records_page(after, SCRUB_RECORDS_PER_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(shard = self.index.get(), error = %e, "scrub pass cut short: reading the index failed");
                    break true;
                }
            };
            if !self.scrub_page(page, pacer).await {
                break false;
            }
            match next {
                Some(place) => after = Some(place),
                None => break true,
            }
        };
        scrub.running.store(false, Ordering::Relaxed);
        if finished {
            scrub.passes.fetch_add(1, Ordering::Relaxed);
            scrub
                .last_pass_end_unix_ms
                .store(unix_ms_now(), Ordering::Relaxed);
            tracing::info!(
                shard = self.index.get(),
                checked_bytes = scrub.pass_checked_bytes.load(Ordering::Relaxed),
                damaged = scrub.found.load(Ordering::Relaxed) - found_before,
                "scrub pass done"
            );
        }
        finished
    }

    /// Scrubs one page of records at the pace; false if the shard began
    /// stopping.
    async fn scrub_page(
        &self,
        page: Vec<(ChunkHash, shoal_proto::meta::BlobLocation)>,
        pacer: &Pacer,
    ) -> bool {
        for (hash, at) in page {
            let at = BlobLocation::from(at);
            let wait = pacer.reserve("scrub", at.size_bytes.into(), Instant::now());
            if !self.background.sleep(wait).await {
                return false;
            }
            self.scrub_one(hash, at).await;
        }
        true
    }

    /// Reads one chunk as a GET would; handles what it finds damaged.
    async fn scrub_one(&self, hash: ChunkHash, at: BlobLocation) {
        let scrub = &self.stats.scrub;
        match self.read_local_chunk(hash).await {
            Ok(bytes) => {
                let read = bytes.len() as u64;
                scrub.checked_bytes.fetch_add(read, Ordering::Relaxed);
                scrub.pass_checked_bytes.fetch_add(read, Ordering::Relaxed);
            }
            // Forgotten (or moved and released) since the page was read.
            Err(ShardError::ChunkMissing { .. }) => {}
            Err(ShardError::ChunkDamaged { reason, .. }) => {
                self.scrub_found(hash, at, reason).await
            }
            Err(e) => {
                tracing::warn!(shard = self.index.get(), sha256 = %hash, error = %e, "scrub could not read a chunk")
            }
        }
    }

    /// A damaged chunk: replaced from another member if one has it, else
    /// reported with the objects that name it.
    async fn scrub_found(&self, hash: ChunkHash, at: BlobLocation, reason: BlobLogError) {
        let scrub = &self.stats.scrub;
        scrub.found.fetch_add(1, Ordering::Relaxed);
        let repaired = match self.group {
            Group::Cluster(_) => self.fetch_and_keep(hash, ANY_MEMBER, true).await.is_ok(),
            Group::Single => false,
        };
        let objects = if repaired {
            scrub.repaired.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        } else {
            scrub.unrepaired.fetch_add(1, Ordering::Relaxed);
            let objects = self
                .meta
                .objects_naming(hash, SCRUB_NAMES_MAX)
                .await
                .unwrap_or_else(|e| vec![format!("(could not look: {e})")]);
            tracing::error!(
                shard = self.index.get(),
                sha256 = %hash,
                segment = at.segment,
                offset_bytes = at.offset_bytes,
                objects = ?objects,
                error = %reason,
                "scrub found a damaged chunk that no member could replace; these objects cannot be read in full"
            );
            objects
        };
        scrub.record(ScrubFinding {
            sha256: hash.hex(),
            segment: at.segment,
            offset_bytes: at.offset_bytes,
            error: reason.to_string(),
            repaired,
            objects,
            found_unix_ms: unix_ms_now(),
        });
    }
}
