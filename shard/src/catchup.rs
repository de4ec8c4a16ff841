//! Background catch-up: a member that applies chunk refs it has no bytes
//! for (an entry another leader wrote while a push to this node failed, or
//! a snapshot's blob catalog) fetches those chunks from the other members
//! without holding up the apply.
//!
//! The state machine [`offer`](Catchup::offer)s refs and returns at once;
//! a bounded set of worker tasks on the shard's core (see
//! `Shard::catch_up`) takes them after [`CATCHUP_DELAY`], so a push still
//! in flight usually lands first and nothing is fetched twice. Each peer is
//! paced by [`Pacer`] so a rejoining node cannot swamp the members it
//! copies from. A chunk nobody fetched in the background is still fetched
//! on the first read that needs it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::chunk_hash::ChunkHash;
use crate::ids::NodeId;
use crate::limits::CATCHUP_DELAY;
use crate::limits::CATCHUP_QUEUE_MAX;

/// A chunk to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub sha256: ChunkHash,
    /// The node that stored it first (0: unknown).
    pub source_node: NodeId,
    /// When a worker may take it.
    pub due: Instant,
}

/// One shard's queue of chunks to fetch in the background.
#[derive(Debug)]
pub struct Catchup {
    queue: RefCell<VecDeque<Wanted>>,
    /// One unit per queued chunk: workers wait on it.
    ready: glommio::sync::Semaphore,
    dropped: Cell<u64>,
}

impl Default for Catchup {
    fn default() -> Self {
        Catchup {
            queue: RefCell::new(VecDeque::new()),
            ready: glommio::sync::Semaphore::new(0),
            dropped: Cell::new(0),
        }
    }
}

impl Catchup {
    /// Queues chunks to look for after [`CATCHUP_DELAY`]; never waits.
    pub fn offer(&self, chunks: impl IntoIterator<Item = (ChunkHash, NodeId)>) {
        let due = Instant::now() + CATCHUP_DELAY;
        let mut queue = self.queue.borrow_mut();
        let mut added = 0;
        for (sha256, source_node) in chunks {
            if queue.len() >= CATCHUP_QUEUE_MAX {
                self.dropped.set(self.dropped.get() + 1);
                continue;
            }
            queue.push_back(Wanted {
                sha256,
                source_node,
                due,
            });
            added += 1;
        }
        drop(queue);
        self.ready.signal(added);
    }

    /// Counts a chunk that was never offered because the queue would
    /// have been over [`CATCHUP_QUEUE_MAX`] (the offerer did not even
    /// collect it): like a dropped offer, only a full audit finds it.
    pub fn missed(&self) {
        self.dropped.set(self.dropped.get() + 1);
    }

    /// The next chunk to look for, once it is due.
    pub async fn next(&self) -> Wanted {
        self.ready
            .acquire(1)
            .await
            .expect("the catch-up semaphore is never closed");
        let wanted = self
            .queue
            .borrow_mut()
            .pop_front()
            .expect("one unit per queued chunk");
        let now = Instant::now();
        if wanted.due > now {
            glommio::timer::sleep(wanted.due - now).await;
        }
        wanted
    }

    /// Chunks waiting.
    pub fn pending(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Offers dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// Paces background reads to `bytes_per_s` per lane (a peer that
/// catch-up fetches from, or the scrub's own disk reads): each read
/// reserves its bytes on its lane's timeline and waits until its slot
/// starts.
#[derive(Debug)]
pub struct Pacer {
    bytes_per_s: u64,
    next_free: RefCell<HashMap<String, Instant>>,
}

impl Pacer {
    /// `bytes_per_s` 0 means unpaced.
    pub fn new(bytes_per_s: u64) -> Pacer {
        Pacer {
            bytes_per_s,
            next_free: RefCell::new(HashMap::new()),
        }
    }

    /// Reserves `bytes` on `lane` at `now`; returns how long to wait
    /// before the read.
    pub fn reserve(&self, lane: &str, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_s == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_s as f64);
        let mut next_free = self.next_free.borrow_mut();
        let slot = next_free.entry(lane.to_string()).or_insert(now);
        let start = (*slot).max(now);
        *slot = start + cost;
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::run_local;

    #[test]
    fn a_peer_is_paced_to_its_rate_and_peers_do_not_share_a_budget() {
        let pacer = Pacer::new(4 << 20); // 4 MiB/s: a 1 MiB chunk per 250 ms
        let t0 = Instant::now();
        let mib = 1 << 20;
        assert_eq!(pacer.reserve("a", mib, t0), Duration::ZERO);
        assert_eq!(pacer.reserve("a", mib, t0), Duration::from_millis(250));
        assert_eq!(pacer.reserve("a", mib, t0), Duration::from_millis(500));
        assert_eq!(pacer.reserve("b", mib, t0), Duration::ZERO);
        // Idle time is not banked: after a pause the next fetch starts at
        // once, and the one after waits its share again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve("a", mib, later), Duration::ZERO);
        assert_eq!(pacer.reserve("a", mib, later), Duration::from_millis(250));
        assert_eq!(Pacer::new(0).reserve("a", mib, t0), Duration::ZERO);
    }

    #[test]
    fn offered_chunks_come_out_in_order_once_due() {
        run_local(|| async {
            let catchup = Catchup::default();
            let offered = Instant::now();
            catchup.offer([([1; 32].into(), NodeId(7)), ([2; 32].into(), NodeId(0))]);
            assert_eq!(catchup.pending(), 2);
            let first = catchup.next().await;
            assert!(offered.elapsed() >= CATCHUP_DELAY);
            assert_eq!(
                (first.sha256, first.source_node),
                (ChunkHash::from([1; 32]), NodeId(7))
            );
            assert_eq!(catchup.next().await.sha256, ChunkHash::from([2; 32]));
            assert_eq!(catchup.pending(), 0);
            assert_eq!(catchup.dropped(), 0);
        });
    }
}
