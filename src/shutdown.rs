//! Stopping a node in order on SIGTERM or SIGINT.
//!
//! A signal thread records the request; every core notices it within
//! [`SHUTDOWN_POLL_INTERVAL`] and then, in step with the others:
//! 1. stops accepting S3 connections and tells each open one to close
//!    after the request in progress (idle keep-alive connections close at
//!    once); `/healthz` answers 503 from now on;
//! 2. waits until its connections are gone, at most `--shutdown-timeout`
//!    after the signal (later ones are cut);
//! 3. waits until every core got there (a request may still hop to a shard
//!    on another core until then);
//! 4. stops its shards: a cluster leader hands each group to another
//!    member, then the raft groups stop and the metadata is flushed.
//!
//! Then the executors end, `shoal` logs that it stopped and exits 0. A
//! second signal exits at once (status 130 or 143, as a shell reports a
//! process killed by it), and so does a first one that arrives before the
//! node serves (a start can wait minutes for a cluster to answer).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::limits::SHUTDOWN_POLL_INTERVAL;

/// The node-wide state of a shutdown, shared by the signal thread and
/// every core.
#[derive(Debug)]
pub struct Shutdown {
    requested: AtomicBool,
    /// When the first signal came: every core's deadline counts from it.
    requested_at: OnceLock<Instant>,
    serving: AtomicBool,
    /// Cores whose S3 listener is bound and accepting.
    serving_cores: AtomicUsize,
    cores: usize,
    drained_cores: AtomicUsize,
    /// How long requests in progress get (`--shutdown-timeout`).
    pub timeout: Duration,
}

impl Shutdown {
    pub fn new(cores: usize, timeout: Duration) -> Arc<Shutdown> {
        Arc::new(Shutdown {
            requested: AtomicBool::new(false),
            requested_at: OnceLock::new(),
            serving: AtomicBool::new(false),
            serving_cores: AtomicUsize::new(0),
            cores,
            drained_cores: AtomicUsize::new(0),
            timeout,
        })
    }

    /// Starts the thread that turns SIGTERM and SIGINT into a shutdown.
    pub fn handle_signals(self: &Arc<Self>) -> std::io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
        let shutdown = Arc::clone(self);
        std::thread::Builder::new()
            .name("shoal-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                    let _ = shutdown.requested_at.set(Instant::now());
                    if shutdown.requested.swap(true, Ordering::SeqCst) {
                        exit_now(128 + signal, &format!("second signal ({name}): exiting at once"));
                    }
                    if !shutdown.serving.load(Ordering::SeqCst) {
                        exit_now(
                            128 + signal,
                            &format!("{name} before the node serves: exiting at once"),
                        );
                    }
                    crate::service_manager::stopping();
                    tracing::info!(
                        signal = name,
                        timeout_s = shutdown.timeout.as_secs_f64(),
                        "stopping: no new connections; requests in progress may finish (a second signal exits at once)"
                    );
                }
            })?;
        Ok(())
    }

    /// This core accepts S3 connections: from now on requests may be in
    /// progress, so a signal stops the node in order. True for the last
    /// core to get there (then every listener is bound).
    pub fn core_serves(&self) -> bool {
        self.serving.store(true, Ordering::SeqCst);
        self.serving_cores.fetch_add(1, Ordering::SeqCst) + 1 == self.cores
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// When requests in progress must have finished: `--shutdown-timeout`
    /// after the signal (the same instant on every core).
    pub fn deadline(&self) -> Instant {
        *self.requested_at.get_or_init(Instant::now) + self.timeout
    }

    /// Completes once a shutdown was asked for.
    pub async fn requested(&self) {
        while !self.is_requested() {
            glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
        }
    }

    /// Marks this core's connections as gone, then waits until every
    /// core's are, or `deadline` passes.
    pub async fn drained(&self, deadline: Instant) {
        if self.drained_cores.fetch_add(1, Ordering::SeqCst) + 1 == self.cores {
            tracing::info!("every core has drained its connections; stopping the shards");
        }
        while self.drained_cores.load(Ordering::SeqCst) < self.cores && Instant::now() < deadline {
            glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
        }
    }
}

/// Ends the process now with `code`, saying why on stderr first. The line
/// is written directly, not through the log queue (which the process
/// will not live to flush), and `_exit` skips destructors: rocksdb's and
/// glommio's threads are still running, and everything acknowledged is
/// already synced.
pub fn exit_now(code: i32, why: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "shoal: {why}");
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// A one-shot flag that many tasks of one core can wait on: set once when
/// the core stops, after which every wait completes.
#[derive(Clone)]
pub struct StopLatch {
    set: futures::future::Shared<futures::channel::oneshot::Receiver<()>>,
    trigger: std::rc::Rc<std::cell::RefCell<Option<futures::channel::oneshot::Sender<()>>>>,
}

impl Default for StopLatch {
    fn default() -> Self {
        use futures::FutureExt;
        let (sender, receiver) = futures::channel::oneshot::channel();
        StopLatch {
            set: receiver.shared(),
            trigger: std::rc::Rc::new(std::cell::RefCell::new(Some(sender))),
        }
    }
}

impl StopLatch {
    pub fn set(&self) {
        self.trigger.borrow_mut().take();
    }

    /// Completes once [`StopLatch::set`] was called.
    pub async fn wait(&self) {
        // The sender is dropped, never used: `Canceled` is the signal.
        let _ = self.set.clone().await;
    }
}
