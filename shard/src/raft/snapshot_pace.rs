//! When a group builds its next snapshot. A snapshot rewrites the shard's
//! whole metadata (~150 bytes per small object: 750 MB at 5 million), so
//! a fixed entry count alone would make a large shard snapshot over and
//! over while the log it lets go of stays small. A group snapshots once
//! both hold:
//!
//! - `--snapshot-every` entries were applied since the last snapshot
//!   (what bounds the log of a small shard), and
//! - the log has grown by at least [`SNAPSHOT_LOG_SHARE`] of the last
//!   snapshot's size since it was taken, so writing snapshots costs at
//!   most 1 / share times the log bytes written (2× at one half).
//!
//! The log bytes are counted from this process's start (`LogStats`), so a
//! restart pushes the next snapshot back by at most that share.

use crate::limits::SNAPSHOT_LOG_SHARE;

/// What the pacing remembers between checks.
#[derive(Debug)]
pub struct SnapshotPace {
    every: u64,
    /// The snapshot's index at the last check, and the log bytes appended
    /// when it was first seen.
    seen: Option<(Option<u64>, u64)>,
}

impl SnapshotPace {
    pub fn new(every: u64) -> SnapshotPace {
        SnapshotPace { every, seen: None }
    }

    /// Whether to snapshot now, given the applied index, the current
    /// snapshot's index and size, and the log bytes appended so far.
    pub fn due(
        &mut self,
        applied: Option<u64>,
        snapshot: Option<u64>,
        snapshot_bytes: u64,
        appended_bytes: u64,
    ) -> bool {
        let since_bytes = match self.seen {
            Some((index, at)) if index == snapshot => appended_bytes.saturating_sub(at),
            _ => {
                self.seen = Some((snapshot, appended_bytes));
                0
            }
        };
        let entries = applied.unwrap_or(0).saturating_sub(snapshot.unwrap_or(0));
        entries >= self.every && since_bytes as f64 >= snapshot_bytes as f64 * SNAPSHOT_LOG_SHARE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_shard_snapshots_by_entries_a_large_one_by_log_bytes() {
        let mut pace = SnapshotPace::new(100);
        // First sight of a snapshot: the log bytes start counting here.
        assert!(!pace.due(Some(50), None, 0, 1_000));
        // No snapshot yet (size 0): entries alone decide.
        assert!(!pace.due(Some(99), None, 0, 2_000));
        assert!(pace.due(Some(100), None, 0, 2_000));
        // A 1 MB snapshot at 100: 100 more entries are not enough until
        // the log grew by half a megabyte.
        assert!(!pace.due(Some(100), Some(100), 1_000_000, 10_000));
        assert!(!pace.due(Some(300), Some(100), 1_000_000, 400_000));
        assert!(pace.due(Some(300), Some(100), 1_000_000, 510_000));
        // Nor do log bytes alone.
        let mut pace = SnapshotPace::new(100);
        assert!(!pace.due(Some(120), Some(100), 10, 0));
        assert!(!pace.due(Some(150), Some(100), 10, 1 << 30));
        assert!(pace.due(Some(200), Some(100), 10, 1 << 30));
    }
}
