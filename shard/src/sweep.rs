//! When the sweeper may forget an unreferenced chunk (one no reference
//! count names): at once if its group collected it (the collect waited out
//! the grace already), else (an orphan: its upload never committed) once
//! it has been seen unreferenced *at the same location* for `--gc-grace`.
//! A chunk stored again meanwhile moved, and its clock starts over; one
//! that was referred to again drops out of the candidates at the end of
//! the pass that did not see it.
//!
//! Only the decision lives here (the shard's sweeper and the seeded GC
//! model both use it); pins get the last word (`crate::pins`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shoal_proto::meta::BlobLocation;

use crate::chunk_hash::ChunkHash;
use crate::limits::SWEEP_CANDIDATES_MAX;

/// An indexed chunk seen unreferenced, and since when.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    at: BlobLocation,
    since: Instant,
    /// The pass that last saw it.
    pass: u64,
}

/// What the sweeper remembers between passes; kept in memory only, so a
/// restart starts every orphan's clock over (never shortens it).
#[derive(Debug, Default)]
pub struct SweepCandidates {
    seen: HashMap<ChunkHash, Candidate>,
    pass: u64,
    /// When the first pass began (about when the shard started).
    started: Option<Instant>,
}

impl SweepCandidates {
    /// Starts a pass over the whole index.
    pub fn begin_pass(&mut self, now: Instant) {
        self.pass += 1;
        self.started.get_or_insert(now);
    }

    /// Whether an unreferenced chunk indexed at `at` may be forgotten now
    /// (pins aside); remembers it if not.
    pub fn due(
        &mut self,
        hash: ChunkHash,
        at: BlobLocation,
        collected: bool,
        now: Instant,
        grace: Duration,
    ) -> bool {
        // Within a grace of a restart, a collected chunk waits like an
        // orphan: an entry still in the log may name it again (the upload
        // that stored it once more proposed it, and the restart dropped
        // the commit's pins), and it applies within that grace.
        let settled = self.started.is_some_and(|s| now.duration_since(s) >= grace);
        if collected && settled {
            return true;
        }
        let full = self.seen.len() >= SWEEP_CANDIDATES_MAX;
        match self.seen.get_mut(&hash) {
            Some(c) if c.at == at => {
                c.pass = self.pass;
                now.duration_since(c.since) >= grace
            }
            // Bounded: one not remembered now is seen again next pass.
            _ if full => false,
            _ => {
                let pass = self.pass;
                self.seen.insert(
                    hash,
                    Candidate {
                        at,
                        since: now,
                        pass,
                    },
                );
                false
            }
        }
    }

    /// The sweeper tried to forget `hash` (forgot it, or found it moved or
    /// counted): it starts over if it comes back.
    pub fn settled(&mut self, hash: &ChunkHash) {
        self.seen.remove(hash);
    }

    /// Ends a pass: chunks it did not see unreferenced were referred to
    /// again (or forgotten).
    pub fn end_pass(&mut self) {
        let pass = self.pass;
        self.seen.retain(|_, c| c.pass == pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> BlobLocation {
        BlobLocation {
            segment: 1,
            offset_bytes: offset,
            size_bytes: 10,
        }
    }

    #[test]
    fn an_orphan_is_due_after_its_grace_at_the_same_location() {
        let (grace, t0) = (Duration::from_secs(2), Instant::now());
        let hash = ChunkHash::of(b"x");
        let mut sweep = SweepCandidates::default();
        sweep.begin_pass(t0);
        assert!(!sweep.due(hash, at(0), false, t0, grace));
        sweep.end_pass();
        sweep.begin_pass(t0);
        // Stored again elsewhere: the clock starts over.
        assert!(!sweep.due(hash, at(4096), false, t0 + grace, grace));
        sweep.end_pass();
        sweep.begin_pass(t0);
        assert!(!sweep.due(hash, at(4096), false, t0 + grace, grace));
        assert!(sweep.due(hash, at(4096), false, t0 + grace * 2, grace));
        assert!(
            sweep.due(hash, at(0), true, t0 + grace, grace),
            "collected: at once"
        );
    }

    #[test]
    fn a_chunk_not_seen_in_a_pass_starts_over() {
        let (grace, t0) = (Duration::from_secs(2), Instant::now());
        let hash = ChunkHash::of(b"x");
        let mut sweep = SweepCandidates::default();
        sweep.begin_pass(t0);
        assert!(!sweep.due(hash, at(0), false, t0, grace));
        sweep.end_pass();
        sweep.begin_pass(t0); // referred to again: not seen
        sweep.end_pass();
        sweep.begin_pass(t0);
        assert!(!sweep.due(hash, at(0), false, t0 + grace, grace));
    }
}
