//! Tests of waiting: acquires on a real glommio executor, woken by
//! releases on the same core, on another thread and from another shard's
//! return to the shared pool; timeouts, FIFO order, cancellation, retunes.

use crate::ids::ShardIndex;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::{poll_once, yield_now};

use super::{
    AdmissionError, AdmissionStats, Charge, Gate, NodeBudgets, Protocol, ShardBudget, SharedPool,
    SliceBudget, Stage,
};
use crate::limits::{ADMISSION_UNIT_BYTES, ADMISSION_WAITERS_PER_GATE_MAX};

const MIB: u64 = ADMISSION_UNIT_BYTES;
const LONG: Duration = Duration::from_secs(20);
const FIXED: Protocol = Protocol::FixedLength;
const BATCH: Stage = Stage::PerBatch;

use crate::test_util::run_local as run;

/// Yields to the executor until `done` holds; fails after many tries
/// instead of sleeping and hoping.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        yield_now().await;
    }
    panic!("never happened: {what}");
}

fn gate(slice_units: u64, shared_units: u64, timeout: Duration) -> Rc<Gate> {
    let shared = Arc::new(SharedPool::new(shared_units));
    let budget = ShardBudget::new(ShardIndex(0), slice_units, shared);
    Rc::new(Gate::new(
        budget,
        Arc::new(AdmissionStats::default()),
        timeout,
    ))
}

/// A charge holding one busy unit.
async fn holding_one(gate: &Gate) -> Charge {
    let mut charge = gate.begin();
    gate.acquire(&mut charge, BATCH, FIXED)
        .await
        .expect("a free unit");
    charge
}

fn inflight_bytes(gate: &Gate) -> u64 {
    gate.budget().snapshot().inflight_bytes
}

#[test]
fn waiter_is_woken_by_a_release() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let waiter = glommio::spawn_local({
            let gate = Rc::clone(&gate);
            async move {
                let mut charge = gate.begin();
                gate.acquire(&mut charge, BATCH, FIXED)
                    .await
                    .map(|()| charge)
            }
        });
        wait_until("the waiter queues", || gate.waiting() == 1).await;
        assert_eq!(inflight_bytes(&gate), MIB, "the waiter took nothing");
        drop(holder);
        let charge = waiter.await.expect("granted after the release");
        assert_eq!(charge.held_bytes(), MIB);
        assert_eq!(gate.waiting(), 0);
        drop(charge);
        assert_eq!(inflight_bytes(&gate), 0);
        let waits = gate.stats().wait_histogram(BATCH, FIXED);
        assert_eq!(waits.count(), 2, "both acquires recorded a wait");
    });
}

#[test]
fn wait_times_out_on_a_tiny_budget() {
    run(|| async {
        let timeout = Duration::from_millis(30);
        let gate = gate(1, 0, timeout);
        let _holder = holding_one(&gate).await;
        let mut charge = gate.begin();
        let started = Instant::now();
        let error = gate
            .acquire(&mut charge, BATCH, Protocol::Chunked)
            .await
            .unwrap_err();
        assert!(started.elapsed() >= timeout);
        match error {
            AdmissionError::Timeout {
                waited_ms,
                needed_bytes,
                inflight_bytes,
                capacity_bytes,
                borrowed_bytes,
            } => {
                assert!(waited_ms >= 30, "{waited_ms}");
                assert_eq!(
                    (needed_bytes, inflight_bytes, capacity_bytes, borrowed_bytes),
                    (MIB, MIB, MIB, 0)
                );
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(error.is_rejection());
        assert_eq!(charge.held_units(), 0);
        assert_eq!(gate.waiting(), 0);
        let stats = gate.stats();
        assert_eq!(stats.rejections(BATCH, Protocol::Chunked), 1);
        assert_eq!(stats.rejections(BATCH, FIXED), 0);
        let waits = stats.wait_histogram(BATCH, Protocol::Chunked);
        assert_eq!(waits.count(), 1);
        assert!(waits.sum_us >= 30_000);
    });
}

#[test]
fn waiters_are_served_in_arrival_order() {
    run(|| async {
        const WAITERS: usize = 6;
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..WAITERS {
            let (gate2, order) = (Rc::clone(&gate), Rc::clone(&order));
            tasks.push(glommio::spawn_local(async move {
                let mut charge = gate2.begin();
                gate2.acquire(&mut charge, BATCH, FIXED).await.unwrap();
                order.borrow_mut().push(i);
                // Hold the unit a moment so the next must really wait.
                yield_now().await;
                yield_now().await;
            }));
            wait_until("waiter queued", || gate.waiting() == i + 1).await;
        }
        // A latecomer, while others wait, queues behind them.
        let late = glommio::spawn_local({
            let (gate, order) = (Rc::clone(&gate), Rc::clone(&order));
            async move {
                let mut charge = gate.begin();
                gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
                order.borrow_mut().push(WAITERS);
            }
        });
        drop(holder);
        for task in tasks {
            task.await;
        }
        late.await;
        assert_eq!(*order.borrow(), (0..=WAITERS).collect::<Vec<_>>());
        assert_eq!(inflight_bytes(&gate), 0);
    });
}

#[test]
fn dropping_a_waiting_acquire_leaks_nothing_and_passes_the_turn() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let mut first = gate.begin();
        let mut second = gate.begin();
        {
            let mut first_wait = Box::pin(gate.acquire(&mut first, BATCH, FIXED));
            assert!(poll_once(first_wait.as_mut()).await.is_none());
            let mut second_wait = pin!(gate.acquire(&mut second, BATCH, FIXED));
            assert!(poll_once(second_wait.as_mut()).await.is_none());
            assert_eq!(gate.waiting(), 2);
            // Give the unit back while both wait, then cancel the head:
            // the turn (and the unit) must pass to the second.
            drop(holder);
            drop(first_wait);
            assert_eq!(gate.waiting(), 1);
            second_wait.await.expect("the second gets the unit");
        }
        assert_eq!(first.held_units(), 0, "the cancelled acquire took nothing");
        assert_eq!(second.held_units(), 1);
        assert_eq!(gate.waiting(), 0);
        drop(second);
        assert_eq!(inflight_bytes(&gate), 0);
        assert_eq!(gate.budget().snapshot().borrowed_bytes, 0);
    });
}

#[test]
fn a_guard_dropped_midway_returns_everything() {
    run(|| async {
        let gate = gate(2, 2, LONG);
        let mut charge = gate.begin();
        for _ in 0..4 {
            gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
        }
        assert_eq!((charge.held_units(), charge.borrowed_units()), (4, 2));
        charge.release_durable(1);
        assert_eq!(
            (charge.held_units(), charge.borrowed_units()),
            (3, 1),
            "borrowed first"
        );
        assert_eq!(gate.budget().shared.inflight_bytes(), MIB);
        drop(charge); // e.g. the client went away mid-body
        assert_eq!(inflight_bytes(&gate), 0);
        assert_eq!(gate.budget().shared.inflight_bytes(), 0);
        assert_eq!(gate.budget().snapshot().borrowed_bytes, 0);
    });
}

#[test]
fn a_request_never_waits_on_its_own_units() {
    run(|| async {
        let gate = gate(2, 0, LONG);
        let mut charge = gate.begin();
        gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
        gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
        let started = Instant::now();
        let error = gate.acquire(&mut charge, BATCH, FIXED).await.unwrap_err();
        assert!(started.elapsed() < LONG / 2, "returned at once");
        assert_eq!(
            error,
            AdmissionError::MustDrain {
                busy_bytes: 2 * MIB,
                needed_bytes: MIB
            }
        );
        assert!(!error.is_rejection());
        assert_eq!(gate.stats().rejections(BATCH, FIXED), 0);
        assert_eq!(charge.held_units(), 2, "nothing changed");
        charge.release_durable(1);
        gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
        charge.release_durable(2);
        assert_eq!(charge.held_units(), 1, "one unit stays until the end");
        assert_eq!(inflight_bytes(&gate), MIB);
        gate.acquire(&mut charge, BATCH, FIXED).await.unwrap();
        assert_eq!(inflight_bytes(&gate), MIB, "the idle unit was reused");
        assert_eq!(charge.busy_units(), 1);
    });
}

/// The pipeline the PUT path runs: acquire before each chunk; on
/// `MustDrain` wait for the oldest append and mark it durable. A 64 MiB
/// object goes through a 2 MiB budget.
#[test]
fn an_object_larger_than_the_budget_completes() {
    run(|| async {
        const CHUNKS: u64 = 64;
        const DEPTH: usize = 4;
        let gate = gate(2, 0, LONG);
        let mut charge = gate.begin();
        let mut appends: VecDeque<u64> = VecDeque::new();
        let mut peak = 0;
        for chunk in 0..CHUNKS {
            loop {
                if appends.len() == DEPTH {
                    appends.pop_front();
                    charge.release_durable(1);
                }
                match gate.acquire(&mut charge, BATCH, FIXED).await {
                    Ok(()) => break,
                    Err(AdmissionError::MustDrain { .. }) => {
                        assert!(appends.pop_front().is_some(), "drain needs a busy chunk");
                        charge.release_durable(1);
                    }
                    Err(other) => panic!("chunk {chunk}: {other}"),
                }
            }
            appends.push_back(chunk);
            peak = peak.max(inflight_bytes(&gate));
        }
        while appends.pop_front().is_some() {
            charge.release_durable(1);
        }
        assert_eq!(peak, 2 * MIB);
        assert_eq!(charge.held_units(), 1, "held for the manifest commit");
        drop(charge);
        assert_eq!(inflight_bytes(&gate), 0);
    });
}

#[test]
fn concurrent_uploads_never_exceed_the_capacity() {
    run(|| async {
        const UPLOADS: usize = 24;
        const CHUNKS: usize = 12;
        const SLICE_UNITS: u64 = 4;
        const SHARED_UNITS: u64 = 2;
        let gate = gate(SLICE_UNITS, SHARED_UNITS, LONG);
        let held = Rc::new(Cell::new(0u64));
        let peak = Rc::new(Cell::new(0u64));
        let borrowed_seen = Rc::new(Cell::new(false));
        let mut tasks = Vec::new();
        for upload in 0..UPLOADS {
            let (gate, held, peak) = (Rc::clone(&gate), Rc::clone(&held), Rc::clone(&peak));
            let borrowed_seen = Rc::clone(&borrowed_seen);
            tasks.push(glommio::spawn_local(async move {
                let mut charge = gate.begin();
                let mut busy = 0;
                for chunk in 0..CHUNKS {
                    loop {
                        let before = charge.held_units();
                        match gate.acquire(&mut charge, BATCH, FIXED).await {
                            Ok(()) => {
                                held.set(held.get() + charge.held_units() - before);
                                peak.set(peak.get().max(held.get()));
                                let inflight = gate.budget().snapshot().inflight_bytes;
                                assert!(inflight <= (SLICE_UNITS + SHARED_UNITS) * MIB);
                                borrowed_seen
                                    .set(borrowed_seen.get() || charge.borrowed_units() > 0);
                                busy += 1;
                                break;
                            }
                            Err(AdmissionError::MustDrain { .. }) => {
                                let before = charge.held_units();
                                charge.release_durable(1);
                                busy -= 1;
                                held.set(held.get() - (before - charge.held_units()));
                            }
                            Err(other) => panic!("upload {upload} chunk {chunk}: {other}"),
                        }
                    }
                    // Appends take a while; uploads interleave.
                    for _ in 0..(upload + chunk) % 3 {
                        yield_now().await;
                    }
                    if busy == 2 {
                        let before = charge.held_units();
                        charge.release_durable(1);
                        busy -= 1;
                        held.set(held.get() - (before - charge.held_units()));
                    }
                }
                held.set(held.get() - charge.held_units());
                drop(charge);
            }));
        }
        for task in tasks {
            task.await;
        }
        assert!(
            peak.get() <= SLICE_UNITS + SHARED_UNITS,
            "peak {}",
            peak.get()
        );
        assert_eq!(
            peak.get(),
            SLICE_UNITS + SHARED_UNITS,
            "the budget was used fully"
        );
        assert!(borrowed_seen.get(), "the shared pool was used");
        assert_eq!(held.get(), 0);
        assert_eq!(inflight_bytes(&gate), 0);
        assert_eq!(gate.budget().shared.inflight_bytes(), 0);
    });
}

#[test]
fn a_full_slice_borrows_and_a_return_wakes_the_other_shard() {
    run(|| async {
        let node = NodeBudgets::new(2, SliceBudget::PerShard { bytes: MIB }, MIB);
        let stats = Arc::new(AdmissionStats::default());
        let a = Rc::new(Gate::new(
            Arc::clone(node.shard(ShardIndex(0))),
            Arc::clone(&stats),
            LONG,
        ));
        let b = Gate::new(
            Arc::clone(node.shard(ShardIndex(1))),
            Arc::clone(&stats),
            LONG,
        );
        let own = holding_one(&a).await;
        assert_eq!(own.borrowed_units(), 0);
        let borrower = holding_one(&a).await;
        assert_eq!(borrower.borrowed_units(), 1, "slice full: borrowed");
        let snapshot = node.shard(ShardIndex(0)).snapshot();
        assert_eq!(
            (snapshot.inflight_bytes, snapshot.borrowed_bytes),
            (2 * MIB, MIB)
        );
        assert!(!node.shard(ShardIndex(0)).has_headroom(MIB));

        // Shard B fills its slice and then waits for the shared pool.
        let b_own = holding_one(&b).await;
        assert!(!node.shard(ShardIndex(1)).has_headroom(1));
        assert!(b.peek(1, FIXED).is_err());
        assert_eq!(stats.rejections(Stage::PreReserve, FIXED), 1);
        let mut b_second = b.begin();
        {
            let mut b_wait = pin!(b.acquire(&mut b_second, BATCH, FIXED));
            assert!(poll_once(b_wait.as_mut()).await.is_none());
            // Shard A returns its borrowed unit: B's waiter is woken by the
            // shared pool alone (A's slice unit stays held).
            drop(borrower);
            b_wait.await.expect("woken by the shared return");
        }
        assert_eq!(b_second.borrowed_units(), 1);
        drop((own, b_own, b_second));
        assert_eq!(node.shared().inflight_bytes(), 0);
        for shard in node.shards() {
            assert_eq!(shard.snapshot().inflight_bytes, 0);
        }
    });
}

#[test]
fn growing_the_budget_live_wakes_waiters() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let gate = Rc::clone(&gate);
                glommio::spawn_local(async move {
                    let mut charge = gate.begin();
                    gate.acquire(&mut charge, BATCH, FIXED)
                        .await
                        .map(|()| charge)
                })
            })
            .collect();
        wait_until("both wait", || gate.waiting() == 2).await;
        gate.budget().set_capacity_units(3);
        let mut granted = Vec::new();
        for waiter in waiters {
            granted.push(waiter.await.expect("granted by the retune"));
        }
        assert_eq!(inflight_bytes(&gate), 3 * MIB);
        drop((holder, granted));
        assert_eq!(inflight_bytes(&gate), 0);
    });
}

#[test]
fn shrinking_below_in_flight_waits_until_it_drains() {
    run(|| async {
        let gate = gate(3, 0, LONG);
        let mut held = vec![
            holding_one(&gate).await,
            holding_one(&gate).await,
            holding_one(&gate).await,
        ];
        gate.budget().set_capacity_units(1);
        let waiter = glommio::spawn_local({
            let gate = Rc::clone(&gate);
            async move {
                let mut charge = gate.begin();
                gate.acquire(&mut charge, BATCH, FIXED)
                    .await
                    .map(|()| charge)
            }
        });
        wait_until("waiting", || gate.waiting() == 1).await;
        held.pop();
        held.pop();
        for _ in 0..100 {
            yield_now().await;
        }
        assert_eq!(gate.waiting(), 1, "1 in flight fills the new capacity of 1");
        assert_eq!(inflight_bytes(&gate), MIB);
        held.pop();
        let charge = waiter.await.expect("granted once drained");
        assert_eq!(inflight_bytes(&gate), MIB);
        drop(charge);
        assert_eq!(inflight_bytes(&gate), 0);
    });
}

#[test]
fn shrinking_to_nothing_fails_waiters_at_once() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let mut charge = gate.begin();
        let started = Instant::now();
        let error = {
            let mut wait = pin!(gate.acquire(&mut charge, BATCH, FIXED));
            assert!(poll_once(wait.as_mut()).await.is_none());
            gate.budget().set_capacity_units(0);
            wait.await.unwrap_err()
        };
        assert!(started.elapsed() < LONG / 2);
        assert_eq!(
            error,
            AdmissionError::ExceedsCapacity {
                needed_bytes: MIB,
                held_bytes: 0,
                capacity_bytes: 0
            }
        );
        assert_eq!(gate.stats().rejections(BATCH, FIXED), 1);
        drop(holder);
        assert_eq!(inflight_bytes(&gate), 0);
        let error = gate.acquire(&mut charge, BATCH, FIXED).await.unwrap_err();
        assert!(matches!(error, AdmissionError::ExceedsCapacity { .. }));
    });
}

#[test]
fn a_release_on_another_thread_wakes_the_waiter() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let holder = holding_one(&gate).await;
        let mut charge = gate.begin();
        let started = Instant::now();
        let releaser = {
            let mut wait = pin!(gate.acquire(&mut charge, BATCH, FIXED));
            assert!(poll_once(wait.as_mut()).await.is_none());
            // The charge moves to another thread (another core) and is
            // dropped there; the glommio task must be woken from outside.
            let releaser = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(holder);
            });
            wait.await.expect("woken from the other thread");
            releaser
        };
        assert!(started.elapsed() < LONG / 2);
        releaser.join().unwrap();
        assert_eq!(charge.held_units(), 1);
    });
}

#[test]
fn acquires_past_the_queue_bound_are_refused() {
    run(|| async {
        let gate = gate(1, 0, LONG);
        let _holder = holding_one(&gate).await;
        let mut charges: Vec<Charge> = (0..=ADMISSION_WAITERS_PER_GATE_MAX)
            .map(|_| gate.begin())
            .collect();
        let (last, queued) = charges.split_last_mut().unwrap();
        let mut waits: Vec<_> = queued
            .iter_mut()
            .map(|charge| Box::pin(gate.acquire(charge, BATCH, FIXED)))
            .collect();
        for wait in waits.iter_mut() {
            assert!(poll_once(wait.as_mut()).await.is_none());
        }
        assert_eq!(gate.waiting(), ADMISSION_WAITERS_PER_GATE_MAX);
        let error = gate.acquire(last, BATCH, FIXED).await.unwrap_err();
        assert_eq!(
            error,
            AdmissionError::QueueFull {
                waiters: ADMISSION_WAITERS_PER_GATE_MAX
            }
        );
        drop(waits);
        assert_eq!(gate.waiting(), 0);
        assert_eq!(inflight_bytes(&gate), MIB);
    });
}

#[test]
#[should_panic(expected = "test body ran to completion")]
fn a_charge_through_another_shards_gate_is_a_bug() {
    run(|| async {
        let node = NodeBudgets::new(2, SliceBudget::PerShard { bytes: MIB }, 0);
        let stats = Arc::new(AdmissionStats::default());
        let a = Gate::new(
            Arc::clone(node.shard(ShardIndex(0))),
            Arc::clone(&stats),
            LONG,
        );
        let mut charge = node.shard(ShardIndex(1)).charge();
        let _ = a.acquire(&mut charge, BATCH, FIXED).await;
    });
}
