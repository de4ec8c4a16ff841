//! Tests of the clock-free accounting: unit arithmetic, the pools, what a
//! charge holds, and (exhaustively, over every short sequence of
//! operations) that the pools always equal the sum of what charges hold.

use crate::ids::ShardIndex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ledger::{self, ChargeUnits, Held, Pool, TakeFailed};
use super::{
    split_units, units_for_bytes, Attempt, Charge, NodeBudgets, ShardBudget, SharedPool,
    SliceBudget,
};
use crate::limits::{ADMISSION_CAPACITY_UNITS_MAX, ADMISSION_UNIT_BYTES};

const MIB: u64 = ADMISSION_UNIT_BYTES;

#[test]
fn units_round_up() {
    assert_eq!(units_for_bytes(0), 0);
    assert_eq!(units_for_bytes(1), 1);
    assert_eq!(units_for_bytes(MIB - 1), 1);
    assert_eq!(units_for_bytes(MIB), 1);
    assert_eq!(units_for_bytes(MIB + 1), 2);
    assert_eq!(units_for_bytes(u64::MAX), u64::MAX / MIB + 1);
    assert_eq!(
        ledger::capacity_units_for_bytes(u64::MAX),
        ADMISSION_CAPACITY_UNITS_MAX
    );
    assert_eq!(ledger::bytes_for_units(3), 3 * MIB);
    assert_eq!(ledger::bytes_for_units(u64::MAX), u64::MAX);
}

#[test]
fn split_adds_up_and_is_even() {
    for total in 0..64 {
        for parts in 1..9 {
            let slices: Vec<u64> = (0..parts).map(|i| split_units(total, parts, i)).collect();
            assert_eq!(slices.iter().sum::<u64>(), total, "{total} over {parts}");
            let (min, max) = (slices.iter().min().unwrap(), slices.iter().max().unwrap());
            assert!(max - min <= 1, "{total} over {parts}: {slices:?}");
        }
    }
}

#[test]
fn slice_budget_per_shard_and_node_total() {
    let per_shard = SliceBudget::PerShard { bytes: 3 * MIB + 1 };
    assert_eq!(per_shard.slice_units(4, 3), 4, "rounded up to whole units");
    let total = SliceBudget::NodeTotal { bytes: 10 * MIB };
    let slices: Vec<u64> = (0..4).map(|i| total.slice_units(4, i)).collect();
    assert_eq!(slices, vec![3, 3, 2, 2]);
}

#[test]
fn pool_takes_within_capacity() {
    let pool = Pool::new(3);
    assert!(pool.take_exact(0));
    assert!(pool.take_exact(2));
    assert!(!pool.take_exact(2), "only one left");
    assert_eq!(pool.used_units(), 2, "a failed take takes nothing");
    assert_eq!(pool.take_up_to(5), 1);
    assert_eq!(pool.take_up_to(5), 0);
    assert_eq!(pool.free_units(), 0);
    pool.give(3);
    assert_eq!(pool.used_units(), 0);
    assert_eq!(pool.free_units(), 3);
}

#[test]
fn pool_shrinks_below_in_flight_and_grows_back() {
    let pool = Pool::new(4);
    assert!(pool.take_exact(4));
    assert_eq!(pool.set_capacity_units(1), 4);
    assert_eq!(pool.used_units(), 4, "a shrink leaves held units held");
    assert_eq!(pool.free_units(), 0, "never negative");
    pool.give(2);
    assert!(!pool.take_exact(1), "2 in flight over a capacity of 1");
    pool.give(1);
    assert!(!pool.take_exact(1), "1 in flight fills a capacity of 1");
    pool.give(1);
    assert!(pool.take_exact(1));
    pool.set_capacity_units(5);
    assert_eq!(pool.free_units(), 4);
    assert!(pool.take_exact(4));
    pool.give(5);
    assert_eq!(pool.used_units(), 0);
}

#[test]
#[should_panic(expected = "returned 2 units but only 1 were taken")]
fn pool_return_past_zero_is_a_bug() {
    let pool = Pool::new(4);
    assert!(pool.take_exact(1));
    pool.give(2);
}

#[test]
fn take_uses_the_slice_first_and_borrows_only_the_rest() {
    let (slice, shared) = (Pool::new(2), Pool::new(3));
    let held = ledger::take(&slice, &shared, 1).unwrap();
    assert_eq!(
        held,
        Held {
            own_units: 1,
            shared_units: 0
        }
    );
    let held2 = ledger::take(&slice, &shared, 3).unwrap();
    assert_eq!(
        held2,
        Held {
            own_units: 1,
            shared_units: 2
        },
        "slice topped up first"
    );
    assert_eq!(
        ledger::take(&slice, &shared, 2),
        Err(TakeFailed {
            slice_units_returned: 0
        })
    );
    assert_eq!(
        (slice.used_units(), shared.used_units()),
        (2, 2),
        "failure takes nothing"
    );
    ledger::give_back(&slice, &shared, held);
    assert_eq!(
        ledger::take(&slice, &shared, 3),
        Err(TakeFailed {
            slice_units_returned: 1
        }),
        "1 slice unit + 1 shared is not 3: the slice unit goes back"
    );
    assert_eq!((slice.used_units(), shared.used_units()), (1, 2));
    ledger::give_back(&slice, &shared, held2);
    assert_eq!((slice.used_units(), shared.used_units()), (0, 0));
}

#[test]
fn charge_units_keep_one_idle_until_the_end() {
    let mut units = ChargeUnits::default();
    assert_eq!(units.shortfall(1), 1);
    units.grant(
        1,
        Held {
            own_units: 1,
            shared_units: 0,
        },
    );
    units.grant(
        1,
        Held {
            own_units: 0,
            shared_units: 1,
        },
    );
    units.grant(
        1,
        Held {
            own_units: 1,
            shared_units: 0,
        },
    );
    assert_eq!(
        (units.held_units(), units.busy_units(), units.idle_units()),
        (3, 3, 0)
    );

    let released = units.durable(1);
    assert_eq!(
        released,
        Held {
            own_units: 0,
            shared_units: 1
        },
        "borrowed goes back first"
    );
    let released = units.durable(2);
    assert_eq!(
        released,
        Held {
            own_units: 1,
            shared_units: 0
        },
        "the last stays idle"
    );
    assert_eq!(
        (units.held_units(), units.busy_units(), units.idle_units()),
        (1, 0, 1)
    );
    assert_eq!(units.durable(0), Held::default());

    assert_eq!(units.shortfall(1), 0, "the idle unit is reused");
    units.grant(1, Held::default());
    assert_eq!(
        (units.held_units(), units.busy_units(), units.idle_units()),
        (1, 1, 0)
    );
    assert_eq!(units.shortfall(2), 2);

    assert_eq!(
        units.durable(1),
        Held::default(),
        "the only unit turns idle"
    );
    assert_eq!(
        units.release_all(),
        Held {
            own_units: 1,
            shared_units: 0
        }
    );
    assert_eq!(units, ChargeUnits::default());
    assert_eq!(units.release_all(), Held::default(), "nothing twice");
}

#[test]
fn charge_units_idle_shared_unit_when_nothing_else() {
    let mut units = ChargeUnits::default();
    units.grant(
        1,
        Held {
            own_units: 0,
            shared_units: 1,
        },
    );
    assert_eq!(units.durable(1), Held::default());
    assert_eq!((units.shared_units(), units.idle_units()), (1, 1));
    assert_eq!(
        units.release_all(),
        Held {
            own_units: 0,
            shared_units: 1
        }
    );
}

#[test]
#[should_panic(expected = "2 units marked durable but only 1 are busy")]
fn charge_units_durable_past_busy_is_a_bug() {
    let mut units = ChargeUnits::default();
    units.grant(
        1,
        Held {
            own_units: 1,
            shared_units: 0,
        },
    );
    let _ = units.durable(2);
}

#[test]
#[should_panic(expected = "a grant takes exactly the shortfall")]
fn charge_units_grant_must_match_shortfall() {
    let mut units = ChargeUnits::default();
    units.grant(1, Held::default());
}

fn budget(slice_units: u64, shared_units: u64) -> Arc<ShardBudget> {
    ShardBudget::new(
        ShardIndex(0),
        slice_units,
        Arc::new(SharedPool::new(shared_units)),
    )
}

#[test]
fn charge_grants_borrows_and_returns_everything_on_drop() {
    let budget = budget(1, 1);
    let mut a = budget.charge();
    let mut b = budget.charge();
    assert_eq!(a.try_grant(true), Attempt::Granted);
    assert_eq!(b.try_grant(true), Attempt::Granted);
    assert_eq!(
        (a.borrowed_units(), b.borrowed_units()),
        (0, 1),
        "b borrowed: slice full"
    );
    let snapshot = budget.snapshot();
    assert_eq!(
        (
            snapshot.inflight_bytes,
            snapshot.borrowed_bytes,
            snapshot.capacity_bytes
        ),
        (2 * MIB, MIB, MIB)
    );
    assert_eq!(budget.shared.inflight_bytes(), MIB);
    assert_eq!(
        a.try_grant(true),
        Attempt::MustDrain {
            busy_units: 1,
            need_units: 1
        }
    );
    let mut c = budget.charge();
    assert_eq!(c.try_grant(true), Attempt::Wait { need_units: 1 });
    drop(b);
    assert_eq!(
        budget.shared.inflight_bytes(),
        0,
        "borrowed units went home"
    );
    assert_eq!(budget.snapshot().borrowed_bytes, 0);
    assert_eq!(
        c.try_grant(false),
        Attempt::Wait { need_units: 1 },
        "may not take"
    );
    assert_eq!(c.try_grant(true), Attempt::Granted);
    a.release_durable(1);
    assert_eq!(a.held_units(), 1, "idle until the end");
    assert_eq!(
        a.try_grant(false),
        Attempt::Granted,
        "reusing the idle unit takes nothing"
    );
    drop(a);
    c.release();
    let snapshot = budget.snapshot();
    assert_eq!((snapshot.inflight_bytes, snapshot.borrowed_bytes), (0, 0));
    assert_eq!(budget.slice.used_units(), 0);
}

#[test]
fn peek_sees_slice_or_shared_headroom_and_charges_nothing() {
    let budget = budget(1, 1);
    assert!(budget.has_headroom(0));
    assert!(
        budget.has_headroom(5 << 30),
        "a huge body needs only its first unit"
    );
    let mut a = budget.charge();
    assert_eq!(a.try_grant(true), Attempt::Granted);
    assert!(budget.has_headroom(1), "the shared pool has a unit");
    let mut b = budget.charge();
    assert_eq!(b.try_grant(true), Attempt::Granted);
    assert!(!budget.has_headroom(1));
    assert!(budget.has_headroom(0), "an empty body is always let in");
    let error = budget.peek(10).unwrap_err();
    assert_eq!(
        error,
        super::AdmissionError::NoHeadroom {
            needed_bytes: MIB,
            headroom_bytes: 0,
            inflight_bytes: 2 * MIB,
            capacity_bytes: MIB,
        }
    );
    assert!(error.is_rejection());
    assert_eq!(
        budget.snapshot().inflight_bytes,
        2 * MIB,
        "peeks charged nothing"
    );
    drop(b);
    assert!(budget.peek(10).is_ok());
    drop(a);
}

#[test]
fn node_budgets_build_and_retune() {
    let node = NodeBudgets::new(3, SliceBudget::NodeTotal { bytes: 8 * MIB }, 2 * MIB);
    let caps: Vec<u64> = node
        .shards()
        .iter()
        .map(|s| s.snapshot().capacity_bytes)
        .collect();
    assert_eq!(caps, vec![3 * MIB, 3 * MIB, 2 * MIB]);
    assert_eq!(node.shared().capacity_bytes(), 2 * MIB);
    assert_eq!(node.shard(ShardIndex(2)).shard(), ShardIndex(2));

    let mut held = node.shard(ShardIndex(0)).charge();
    assert_eq!(held.try_grant(true), Attempt::Granted);
    node.retune(Some(SliceBudget::PerShard { bytes: 0 }), None);
    assert!(node
        .shards()
        .iter()
        .all(|s| s.snapshot().capacity_bytes == 0));
    assert_eq!(node.shared().capacity_bytes(), 2 * MIB, "left as it was");
    assert_eq!(
        node.shard(ShardIndex(0)).snapshot().inflight_bytes,
        MIB,
        "still held"
    );
    drop(held);
    assert_eq!(
        node.shard(ShardIndex(0)).snapshot().inflight_bytes,
        0,
        "and returned without underflow"
    );
    node.retune(None, Some(u64::MAX));
    assert_eq!(
        node.shared().capacity_bytes(),
        ADMISSION_CAPACITY_UNITS_MAX * MIB,
        "capped: unlimited"
    );
}

#[test]
fn charge_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Charge>();
    assert_send_sync::<Arc<ShardBudget>>();
    assert_send_sync::<NodeBudgets>();
}

/// Operations of the exhaustive check: charges 0 and 1 on shard A, charge
/// 2 on shard B; A and B share one pool.
#[derive(Clone, Copy, Debug)]
enum Op {
    Acquire(usize),
    Durable(usize),
    Drop(usize),
    RetuneSlice,
    RetuneShared,
}

const OPS: [Op; 11] = [
    Op::Acquire(0),
    Op::Acquire(1),
    Op::Acquire(2),
    Op::Durable(0),
    Op::Durable(1),
    Op::Durable(2),
    Op::Drop(0),
    Op::Drop(1),
    Op::Drop(2),
    Op::RetuneSlice,
    Op::RetuneShared,
];

/// Every sequence of `DEPTH` operations (11^6, about 1.8 million), from
/// fresh budgets: after each step the pools equal what the charges hold,
/// no take overfills a pool, borrowing happens only with the slice full,
/// and the outcome of each acquire is the one the rules give.
#[test]
fn every_short_sequence_keeps_the_books() {
    const DEPTH: u32 = 6;
    let mut sequence = [0usize; DEPTH as usize];
    for n in 0..OPS.len().pow(DEPTH) {
        let mut rest = n;
        for slot in sequence.iter_mut() {
            *slot = rest % OPS.len();
            rest /= OPS.len();
        }
        run_sequence(&sequence);
    }
}

fn run_sequence(sequence: &[usize]) {
    let shared = Arc::new(SharedPool::new(1));
    let a = ShardBudget::new(ShardIndex(0), 2, Arc::clone(&shared));
    let b = ShardBudget::new(ShardIndex(1), 1, Arc::clone(&shared));
    let mut charges = [a.charge(), a.charge(), b.charge()];
    for &op in sequence {
        match OPS[op] {
            Op::Acquire(i) => {
                let before = describe(&charges[i]);
                let (slice_free, shared_free) = (
                    charges[i].budget.slice.free_units(),
                    shared.pool.free_units(),
                );
                let used_before = (
                    charges[i].budget.slice.used_units(),
                    shared.pool.used_units(),
                );
                let outcome = charges[i].try_grant(true);
                let expected = if before.idle_units == 1 || slice_free + shared_free >= 1 {
                    Attempt::Granted
                } else if before.busy_units > 0 {
                    Attempt::MustDrain {
                        busy_units: before.busy_units,
                        need_units: 1,
                    }
                } else {
                    Attempt::Wait { need_units: 1 }
                };
                assert_eq!(outcome, expected, "{sequence:?}");
                let after = describe(&charges[i]);
                if after.shared_units > before.shared_units {
                    assert_eq!(slice_free, 0, "borrowed with slice room: {sequence:?}");
                }
                let budget = &charges[i].budget;
                // A take may find a pool over capacity after a shrink, but
                // never pushes one past it.
                if budget.slice.used_units() > used_before.0 {
                    assert!(budget.slice.used_units() <= budget.slice.capacity_units());
                }
                if shared.pool.used_units() > used_before.1 {
                    assert!(shared.pool.used_units() <= shared.pool.capacity_units());
                }
            }
            Op::Durable(i) => {
                let busy = charges[i].busy_units();
                charges[i].release_durable(busy.min(1));
            }
            Op::Drop(i) => {
                let budget = Arc::clone(&charges[i].budget);
                charges[i] = budget.charge();
            }
            Op::RetuneSlice => a.set_capacity_units((a.slice.capacity_units() + 1) % 4),
            Op::RetuneShared => shared.set_capacity_units((shared.pool.capacity_units() + 1) % 3),
        }
        check_books(&a, &b, &shared, &charges, sequence);
    }
    drop(charges);
    assert_eq!(
        (
            a.slice.used_units(),
            b.slice.used_units(),
            shared.pool.used_units()
        ),
        (0, 0, 0),
        "{sequence:?}"
    );
    assert_eq!(a.borrowed_units.load(Ordering::SeqCst), 0);
    assert_eq!(b.borrowed_units.load(Ordering::SeqCst), 0);
}

struct Described {
    shared_units: u64,
    busy_units: u64,
    idle_units: u64,
}

fn describe(charge: &Charge) -> Described {
    Described {
        shared_units: charge.units.shared_units(),
        busy_units: charge.units.busy_units(),
        idle_units: charge.units.idle_units(),
    }
}

fn check_books(
    a: &ShardBudget,
    b: &ShardBudget,
    shared: &SharedPool,
    charges: &[Charge; 3],
    sequence: &[usize],
) {
    let own = |budget: &ShardBudget| -> u64 {
        charges
            .iter()
            .filter(|c| std::ptr::eq(&*c.budget, budget))
            .map(|c| c.units.own_units())
            .sum()
    };
    let borrowed = |budget: &ShardBudget| -> u64 {
        charges
            .iter()
            .filter(|c| std::ptr::eq(&*c.budget, budget))
            .map(|c| c.units.shared_units())
            .sum()
    };
    assert_eq!(a.slice.used_units(), own(a), "{sequence:?}");
    assert_eq!(b.slice.used_units(), own(b), "{sequence:?}");
    assert_eq!(
        a.borrowed_units.load(Ordering::SeqCst),
        borrowed(a),
        "{sequence:?}"
    );
    assert_eq!(
        b.borrowed_units.load(Ordering::SeqCst),
        borrowed(b),
        "{sequence:?}"
    );
    assert_eq!(
        shared.pool.used_units(),
        borrowed(a) + borrowed(b),
        "{sequence:?}"
    );
    for charge in charges {
        assert!(charge.units.idle_units() <= 1);
        assert!(charge.units.idle_units() == 0 || charge.units.busy_units() == 0);
    }
}

/// Threads standing in for cores take and return units of their own
/// slices and one shared pool as fast as they can; the units held at once
/// never exceed the capacity, and everything comes back.
#[test]
fn cores_racing_for_the_shared_pool_never_overfill_it() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 20_000;
    const SHARED_UNITS: u64 = 3;
    let shared = Arc::new(SharedPool::new(SHARED_UNITS));
    let held_now = Arc::new(AtomicU64::new(0));
    let held_max = Arc::new(AtomicU64::new(0));
    let borrowed_now = Arc::new(AtomicU64::new(0));
    let borrowed_max = Arc::new(AtomicU64::new(0));
    let budgets: Vec<_> = (0..THREADS)
        .map(|i| ShardBudget::new(ShardIndex(i as u16), 1, Arc::clone(&shared)))
        .collect();
    let threads: Vec<_> = budgets
        .iter()
        .map(|budget| {
            let budget = Arc::clone(budget);
            let (held_now, held_max) = (Arc::clone(&held_now), Arc::clone(&held_max));
            let (borrowed_now, borrowed_max) =
                (Arc::clone(&borrowed_now), Arc::clone(&borrowed_max));
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let mut charges = [budget.charge(), budget.charge()];
                    let mut got = 0;
                    let mut borrowed = 0;
                    for charge in charges.iter_mut() {
                        if charge.try_grant(true) == Attempt::Granted {
                            got += 1;
                            borrowed += charge.borrowed_units();
                        }
                    }
                    let now = held_now.fetch_add(got, Ordering::SeqCst) + got;
                    held_max.fetch_max(now, Ordering::SeqCst);
                    let now = borrowed_now.fetch_add(borrowed, Ordering::SeqCst) + borrowed;
                    borrowed_max.fetch_max(now, Ordering::SeqCst);
                    if round % 3 == 0 {
                        std::thread::yield_now();
                    }
                    held_now.fetch_sub(got, Ordering::SeqCst);
                    borrowed_now.fetch_sub(borrowed, Ordering::SeqCst);
                    drop(charges);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let capacity = THREADS as u64 + SHARED_UNITS;
    assert!(held_max.load(Ordering::SeqCst) <= capacity);
    assert!(borrowed_max.load(Ordering::SeqCst) <= SHARED_UNITS);
    assert!(
        borrowed_max.load(Ordering::SeqCst) > 0,
        "the race borrowed at all"
    );
    assert_eq!(shared.pool.used_units(), 0);
    for budget in &budgets {
        assert_eq!(budget.slice.used_units(), 0);
        assert_eq!(budget.borrowed_units.load(Ordering::SeqCst), 0);
    }
}
