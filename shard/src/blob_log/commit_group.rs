//! Group commit: which appends the next fdatasync makes durable.
//!
//! A pure state machine with no I/O and no clock, driven by the blob log's
//! I/O shell on the shard's core; it never blocks and never allocates after
//! construction. Bounds: at most `inflight_max` appends between reservation
//! and durability (the shell holds a permit per append), so the write window
//! and the waiter list never grow beyond that (plus one waiter per segment
//! roll, and a roll is always caused by an append).
//!
//! Every append takes a sequence number when its offset is reserved. Writes
//! complete in any order, but an append is acknowledged only when an
//! fdatasync that *started after every append up to and including it had
//! completed its write* has finished. Waiting for the whole prefix, not just
//! the append's own write, matters for recovery: it truncates a segment at
//! its first bad record, so an acknowledged record must never sit behind a
//! write that had not landed yet (a crash would leave a hole before it).
//!
//! Syncs never overlap: while one runs, finished writes collect for the next
//! one, so one fdatasync covers every write that completed during the
//! previous one. A failed sync (or a failed write, reported through
//! [`CommitGroup::poison`]) fails every waiter and every later append.

use std::collections::VecDeque;

/// Sequence number of one append, in reservation order, from 0.
pub type AppendSeq = u64;

/// Where an append stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Pending,
    Failed,
}

/// The log failed; no append is acknowledged from here on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poisoned;

/// One started sync: it covers every append below `covers_below`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncToken {
    pub generation: u64,
    pub covers_below: AppendSeq,
}

/// What a finished sync achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Appends this sync made durable (its group-commit batch size).
    pub newly_durable: u64,
}

/// The group-commit state of one blob log. `W` is whatever the shell parks a
/// waiting task on (a oneshot sender); tests use plain numbers.
#[derive(Debug)]
pub struct CommitGroup<W> {
    inflight_max: usize,
    next_seq: AppendSeq,
    /// Every append below this has completed its write.
    written_below: AppendSeq,
    /// `written[i]`: append `written_below + i` has completed its write.
    written: VecDeque<bool>,
    /// Every append below this is durable.
    durable_below: AppendSeq,
    syncs_started: u64,
    in_flight: Option<SyncToken>,
    poisoned: bool,
    waiters: Vec<(AppendSeq, W)>,
}

impl<W> CommitGroup<W> {
    /// A group for a log that allows `inflight_max` appends at once.
    pub fn new(inflight_max: usize) -> Self {
        assert!(inflight_max > 0);
        CommitGroup {
            inflight_max,
            next_seq: 0,
            written_below: 0,
            written: VecDeque::with_capacity(inflight_max),
            durable_below: 0,
            syncs_started: 0,
            in_flight: None,
            poisoned: false,
            waiters: Vec::with_capacity(2 * inflight_max),
        }
    }

    /// Whether a sync is running (its outcome not yet reported).
    pub fn sync_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Takes the sequence number of a new append, or refuses once poisoned.
    ///
    /// # Panics
    /// If more than `inflight_max` appends are neither durable nor failed:
    /// the shell's permits should have stopped this one.
    pub fn reserve(&mut self) -> Result<AppendSeq, Poisoned> {
        if self.poisoned {
            return Err(Poisoned);
        }
        assert!(
            self.next_seq - self.durable_below < self.inflight_max as u64,
            "{} appends in flight, limit {}",
            self.next_seq - self.durable_below,
            self.inflight_max
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.written.push_back(false);
        Ok(seq)
    }

    /// Records that append `seq` has completed its write.
    pub fn write_completed(&mut self, seq: AppendSeq) {
        assert!(seq < self.next_seq, "append {seq} was never reserved");
        if seq < self.written_below {
            panic!("append {seq} completed twice");
        }
        let slot = &mut self.written[(seq - self.written_below) as usize];
        assert!(!*slot, "append {seq} completed twice");
        *slot = true;
        while self.written.front() == Some(&true) {
            self.written.pop_front();
            self.written_below += 1;
        }
    }

    /// Whether append `seq` is acknowledged, failed, or still waiting.
    pub fn durability(&self, seq: AppendSeq) -> Durability {
        if seq < self.durable_below {
            Durability::Durable
        } else if self.poisoned {
            Durability::Failed
        } else {
            Durability::Pending
        }
    }

    /// Parks `waiter` until append `seq` is durable or the log fails.
    ///
    /// # Panics
    /// If `seq` is not [`Durability::Pending`] (the shell checks first).
    pub fn park(&mut self, seq: AppendSeq, waiter: W) {
        assert!(seq < self.next_seq, "append {seq} was never reserved");
        assert_eq!(self.durability(seq), Durability::Pending);
        self.waiters.push((seq, waiter));
    }

    /// True when no sync runs and some completed writes are not durable yet.
    pub fn should_start_sync(&self) -> bool {
        !self.poisoned && self.in_flight.is_none() && self.written_below > self.durable_below
    }

    /// Marks a sync as started; it covers every write completed so far.
    ///
    /// # Panics
    /// Unless [`Self::should_start_sync`] said so.
    pub fn sync_started(&mut self) -> SyncToken {
        assert!(self.should_start_sync());
        self.syncs_started += 1;
        let token = SyncToken {
            generation: self.syncs_started,
            covers_below: self.written_below,
        };
        self.in_flight = Some(token);
        token
    }

    /// Marks the running sync as finished; `synced` says whether every
    /// fdatasync in it succeeded. Hands each waiter it settles to `wake`:
    /// `Ok` when now durable, `Err` for all waiters when the sync failed.
    pub fn sync_finished(
        &mut self,
        token: SyncToken,
        synced: bool,
        mut wake: impl FnMut(W, Result<(), Poisoned>),
    ) -> SyncOutcome {
        assert_eq!(
            self.in_flight,
            Some(token),
            "finished a sync that was not running"
        );
        self.in_flight = None;
        if !synced {
            self.poison(wake);
            return SyncOutcome { newly_durable: 0 };
        }
        let newly_durable = token.covers_below.saturating_sub(self.durable_below);
        self.durable_below = self.durable_below.max(token.covers_below);
        let durable_below = self.durable_below;
        let mut index = 0;
        while index < self.waiters.len() {
            if self.waiters[index].0 < durable_below {
                let (_, waiter) = self.waiters.swap_remove(index);
                wake(waiter, Ok(()));
            } else {
                index += 1;
            }
        }
        SyncOutcome { newly_durable }
    }

    /// Fails the log: every parked waiter gets `Err`, later appends are
    /// refused and no further sync starts.
    pub fn poison(&mut self, mut wake: impl FnMut(W, Result<(), Poisoned>)) {
        self.poisoned = true;
        for (_, waiter) in self.waiters.drain(..) {
            wake(waiter, Err(Poisoned));
        }
    }

    #[cfg(test)]
    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Syncs started so far.
    #[cfg(test)]
    fn syncs_started(&self) -> u64 {
        self.syncs_started
    }

    /// Waiters parked right now.
    #[cfg(test)]
    fn parked(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Woken = Vec<(u32, Result<(), Poisoned>)>;

    fn finish(group: &mut CommitGroup<u32>, token: SyncToken, synced: bool) -> (Woken, u64) {
        let mut woken = Vec::new();
        let outcome = group.sync_finished(token, synced, |w, r| woken.push((w, r)));
        woken.sort_by_key(|(w, _)| *w);
        (woken, outcome.newly_durable)
    }

    #[test]
    fn two_appends_before_a_sync_share_it() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let b = group.reserve().unwrap();
        assert!(!group.should_start_sync());
        group.write_completed(a);
        group.park(a, 1);
        group.write_completed(b);
        group.park(b, 2);
        assert!(group.should_start_sync());
        let token = group.sync_started();
        assert!(!group.should_start_sync(), "only one sync at a time");
        let (woken, batch) = finish(&mut group, token, true);
        assert_eq!(woken, vec![(1, Ok(())), (2, Ok(()))]);
        assert_eq!(batch, 2);
        assert_eq!(group.syncs_started(), 1);
        assert!(!group.should_start_sync());
        assert_eq!(group.durability(a), Durability::Durable);
        assert_eq!(group.durability(b), Durability::Durable);
    }

    #[test]
    fn a_write_finished_during_a_sync_waits_for_the_next_one() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let b = group.reserve().unwrap();
        group.write_completed(a);
        group.park(a, 1);
        let first = group.sync_started();
        group.write_completed(b);
        group.park(b, 2);
        assert!(
            !group.should_start_sync(),
            "the first sync is still running"
        );

        let (woken, _) = finish(&mut group, first, true);
        assert_eq!(woken, vec![(1, Ok(()))]);
        assert_eq!(group.durability(b), Durability::Pending);
        assert!(group.should_start_sync());

        let second = group.sync_started();
        assert_eq!(second.generation, first.generation + 1);
        let (woken, _) = finish(&mut group, second, true);
        assert_eq!(woken, vec![(2, Ok(()))]);
    }

    #[test]
    fn a_write_ahead_of_an_unfinished_one_is_not_synced_alone() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let b = group.reserve().unwrap();
        group.write_completed(b);
        group.park(b, 2);
        assert!(!group.should_start_sync(), "append a has not landed yet");
        group.write_completed(a);
        group.park(a, 1);
        let token = group.sync_started();
        assert_eq!(token.covers_below, 2);
        let (woken, batch) = finish(&mut group, token, true);
        assert_eq!(woken, vec![(1, Ok(())), (2, Ok(()))]);
        assert_eq!(batch, 2);
    }

    #[test]
    fn a_failed_sync_fails_its_waiters_and_everyone_after() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let b = group.reserve().unwrap();
        group.write_completed(a);
        group.park(a, 1);
        let token = group.sync_started();
        group.write_completed(b);
        group.park(b, 2);
        let (woken, batch) = finish(&mut group, token, false);
        assert_eq!(woken, vec![(1, Err(Poisoned)), (2, Err(Poisoned))]);
        assert_eq!(batch, 0);
        assert_eq!(group.durability(a), Durability::Failed);
        assert!(group.is_poisoned());
        assert!(!group.should_start_sync());
        assert_eq!(group.reserve(), Err(Poisoned));
        assert_eq!(group.parked(), 0);
    }

    #[test]
    fn poison_from_a_failed_write_wakes_every_waiter() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let _b = group.reserve().unwrap();
        group.write_completed(a);
        group.park(a, 1);
        let mut woken = Vec::new();
        group.poison(|w, r| woken.push((w, r)));
        assert_eq!(woken, vec![(1, Err(Poisoned))]);
        assert!(!group.should_start_sync());
    }

    #[test]
    fn durable_appends_stay_durable_after_a_later_failure() {
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        group.write_completed(a);
        let token = group.sync_started();
        finish(&mut group, token, true);
        let b = group.reserve().unwrap();
        group.write_completed(b);
        let token = group.sync_started();
        finish(&mut group, token, false);
        assert_eq!(group.durability(a), Durability::Durable);
        assert_eq!(group.durability(b), Durability::Failed);
    }

    #[test]
    fn waiting_on_an_unwritten_append_covers_the_whole_prefix() {
        // A segment roll waits for every append before it, written or not.
        let mut group = CommitGroup::new(8);
        let a = group.reserve().unwrap();
        let b = group.reserve().unwrap();
        group.park(b, 9);
        group.write_completed(b);
        assert!(!group.should_start_sync());
        group.write_completed(a);
        let token = group.sync_started();
        let (woken, _) = finish(&mut group, token, true);
        assert_eq!(woken, vec![(9, Ok(()))]);
    }

    #[test]
    fn many_appends_in_one_sync_report_the_batch() {
        let mut group = CommitGroup::new(64);
        let seqs: Vec<_> = (0..40).map(|_| group.reserve().unwrap()).collect();
        for (i, &seq) in seqs.iter().enumerate().rev() {
            group.write_completed(seq);
            group.park(seq, i as u32);
        }
        let token = group.sync_started();
        let (woken, batch) = finish(&mut group, token, true);
        assert_eq!(woken.len(), 40);
        assert_eq!(batch, 40);
        assert_eq!(group.syncs_started(), 1);
    }

    #[test]
    #[should_panic(expected = "appends in flight")]
    fn more_appends_than_the_bound_is_a_bug() {
        let mut group: CommitGroup<u32> = CommitGroup::new(2);
        group.reserve().unwrap();
        group.reserve().unwrap();
        let _ = group.reserve();
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn completing_a_write_twice_is_a_bug() {
        let mut group: CommitGroup<u32> = CommitGroup::new(2);
        let a = group.reserve().unwrap();
        group.write_completed(a);
        group.write_completed(a);
    }
}
