//! The waiting half of admission: one core's entry to one shard's budget.
//!
//! A [`Gate`] is `!Send` and lives on one core; its queue of waiting
//! acquires is a `RefCell<VecDeque>` no borrow of which is held across an
//! `.await`. Only the oldest waiter (the head) listens on the budget's
//! events and tries to take units; the others wait to become head, woken
//! locally when the head leaves (granted, timed out or dropped). An
//! acquire waits on three things only: becoming head, a release or retune
//! event, and its deadline timer.
//!
//! Bounds: at most [`ADMISSION_WAITERS_PER_GATE_MAX`] queued acquires; two
//! event listeners (the head's) at a time.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use glommio::timer::Timer;

use super::ledger::bytes_for_units;
use super::stats::{AdmissionStats, Protocol, Stage};
use super::{AdmissionError, Attempt, Charge, ShardBudget};
use crate::limits::ADMISSION_WAITERS_PER_GATE_MAX;

/// One core's entry to one shard's budget: charges, waits, and counts
/// rejections and waits in the core's stats.
pub struct Gate {
    budget: Arc<ShardBudget>,
    stats: Arc<AdmissionStats>,
    timeout: Cell<Duration>,
    queue: RefCell<WaitQueue>,
}

impl Gate {
    /// A gate onto `budget` for the calling core, recording into that
    /// core's `stats`; an acquire waits at most `timeout`.
    pub fn new(budget: Arc<ShardBudget>, stats: Arc<AdmissionStats>, timeout: Duration) -> Gate {
        Gate {
            budget,
            stats,
            timeout: Cell::new(timeout),
            queue: RefCell::new(WaitQueue::default()),
        }
    }

    pub fn budget(&self) -> &Arc<ShardBudget> {
        &self.budget
    }

    pub fn stats(&self) -> &Arc<AdmissionStats> {
        &self.stats
    }

    pub fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    /// Applies to acquires that start waiting after the call.
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout.set(timeout);
    }

    /// Acquires waiting on this gate now.
    pub fn waiting(&self) -> usize {
        self.queue.borrow().entries.len()
    }

    /// The entry peek ([`ShardBudget::peek`]), counting a refusal as a
    /// `prereserve` rejection.
    pub fn peek(&self, bytes_hint: u64, protocol: Protocol) -> Result<(), AdmissionError> {
        self.budget
            .peek(bytes_hint)
            .inspect_err(|_| self.stats.record_rejection(Stage::PreReserve, protocol))
    }

    /// An empty charge for one request on this gate's shard.
    pub fn begin(&self) -> Charge {
        self.budget.charge()
    }

    /// Charges one unit to `charge` for the next chunk, before the caller
    /// reads it. Reuses the charge's idle unit if it has one; else takes a
    /// unit if one is free and nobody on this gate waits; else waits in
    /// line, at most the gate's timeout. Returns at once, taking nothing,
    /// with [`AdmissionError::MustDrain`] if it would have to wait while the
    /// charge holds busy units, and with
    /// [`AdmissionError::ExceedsCapacity`] if no unit can ever be had.
    ///
    /// Records the wait (zero when immediate) and any rejection under
    /// `stage` and `protocol`. Dropping the future gives up the place in
    /// line; it has taken nothing until it returns `Ok`.
    pub async fn acquire(
        &self,
        charge: &mut Charge,
        stage: Stage,
        protocol: Protocol,
    ) -> Result<(), AdmissionError> {
        assert!(
            Arc::ptr_eq(&charge.budget, &self.budget),
            "charge of shard {} acquired through the gate of shard {}",
            charge.shard(),
            self.budget.shard
        );
        let start = Instant::now();
        let result = self.acquire_unit(charge, start).await;
        match &result {
            Ok(()) => self.stats.record_wait(stage, protocol, start.elapsed()),
            Err(error) => {
                if let AdmissionError::Timeout { .. } = error {
                    self.stats.record_wait(stage, protocol, start.elapsed());
                }
                if error.is_rejection() {
                    self.stats.record_rejection(stage, protocol);
                }
            }
        }
        result
    }

    async fn acquire_unit(
        &self,
        charge: &mut Charge,
        start: Instant,
    ) -> Result<(), AdmissionError> {
        let nobody_waits = self.queue.borrow().entries.is_empty();
        let need = match charge.try_grant(nobody_waits) {
            Attempt::Granted => return Ok(()),
            Attempt::MustDrain {
                busy_units,
                need_units,
            } => {
                return Err(AdmissionError::MustDrain {
                    busy_bytes: bytes_for_units(busy_units),
                    needed_bytes: bytes_for_units(need_units),
                })
            }
            Attempt::Wait { need_units } => need_units,
        };
        // A waiting acquire holds nothing (no busy unit, and an idle one
        // would have been reused), so waiters never wait on each other.
        assert_eq!(charge.held_units(), 0, "a waiting acquire holds nothing");
        self.check_reachable(need)?;

        let ticket = Ticket::enqueue(&self.queue)?;
        let mut deadline = pin!(Timer::new(self.timeout.get()));
        loop {
            if !ticket.is_head() {
                match until(ticket.head(), deadline.as_mut()).await {
                    Woken::Ready => continue,
                    Woken::Deadline => return Err(self.timeout_error(need, start)),
                }
            }
            // Listen first, then look: a release after the look notifies
            // these listeners, one before it is seen by the look.
            let slice_freed = self.budget.freed.listen();
            let shared_freed = self.budget.shared.freed.listen();
            match charge.try_grant(true) {
                // Dropping the ticket on return wakes the next in line.
                Attempt::Granted => return Ok(()),
                Attempt::Wait { .. } => {}
                Attempt::MustDrain { .. } => unreachable!("a waiting charge holds nothing"),
            }
            self.check_reachable(need)?;
            let freed = futures_lite::future::or(slice_freed, shared_freed);
            if let Woken::Deadline = until(freed, deadline.as_mut()).await {
                return Err(self.timeout_error(need, start));
            }
        }
    }

    /// Fails if `units` could not be had even with every unit free.
    fn check_reachable(&self, units: u64) -> Result<(), AdmissionError> {
        let reachable = self.budget.reachable_units();
        if units > reachable {
            return Err(AdmissionError::ExceedsCapacity {
                needed_bytes: bytes_for_units(units),
                held_bytes: 0,
                capacity_bytes: bytes_for_units(reachable),
            });
        }
        Ok(())
    }

    fn timeout_error(&self, units: u64, start: Instant) -> AdmissionError {
        let snapshot = self.budget.snapshot();
        AdmissionError::Timeout {
            waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            needed_bytes: bytes_for_units(units),
            inflight_bytes: snapshot.inflight_bytes,
            capacity_bytes: snapshot.capacity_bytes,
            borrowed_bytes: snapshot.borrowed_bytes,
        }
    }
}

enum Woken {
    Ready,
    Deadline,
}

/// Waits for `event` or the deadline, whichever comes first; the event
/// wins a tie.
async fn until(event: impl Future<Output = ()>, deadline: Pin<&mut Timer>) -> Woken {
    futures_lite::future::or(
        async {
            event.await;
            Woken::Ready
        },
        async {
            deadline.await;
            Woken::Deadline
        },
    )
    .await
}

/// Acquires waiting on one gate, oldest first.
#[derive(Default)]
struct WaitQueue {
    next_id: u64,
    /// Each waiter's id and, while it waits to become head, its waker.
    entries: VecDeque<(u64, Option<Waker>)>,
}

/// One acquire's place in a gate's queue; leaving it (drop) removes the
/// entry and, if it was the head, wakes the next waiter so it becomes head.
struct Ticket<'a> {
    queue: &'a RefCell<WaitQueue>,
    id: u64,
}

impl<'a> Ticket<'a> {
    fn enqueue(queue: &'a RefCell<WaitQueue>) -> Result<Ticket<'a>, AdmissionError> {
        let mut q = queue.borrow_mut();
        if q.entries.len() >= ADMISSION_WAITERS_PER_GATE_MAX {
            return Err(AdmissionError::QueueFull {
                waiters: q.entries.len(),
            });
        }
        let id = q.next_id;
        q.next_id += 1;
        q.entries.push_back((id, None));
        Ok(Ticket { queue, id })
    }

    fn is_head(&self) -> bool {
        self.queue.borrow().entries.front().map(|(id, _)| *id) == Some(self.id)
    }

    /// Resolves once this ticket is the oldest in line.
    fn head(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            let mut q = self.queue.borrow_mut();
            if q.entries.front().map(|(id, _)| *id) == Some(self.id) {
                return Poll::Ready(());
            }
            let entry = q
                .entries
                .iter_mut()
                .find(|(id, _)| *id == self.id)
                .expect("a ticket stays queued until dropped");
            entry.1 = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let next = {
            let mut q = self.queue.borrow_mut();
            let index = q
                .entries
                .iter()
                .position(|(id, _)| *id == self.id)
                .expect("a ticket stays queued until dropped");
            q.entries.remove(index);
            if index == 0 {
                q.entries.front_mut().and_then(|(_, waker)| waker.take())
            } else {
                None
            }
        };
        // Woken with no borrow held: the waker only schedules the task.
        if let Some(waker) = next {
            waker.wake();
        }
    }
}
