//! The download budget: a bound on the chunk bytes one core's GETs hold
//! in memory, as the PUT admission budget bounds what uploads hold.
//!
//! A GET takes a chunk's size from its core's budget before it reads the
//! chunk and gives it back when the client has taken the bytes (when the
//! response asks for its next frame, hyper has handed the previous one to
//! the socket). Clients that stop reading therefore hold at most two
//! chunks each, and only until `--body-idle-timeout` drops them; past the
//! budget, new GETs wait (at most `--admission-timeout`, then 503
//! SlowDown) instead of growing the node's memory.
//!
//! Small chunks (up to [`SMALL_CHUNK_BYTES_MAX`]) take from their own lane,
//! an eighth of the budget: waiters are served in order, and a 4 KiB GET
//! must not queue behind large downloads that wait for a stalled client's
//! bytes.
//!
//! Core-local: a GET streams on the core that accepted its connection, so
//! each lane is a glommio semaphore (no atomics, FIFO waiters).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::sync::{Semaphore, StaticPermit};

use crate::limits::SMALL_CHUNK_BYTES_MAX;
use crate::metrics::CoreMetrics;

/// One core's download budget, in bytes.
pub struct DownloadBudget {
    large: Rc<Semaphore>,
    small: Rc<Semaphore>,
    capacity_bytes: u64,
    /// Where the bytes held and the refusals are counted.
    metrics: Arc<CoreMetrics>,
}

/// Bytes taken from the budget; given back when dropped.
pub struct Held {
    _permit: StaticPermit,
    bytes: u64,
    metrics: Arc<CoreMetrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.add_download_held(-(self.bytes as i64));
    }
}

/// No bytes came free in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no download budget came free within {waited_ms} ms: need {needed_bytes} bytes, \
     {held_bytes} of {capacity_bytes} held by this core's GETs"
)]
pub struct DownloadsFull {
    pub waited_ms: u64,
    pub needed_bytes: u64,
    pub held_bytes: u64,
    pub capacity_bytes: u64,
}

impl DownloadBudget {
    pub fn new(capacity_bytes: u64, metrics: Arc<CoreMetrics>) -> DownloadBudget {
        let small = (capacity_bytes / 8).max(SMALL_CHUNK_BYTES_MAX);
        assert!(
            capacity_bytes > small,
            "a download budget of {capacity_bytes} bytes has no room for large chunks"
        );
        DownloadBudget {
            large: Rc::new(Semaphore::new(capacity_bytes - small)),
            small: Rc::new(Semaphore::new(small)),
            capacity_bytes,
            metrics,
        }
    }

    /// Takes `bytes` (at most the capacity), waiting at most `wait`.
    pub async fn take(&self, bytes: u64, wait: Duration) -> Result<Held, DownloadsFull> {
        assert!(
            bytes <= self.capacity_bytes,
            "a chunk of {bytes} bytes exceeds the download budget of {}",
            self.capacity_bytes
        );
        if let Some(held) = self.try_take(bytes) {
            return Ok(held); // the common case: no timer to arm
        }
        let started = Instant::now();
        let acquire = async { self.lane(bytes).acquire_static_permit(bytes).await.ok() };
        let timed_out = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match future::or(acquire, timed_out).await {
            Some(permit) => Ok(self.held(permit, bytes)),
            None => {
                self.metrics.count_download_refused();
                Err(DownloadsFull {
                    waited_ms: started.elapsed().as_millis() as u64,
                    needed_bytes: bytes,
                    held_bytes: self.held_bytes(),
                    capacity_bytes: self.capacity_bytes,
                })
            }
        }
    }

    /// Takes `bytes` if they are free now.
    pub fn try_take(&self, bytes: u64) -> Option<Held> {
        let permit = self.lane(bytes).try_acquire_static_permit(bytes).ok()?;
        Some(self.held(permit, bytes))
    }

    fn lane(&self, bytes: u64) -> &Rc<Semaphore> {
        if bytes <= SMALL_CHUNK_BYTES_MAX {
            &self.small
        } else {
            &self.large
        }
    }

    fn held(&self, permit: StaticPermit, bytes: u64) -> Held {
        self.metrics.add_download_held(bytes as i64);
        Held {
            _permit: permit,
            bytes,
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// Bytes this core's GETs hold now.
    pub fn held_bytes(&self) -> u64 {
        self.metrics.download_held_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` on a fresh executor, sized for an 8 MiB memlock limit.
    fn on_executor<F, Fut>(body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .spawn(body)
            .expect("glommio executor starts")
            .join()
            .expect("test body ran to completion");
    }

    #[test]
    fn bytes_come_back_when_the_holder_is_dropped() {
        on_executor(|| async {
            // 8 MiB: 7 MiB for large chunks, 1 MiB for small ones.
            let budget = DownloadBudget::new(8 << 20, Arc::default());
            let a = budget.take(4 << 20, Duration::from_secs(1)).await.unwrap();
            assert_eq!(budget.held_bytes(), 4 << 20);
            let Err(refused) = budget.take(4 << 20, Duration::from_millis(50)).await else {
                panic!("granted more than the budget");
            };
            assert_eq!(refused.held_bytes, 4 << 20);
            assert!(refused.waited_ms >= 50);
            // Small chunks have their own lane: not stuck behind large ones.
            let small = budget.take(4096, Duration::from_millis(50)).await.unwrap();
            drop(a);
            drop(small);
            assert_eq!(budget.held_bytes(), 0);
            let whole_lane = budget.take(7 << 20, Duration::from_millis(50)).await;
            assert!(whole_lane.is_ok());
        });
    }

    #[test]
    fn a_waiting_take_is_granted_when_bytes_come_back() {
        on_executor(|| async {
            let budget = Rc::new(DownloadBudget::new(2 << 20, Arc::default()));
            let first = budget.take(1 << 20, Duration::from_secs(1)).await.unwrap();
            assert!(
                budget.try_take(1 << 20).is_none(),
                "1.75 MiB for large chunks"
            );
            let waiter = {
                let budget = Rc::clone(&budget);
                glommio::spawn_local(async move {
                    budget.take(1 << 20, Duration::from_secs(5)).await.is_ok()
                })
            };
            glommio::timer::sleep(Duration::from_millis(20)).await;
            drop(first);
            assert!(waiter.await);
        });
    }
}
