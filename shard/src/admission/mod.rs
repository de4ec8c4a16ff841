//! PUT admission control: per-shard byte budgets, charged in 1 MiB units,
//! that bound the PUT body bytes a node holds in memory (`docs/admission.md`).
//!
//! # What it owns
//!
//! - [`SharedPool`]: the node-wide overflow pool (`--put-budget-shared`),
//!   one per node. Any shard borrows from it, with compare-and-swap, only
//!   the units its own slice cannot give.
//! - [`ShardBudget`]: one per shard: its slice (`--put-budget-per-shard`, or
//!   `--put-budget` split over the shards), the units its charges hold of
//!   the slice and of the shared pool, and the wake-up [`Event`] for its
//!   waiters. All counts are atomics (module `ledger`), so every core can
//!   peek at any shard's headroom, take units, or give them back; no lock
//!   is ever taken on these paths.
//! - [`Charge`]: the RAII guard for what one request holds of one shard's
//!   budget. Units go back exactly once: when the charge marks them durable
//!   ([`Charge::release_durable`]) or when it is dropped (success, failure,
//!   client gone, task cancelled). A `Charge` is not `Clone`, and its units
//!   live only inside it, so double release and leaks are impossible by
//!   construction; the pools assert on a return that would underflow.
//! - [`Gate`]: one per (core, shard) that charges on that core. It owns the
//!   core-local FIFO of acquires waiting on that shard, and the core's
//!   [`AdmissionStats`].
//!
//! # Which core runs what
//!
//! The entry peek ([`ShardBudget::has_headroom`], [`Gate::peek`]) runs on
//! the ingress core and reads atomics only. [`Gate::acquire`] runs on
//! whichever core holds the gate: the ingress core that reads the body (so
//! no hop per chunk) or the owner core; both work, because the counts are
//! atomics and wake-ups cross cores. A [`Charge`] is `Send`: it may be
//! dropped, or release units, on any core. A release notifies the shard's
//! [`Event`] (and the shared pool's, if it returned borrowed units), which
//! wakes the waiting gates' heads through glommio wakers, which accept a
//! wake from a foreign thread.
//!
//! # Waiting
//!
//! An acquire takes one unit for the next chunk (up to
//! [`CHUNK_BYTES`](crate::limits::CHUNK_BYTES)) before the caller reads it.
//! If none is free it waits, at most the gate's timeout
//! (`--admission-timeout`, default
//! [`ADMISSION_WAIT_MS_DEFAULT`](crate::limits::ADMISSION_WAIT_MS_DEFAULT)),
//! then fails with [`AdmissionError::Timeout`]. Waiters on one gate are
//! served first come, first served: a new acquire does not take a unit
//! while an older one on the same gate waits, and only the oldest waiter
//! listens for releases. Across cores (when several ingress cores charge one
//! shard) and across shards (for the shared pool) there is no queue: each
//! gate's oldest waiter competes as releases wake it.
//!
//! A request never waits while it holds units whose chunks are not yet
//! durable: that is hold-and-wait, and a few pipelined requests could then
//! sit on all units, each waiting for another's. Instead the acquire
//! returns [`AdmissionError::MustDrain`] at once and the caller waits for
//! its oldest append, marks it durable, and asks again. A request with no
//! busy unit reuses its idle unit (below) without waiting, and one that
//! holds nothing waits in the queue. So a waiting acquire holds nothing,
//! and an admitted request always progresses, at worst one chunk at a
//! time. An acquire that could not be granted even with every other unit
//! free (slice plus shared pool is zero) fails at once with
//! [`AdmissionError::ExceedsCapacity`].
//!
//! # Holding units: the choice
//!
//! Design §6 says units are held until the bytes are durable *and*
//! committed. Holding every unit of an object until its manifest commit
//! would make any object larger than the budget impossible to store (a
//! 64 MiB object on a 16 MiB budget would wait on itself forever), and it
//! would count bytes no longer in memory: a chunk buffer goes back to the
//! pool once its append is durable. So:
//!
//! - a unit is *busy* from the acquire before its chunk is read until that
//!   chunk is durable in the blob log (with its replicas, once they exist);
//!   the caller then calls [`Charge::release_durable`];
//! - when the last busy unit becomes durable, the charge keeps one unit,
//!   *idle*, until the request ends (dropping the charge after the manifest
//!   commit, or on failure). The next acquire reuses it.
//!
//! A request therefore holds `max(1, chunks not yet durable)` units from
//! its first acquire to its end. The memory bound holds: body bytes read
//! and not yet durable never exceed the units held, and all held units
//! never exceed slice plus shared capacity. The idle unit covers what the
//! request still holds while it commits (its manifest with every chunk
//! ref, 5120 refs for a 5 GiB object, well under one unit) and keeps
//! committing PUTs counted, so the budget also bounds the raft proposals
//! waiting to commit. Objects of any size complete on any non-zero budget.
//!
//! # Capacities change live
//!
//! [`NodeBudgets::retune`] (for `PUT /admin/budgets`) swaps capacities.
//! Units already held stay held; if they exceed a smaller capacity, new
//! charges wait until enough come back, and a release can never underflow
//! because a pool's count only ever goes down by units a charge holds.
//! Growing a capacity wakes the waiters.
//!
//! # Bounds
//!
//! Per gate at most
//! [`ADMISSION_WAITERS_PER_GATE_MAX`](crate::limits::ADMISSION_WAITERS_PER_GATE_MAX)
//! waiting acquires (more are refused with [`AdmissionError::QueueFull`]);
//! at most two event listeners per gate (its oldest waiter's), so a release
//! wakes at most two per gate. Capacities are capped at
//! [`ADMISSION_CAPACITY_UNITS_MAX`](ADMISSION_CAPACITY_UNITS_MAX)
//! units, which also stands for "unlimited".
//!
//! # Metrics
//!
//! Gauges come from [`ShardBudget::snapshot`] and [`SharedPool`];
//! rejections and wait times from each core's [`AdmissionStats`], labelled
//! by [`Stage`] and [`Protocol`]. A gate records its own rejections and
//! waits; the caller records nothing more.

mod error;
mod gate;
mod ledger;
mod stats;

#[cfg(test)]
mod gate_test;
#[cfg(test)]
mod ledger_test;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use event_listener::Event;

pub use error::AdmissionError;
pub use gate::Gate;
pub use ledger::{bytes_for_units, capacity_units_for_bytes, split_units, units_for_bytes};
pub use stats::{AdmissionStats, Protocol, Stage, WaitHistogram, WAIT_BOUNDS_S, WAIT_BUCKETS};

use ledger::{ChargeUnits, Held, Pool};

use crate::ids::ShardIndex;
use crate::limits::{ADMISSION_CAPACITY_UNITS_MAX, ADMISSION_UNIT_BYTES};

/// How the flags size the shard slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceBudget {
    /// Every shard gets this many bytes (rounded up to whole units).
    PerShard { bytes: u64 },
    /// The node's total, rounded up to whole units, split over the shards
    /// as evenly as whole units allow.
    NodeTotal { bytes: u64 },
}

impl SliceBudget {
    /// Units of shard `index`'s slice, out of `shards`.
    pub fn slice_units(self, shards: usize, index: usize) -> u64 {
        match self {
            SliceBudget::PerShard { bytes } => capacity_units_for_bytes(bytes),
            SliceBudget::NodeTotal { bytes } => {
                split_units(capacity_units_for_bytes(bytes), shards, index)
            }
        }
    }
}

/// Every budget of one node: the shared pool and each shard's slice.
/// Built once at start; the handles it gives out are shared read-mostly
/// with every core.
pub struct NodeBudgets {
    shared: Arc<SharedPool>,
    shards: Vec<Arc<ShardBudget>>,
}

impl NodeBudgets {
    pub fn new(shards: u16, slices: SliceBudget, shared_bytes: u64) -> NodeBudgets {
        assert!(shards > 0, "a node runs at least one shard");
        let shared = Arc::new(SharedPool::new(capacity_units_for_bytes(shared_bytes)));
        let count = usize::from(shards);
        let shards = (0..shards)
            .map(|shard| {
                let units = slices.slice_units(count, usize::from(shard));
                ShardBudget::new(ShardIndex(shard), units, Arc::clone(&shared))
            })
            .collect();
        NodeBudgets { shared, shards }
    }

    pub fn shared(&self) -> &Arc<SharedPool> {
        &self.shared
    }

    /// Shard `index`'s budget. An index past the shard count is a routing
    /// bug: it panics.
    pub fn shard(&self, index: ShardIndex) -> &Arc<ShardBudget> {
        &self.shards[index.as_usize()]
    }

    pub fn shards(&self) -> &[Arc<ShardBudget>] {
        &self.shards
    }

    /// Changes capacities live; `None` leaves that part as it is. Units in
    /// flight stay charged (see the module docs); waiters are woken to look
    /// again.
    pub fn retune(&self, slices: Option<SliceBudget>, shared_bytes: Option<u64>) {
        if let Some(bytes) = shared_bytes {
            self.shared
                .set_capacity_units(capacity_units_for_bytes(bytes));
        }
        if let Some(slices) = slices {
            let count = self.shards.len();
            for (index, shard) in self.shards.iter().enumerate() {
                shard.set_capacity_units(slices.slice_units(count, index));
            }
        }
    }
}

/// The node-wide overflow pool. Shards borrow from it only what their own
/// slice cannot give, and return borrowed units first.
pub struct SharedPool {
    pool: Pool,
    /// Notified when borrowed units come back or the capacity changes.
    freed: Event,
}

impl SharedPool {
    pub fn new(capacity_units: u64) -> SharedPool {
        SharedPool {
            pool: Pool::new(capacity_units),
            freed: Event::new(),
        }
    }

    pub fn capacity_bytes(&self) -> u64 {
        bytes_for_units(self.pool.capacity_units())
    }

    /// Bytes all shards together have borrowed.
    pub fn inflight_bytes(&self) -> u64 {
        bytes_for_units(self.pool.used_units())
    }

    /// Sets the capacity (capped at the maximum) and wakes waiters.
    pub fn set_capacity_units(&self, capacity_units: u64) {
        self.pool
            .set_capacity_units(capacity_units.min(ADMISSION_CAPACITY_UNITS_MAX));
        self.freed.notify(usize::MAX);
    }
}

impl fmt::Debug for SharedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPool")
            .field("capacity_units", &self.pool.capacity_units())
            .field("used_units", &self.pool.used_units())
            .finish()
    }
}

/// One shard's budget: its slice, what its charges hold, and its waiters'
/// wake-up. Shared (`Arc`) with every core.
pub struct ShardBudget {
    shard: ShardIndex,
    slice: Pool,
    /// Units this shard's charges hold of the shared pool (a gauge; the
    /// shared pool counts them too).
    borrowed_units: AtomicU64,
    shared: Arc<SharedPool>,
    /// Notified when units of the slice come back or the capacity changes.
    freed: Event,
}

/// A read of one shard's gauges, for the metrics endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetSnapshot {
    pub shard: ShardIndex,
    /// The slice's capacity.
    pub capacity_bytes: u64,
    /// Held by this shard's charges: of its slice plus borrowed.
    pub inflight_bytes: u64,
    /// Held by this shard's charges of the shared pool.
    pub borrowed_bytes: u64,
}

impl ShardBudget {
    pub fn new(shard: ShardIndex, slice_units: u64, shared: Arc<SharedPool>) -> Arc<ShardBudget> {
        Arc::new(ShardBudget {
            shard,
            slice: Pool::new(slice_units.min(ADMISSION_CAPACITY_UNITS_MAX)),
            borrowed_units: AtomicU64::new(0),
            shared,
            freed: Event::new(),
        })
    }

    pub fn shard(&self) -> ShardIndex {
        self.shard
    }

    /// Whether a PUT whose body is about `bytes_hint` long (its
    /// `Content-Length`, or the decoded length of a chunked body) could get
    /// its first unit now, from the slice or the shared pool. Charges
    /// nothing, and the answer may be stale by the time the body comes:
    /// it is a fail-fast filter, the charge is [`Gate::acquire`]. An empty
    /// body needs no unit.
    pub fn has_headroom(&self, bytes_hint: u64) -> bool {
        let units = units_for_bytes(bytes_hint.min(ADMISSION_UNIT_BYTES));
        units == 0 || self.slice.free_units() >= units || self.shared.pool.free_units() >= units
    }

    /// [`ShardBudget::has_headroom`] as a `Result` with the numbers, for
    /// logs and errors. Records nothing; [`Gate::peek`] also counts the
    /// rejection.
    pub fn peek(&self, bytes_hint: u64) -> Result<(), AdmissionError> {
        if self.has_headroom(bytes_hint) {
            return Ok(());
        }
        let snapshot = self.snapshot();
        Err(AdmissionError::NoHeadroom {
            needed_bytes: bytes_for_units(units_for_bytes(bytes_hint.min(ADMISSION_UNIT_BYTES))),
            headroom_bytes: bytes_for_units(
                self.slice.free_units() + self.shared.pool.free_units(),
            ),
            inflight_bytes: snapshot.inflight_bytes,
            capacity_bytes: snapshot.capacity_bytes,
        })
    }

    /// An empty charge on this budget, for one request; units come with
    /// [`Gate::acquire`].
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: Arc::clone(self),
            units: ChargeUnits::default(),
        }
    }

    /// Sets the slice's capacity (capped at the maximum) and wakes waiters.
    pub fn set_capacity_units(&self, capacity_units: u64) {
        self.slice
            .set_capacity_units(capacity_units.min(ADMISSION_CAPACITY_UNITS_MAX));
        self.freed.notify(usize::MAX);
    }

    pub fn snapshot(&self) -> BudgetSnapshot {
        let borrowed_units = self.borrowed_units.load(Ordering::Relaxed);
        BudgetSnapshot {
            shard: self.shard,
            capacity_bytes: bytes_for_units(self.slice.capacity_units()),
            inflight_bytes: bytes_for_units(self.slice.used_units() + borrowed_units),
            borrowed_bytes: bytes_for_units(borrowed_units),
        }
    }

    /// Slice plus shared capacity: the most this shard's charges could
    /// ever hold.
    fn reachable_units(&self) -> u64 {
        self.slice.capacity_units() + self.shared.pool.capacity_units()
    }

    fn try_take(&self, units: u64) -> Option<Held> {
        match ledger::take(&self.slice, &self.shared.pool, units) {
            Ok(held) => {
                self.borrowed_units
                    .fetch_add(held.shared_units, Ordering::Relaxed);
                Some(held)
            }
            Err(failed) => {
                if failed.slice_units_returned > 0 {
                    // Another gate may have seen these units taken and gone
                    // to sleep in between.
                    self.freed.notify(usize::MAX);
                }
                None
            }
        }
    }

    fn give_back(&self, held: Held) {
        let (own_units, shared_units) = (held.own_units, held.shared_units);
        if shared_units > 0 {
            let before = self
                .borrowed_units
                .fetch_sub(shared_units, Ordering::Relaxed);
            assert!(
                before >= shared_units,
                "shard {} returned {shared_units} borrowed units but held {before}",
                self.shard
            );
        }
        ledger::give_back(&self.slice, &self.shared.pool, held);
        if own_units > 0 {
            self.freed.notify(usize::MAX);
        }
        if shared_units > 0 {
            self.shared.freed.notify(usize::MAX);
        }
    }
}

impl fmt::Debug for ShardBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardBudget")
            .field("shard", &self.shard)
            .field("capacity_units", &self.slice.capacity_units())
            .field("used_units", &self.slice.used_units())
            .field(
                "borrowed_units",
                &self.borrowed_units.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// Units one acquire charges: one, for the next chunk of at most
/// `CHUNK_BYTES`.
const ACQUIRE_UNITS: u64 = 1;

/// What [`Charge::try_grant`] found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// One more unit is busy for the next chunk.
    Granted,
    /// No unit now, and the charge holds busy units: the caller must let
    /// some become durable rather than wait.
    MustDrain { busy_units: u64, need_units: u64 },
    /// No unit now; the charge holds nothing, so it may wait.
    Wait { need_units: u64 },
}

/// What one request holds of one shard's budget; gives it all back when
/// dropped. See the module docs for when units are busy and idle.
pub struct Charge {
    budget: Arc<ShardBudget>,
    units: ChargeUnits,
}

impl Charge {
    pub fn shard(&self) -> ShardIndex {
        self.budget.shard
    }

    /// Units held, busy and idle, of the slice and borrowed.
    pub fn held_units(&self) -> u64 {
        self.units.held_units()
    }

    pub fn held_bytes(&self) -> u64 {
        bytes_for_units(self.units.held_units())
    }

    /// Units whose chunks are not yet durable.
    pub fn busy_units(&self) -> u64 {
        self.units.busy_units()
    }

    /// Units held of the shared pool.
    pub fn borrowed_units(&self) -> u64 {
        self.units.shared_units()
    }

    /// Marks the oldest `chunks` charged chunks durable and gives their
    /// units back, keeping one held (idle) when none stays busy. Marking
    /// more chunks than are busy is a caller bug: it panics.
    pub fn release_durable(&mut self, chunks: u64) {
        let held = self.units.durable(chunks);
        self.budget.give_back(held);
    }

    /// Tries to grant one busy unit for the next chunk without waiting:
    /// reuses the idle unit, else (if `may_take`: nobody is in line before
    /// this request) takes one from the slice or the shared pool. The
    /// decision the gate makes before and while waiting.
    fn try_grant(&mut self, may_take: bool) -> Attempt {
        let need_units = self.units.shortfall(ACQUIRE_UNITS);
        if need_units == 0 {
            self.units.grant(ACQUIRE_UNITS, Held::default());
            return Attempt::Granted;
        }
        if may_take {
            if let Some(held) = self.budget.try_take(need_units) {
                self.units.grant(ACQUIRE_UNITS, held);
                return Attempt::Granted;
            }
        }
        match self.units.busy_units() {
            0 => Attempt::Wait { need_units },
            busy_units => Attempt::MustDrain {
                busy_units,
                need_units,
            },
        }
    }

    /// Ends the request: gives everything back. The same as dropping it;
    /// for call sites where the end deserves a name.
    pub fn release(self) {}
}

impl Drop for Charge {
    fn drop(&mut self) {
        let held = self.units.release_all();
        self.budget.give_back(held);
    }
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Charge")
            .field("shard", &self.budget.shard)
            .field("units", &self.units)
            .finish()
    }
}
