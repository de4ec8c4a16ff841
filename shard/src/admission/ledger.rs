//! The accounting core of PUT admission: counts of admission units, with no
//! clock, no executor and no I/O.
//!
//! Owns two kinds of state:
//! - a [`Pool`]: one capacity and the units taken from it, as two atomics,
//!   so any core may read it and take or return units with compare-and-swap.
//!   A shard's slice is one pool; the node's shared overflow pool is another.
//! - [`ChargeUnits`]: what one request holds, split into units of its shard's
//!   slice and units borrowed from the shared pool, plus whether one of them
//!   is kept idle for the manifest commit. Plain integers, owned by the
//!   request's guard.
//!
//! Invariants: a pool's `used` only counts units some [`Held`] accounts for,
//! so returning never underflows (it asserts); `used <= capacity` holds
//! whenever capacity has not been lowered below it, and when it has, takes
//! fail until enough units come back. Lowering or raising capacity never
//! touches `used`.
//!
//! Every operation is lock-free: a take is one compare-and-swap loop per
//! pool, a return one `fetch_update`. Orderings are `SeqCst` because the
//! waiter in `gate` registers for a wake-up and then re-reads these counts,
//! while a release stores here and then notifies; both sides need a total
//! order to never miss a wake-up.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::{ADMISSION_CAPACITY_UNITS_MAX, ADMISSION_UNIT_BYTES};

/// Units needed to hold `bytes`: rounded up, so 1 byte costs a unit and 0
/// bytes cost none.
pub fn units_for_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(ADMISSION_UNIT_BYTES)
}

/// Bytes in `units` whole units.
pub fn bytes_for_units(units: u64) -> u64 {
    units.saturating_mul(ADMISSION_UNIT_BYTES)
}

/// A capacity given in bytes, as units: rounded up to whole units and capped
/// at [`ADMISSION_CAPACITY_UNITS_MAX`] (which therefore also means
/// "unlimited").
pub fn capacity_units_for_bytes(bytes: u64) -> u64 {
    units_for_bytes(bytes).min(ADMISSION_CAPACITY_UNITS_MAX)
}

/// Splits `total_units` over `parts` slices as evenly as whole units allow:
/// the first `total_units % parts` slices get one unit more, so the slices
/// add up to the total exactly.
pub fn split_units(total_units: u64, parts: usize, index: usize) -> u64 {
    assert!(parts > 0, "a budget is split over at least one shard");
    assert!(index < parts, "slice {index} of {parts}");
    let parts = parts as u64;
    let index = index as u64;
    total_units / parts + u64::from(index < total_units % parts)
}

/// A capacity in units and the units taken from it; shared between cores.
#[derive(Debug)]
pub struct Pool {
    capacity_units: AtomicU64,
    used_units: AtomicU64,
}

impl Pool {
    pub fn new(capacity_units: u64) -> Pool {
        assert!(capacity_units <= ADMISSION_CAPACITY_UNITS_MAX);
        Pool {
            capacity_units: AtomicU64::new(capacity_units),
            used_units: AtomicU64::new(0),
        }
    }

    pub fn capacity_units(&self) -> u64 {
        self.capacity_units.load(Ordering::SeqCst)
    }

    pub fn used_units(&self) -> u64 {
        self.used_units.load(Ordering::SeqCst)
    }

    /// Units that could be taken now; zero while capacity is below `used`
    /// after a shrink.
    pub fn free_units(&self) -> u64 {
        // Read used first: a concurrent shrink can then only make the
        // answer too generous by the shrink, never negative.
        let used = self.used_units();
        self.capacity_units().saturating_sub(used)
    }

    /// Sets a new capacity, returning the old one. Units already taken stay
    /// taken; if they exceed the new capacity, takes fail until enough are
    /// returned.
    pub fn set_capacity_units(&self, capacity_units: u64) -> u64 {
        assert!(capacity_units <= ADMISSION_CAPACITY_UNITS_MAX);
        self.capacity_units.swap(capacity_units, Ordering::SeqCst)
    }

    /// Takes exactly `units`, or nothing when fewer are free.
    pub fn take_exact(&self, units: u64) -> bool {
        if units == 0 {
            return true;
        }
        self.used_units
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let capacity = self.capacity_units.load(Ordering::SeqCst);
                let after = used.checked_add(units)?;
                (after <= capacity).then_some(after)
            })
            .is_ok()
    }

    /// Takes as many of `units` as are free (possibly none); returns how
    /// many it took.
    pub fn take_up_to(&self, units: u64) -> u64 {
        let mut taken = 0;
        let _ = self
            .used_units
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let capacity = self.capacity_units.load(Ordering::SeqCst);
                taken = capacity.saturating_sub(used).min(units);
                (taken > 0).then_some(used + taken)
            });
        taken
    }

    /// Returns `units` taken earlier. Returning more than was taken is a
    /// bookkeeping bug, not an operating error: it asserts.
    pub fn give(&self, units: u64) {
        if units == 0 {
            return;
        }
        let result = self
            .used_units
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_sub(units)
            });
        assert!(
            result.is_ok(),
            "admission pool returned {units} units but only {} were taken",
            result.unwrap_or_else(|used| used)
        );
    }
}

/// Units taken by one take: from the shard's own slice and borrowed from
/// the shared pool. Not `Clone`: each unit is accounted for in exactly one
/// place and goes back exactly once.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "units taken must be given back"]
pub struct Held {
    pub own_units: u64,
    pub shared_units: u64,
}

impl Held {
    pub fn units(&self) -> u64 {
        self.own_units + self.shared_units
    }
}

/// Takes `units` all or nothing: as many as are free from `slice`, the rest
/// borrowed from `shared`, so the shared pool is only used once the slice is
/// full. On failure nothing stays taken; the result then says whether slice
/// units were taken and put back (a waiter may have missed them meanwhile
/// and should be told).
pub fn take(slice: &Pool, shared: &Pool, units: u64) -> Result<Held, TakeFailed> {
    let own_units = slice.take_up_to(units);
    let shared_units = units - own_units;
    if shared.take_exact(shared_units) {
        return Ok(Held {
            own_units,
            shared_units,
        });
    }
    slice.give(own_units);
    Err(TakeFailed {
        slice_units_returned: own_units,
    })
}

/// Why [`take`] failed: not enough units free in the slice and the shared
/// pool together.
#[derive(Debug, PartialEq, Eq)]
pub struct TakeFailed {
    pub slice_units_returned: u64,
}

/// Returns everything in `held` to the pools it came from.
pub fn give_back(slice: &Pool, shared: &Pool, held: Held) {
    slice.give(held.own_units);
    shared.give(held.shared_units);
}

/// What one request holds, and which of it is idle.
///
/// A unit is *busy* from its acquire until its chunk is durable. When the
/// last busy unit becomes durable, one unit stays held *idle* until the
/// request ends (its manifest commit), and the next acquire reuses it
/// instead of taking a new one. So a request holds
/// `max(1, busy units)` from its first acquire to its end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChargeUnits {
    own_units: u64,
    shared_units: u64,
    idle_units: u64,
}

impl ChargeUnits {
    #[cfg(test)]
    pub fn own_units(&self) -> u64 {
        self.own_units
    }

    pub fn shared_units(&self) -> u64 {
        self.shared_units
    }

    pub fn held_units(&self) -> u64 {
        self.own_units + self.shared_units
    }

    #[cfg(test)]
    pub fn idle_units(&self) -> u64 {
        self.idle_units
    }

    pub fn busy_units(&self) -> u64 {
        self.held_units() - self.idle_units
    }

    /// Units a grant of `units` busy units must take from the pools, after
    /// reusing the idle unit.
    pub fn shortfall(&self, units: u64) -> u64 {
        units - units.min(self.idle_units)
    }

    /// Records a grant of `units` busy units, `taken` of which came from
    /// the pools ([`ChargeUnits::shortfall`] of them) and the rest from the
    /// idle unit.
    pub fn grant(&mut self, units: u64, taken: Held) {
        assert_eq!(
            taken.units(),
            self.shortfall(units),
            "a grant takes exactly the shortfall"
        );
        self.idle_units -= units - taken.units();
        self.own_units += taken.own_units;
        self.shared_units += taken.shared_units;
        self.check();
    }

    /// Marks `units` busy units durable and returns the units to give back:
    /// all of them, except that the last busy unit stays held idle. Borrowed
    /// shared units go back first, so the unit kept idle is the slice's
    /// when the request holds any.
    pub fn durable(&mut self, units: u64) -> Held {
        let busy = self.busy_units();
        assert!(
            units <= busy,
            "{units} units marked durable but only {busy} are busy"
        );
        if units == 0 {
            return Held::default();
        }
        let busy_after = busy - units;
        let idle_after = u64::from(busy_after == 0);
        let release = self.held_units() - (busy_after + idle_after);
        self.idle_units = idle_after;
        self.split_off(release)
    }

    /// Takes out everything held, leaving nothing.
    pub fn release_all(&mut self) -> Held {
        self.idle_units = 0;
        self.split_off(self.held_units())
    }

    /// Removes `units` held units, shared ones first.
    fn split_off(&mut self, units: u64) -> Held {
        assert!(units <= self.held_units());
        let shared_units = units.min(self.shared_units);
        let own_units = units - shared_units;
        self.shared_units -= shared_units;
        self.own_units -= own_units;
        self.check();
        Held {
            own_units,
            shared_units,
        }
    }

    fn check(&self) {
        assert!(self.idle_units <= 1, "at most one unit is kept idle");
        assert!(self.idle_units <= self.held_units());
        assert!(
            self.idle_units == 0 || self.busy_units() == 0,
            "a unit is only idle while none is busy"
        );
    }
}
