//! openraft's `AsyncRuntime` on a glommio `LocalExecutor`.
//!
//! Everything here runs on the shard's core: openraft spawns its tasks
//! (raft core, state machine worker, ticker, replication) with
//! [`GlommioRuntime::spawn`], which puts them on the current executor, so
//! all of a raft group lives on one thread. That is only possible because
//! the crate is built with openraft's `singlethreaded` feature (no `Send`
//! bounds). Every function here must be called inside a glommio executor:
//! glommio timers and `spawn_local` panic outside one.
//!
//! The glue is kept in this one module so that moving to openraft 0.10
//! (where runtimes also own mpsc/watch/mutex) stays mechanical.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use glommio::timer::Timer;
use openraft::async_runtime::AsyncOneshotSendExt;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant};

/// openraft's runtime, backed by the current glommio executor.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GlommioRuntime;

/// A spawned task ended without producing its output: glommio cancelled it
/// (its executor is shutting down). A panicking task takes the executor
/// down with it, so this never stands for a panic.
#[derive(Debug, thiserror::Error)]
#[error("glommio task was cancelled before it finished")]
pub struct TaskCancelled;

/// The join handle openraft awaits; the task itself is detached, so
/// dropping this handle does not cancel it (openraft expects tokio's
/// detach-on-drop semantics, while a glommio `Task` cancels on drop).
pub struct GlommioJoinHandle<T>(glommio::task::JoinHandle<T>);

impl<T> Future for GlommioJoinHandle<T> {
    type Output = Result<T, TaskCancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|out| out.ok_or(TaskCancelled))
    }
}

/// A sleep whose output is `()`, as openraft wants.
pub struct GlommioSleep(Timer);

impl Future for GlommioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A future did not finish within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline of {after_ms} ms elapsed")]
pub struct Elapsed {
    pub after_ms: u64,
}

/// `future` raced against a timer; the future wins ties.
pub struct GlommioTimeout<F> {
    future: Pin<Box<F>>,
    timer: Timer,
    after: Duration,
}

impl<F: Future> Future for GlommioTimeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let after_ms = u64::try_from(self.after.as_millis()).unwrap_or(u64::MAX);
        Pin::new(&mut self.timer)
            .poll(cx)
            .map(|_| Err(Elapsed { after_ms }))
    }
}

/// Sending half of openraft's oneshot channels.
pub struct GlommioOneshotSender<T>(oneshot::Sender<T>);

impl<T> fmt::Debug for GlommioOneshotSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GlommioOneshotSender")
    }
}

impl<T> AsyncOneshotSendExt<T> for GlommioOneshotSender<T> {
    fn send(self, value: T) -> Result<(), T> {
        self.0.send(value)
    }
}

/// Time left until `deadline`, zero if it has passed.
fn until(deadline: TokioInstant) -> Duration {
    deadline.saturating_duration_since(TokioInstant::now())
}

impl AsyncRuntime for GlommioRuntime {
    type JoinError = TaskCancelled;
    type JoinHandle<T: OptionalSend + 'static> = GlommioJoinHandle<T>;
    type Sleep = GlommioSleep;
    // A plain monotonic clock (`std::time::Instant` inside); tokio's timer
    // is never started.
    type Instant = TokioInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = GlommioTimeout<T>;
    type ThreadLocalRng = rand::rngs::ThreadRng;
    type OneshotSender<T: OptionalSend> = GlommioOneshotSender<T>;
    type OneshotReceiverError = oneshot::Canceled;
    type OneshotReceiver<T: OptionalSend> = oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        GlommioJoinHandle(glommio::spawn_local(future).detach())
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        GlommioSleep(Timer::new(duration))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        GlommioSleep(Timer::new(until(deadline)))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        GlommioTimeout {
            future: Box::pin(future),
            timer: Timer::new(duration),
            after: duration,
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Self::timeout(until(deadline), future)
    }

    fn is_panic(_join_error: &Self::JoinError) -> bool {
        false
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        rand::thread_rng()
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = oneshot::channel();
        (GlommioOneshotSender(tx), rx)
    }
}
