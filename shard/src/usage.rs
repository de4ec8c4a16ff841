//! How much each bucket holds on a shard, for `shoal-ctl bucket` and the
//! per-bucket metrics: one pass over the shard's manifests
//! ([`MetaStore::bucket_usage`]), kept for a while.
//!
//! Two ways to ask ([`Freshness`]): an operator's `shoal-ctl bucket`
//! waits for a scan that starts after it asked; a metrics scrape never
//! waits, takes the last answer (nothing before the first scan) and starts
//! a scan in the background when that answer has aged past
//! [`USAGE_AGE_MAX`], or past ten times what the last scan took, so
//! background scans keep a blocking thread busy a tenth of the time at
//! most. One scan runs at a time; askers that arrive meanwhile share it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::USAGE_AGE_MAX;
use crate::meta::{BucketUsage, MetaError, MetaStore};

/// A scan's duration times this is the least time before a background one.
const SCAN_SPACING_FACTOR: u32 = 10;

/// Every bucket with objects on a shard, and what it holds there.
pub type ShardUsage = Arc<BTreeMap<String, BucketUsage>>;

/// How current an answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Whatever is known now; never waits.
    Cached,
    /// From a scan that started after the question.
    Current,
}

/// One shard's bucket usage and when it was measured.
pub struct UsageCache {
    last: RefCell<Option<Measured>>,
    scanning: glommio::sync::Semaphore,
}

#[derive(Clone)]
struct Measured {
    started: Instant,
    took: Duration,
    usage: ShardUsage,
}

impl Default for UsageCache {
    fn default() -> Self {
        UsageCache {
            last: RefCell::new(None),
            scanning: glommio::sync::Semaphore::new(1),
        }
    }
}

impl UsageCache {
    /// The usage of every bucket on this shard, as `freshness` asks.
    pub async fn get(
        self: &Rc<Self>,
        meta: &MetaStore,
        freshness: Freshness,
    ) -> Result<ShardUsage, MetaError> {
        let asked = Instant::now();
        if freshness == Freshness::Current {
            return self.scan(meta, asked).await;
        }
        let last = self.last.borrow().clone();
        let aged = last
            .as_ref()
            .is_none_or(|m| m.started.elapsed() > USAGE_AGE_MAX.max(m.took * SCAN_SPACING_FACTOR));
        if aged && self.scanning.available() > 0 {
            let cache = Rc::clone(self);
            let meta = meta.clone();
            glommio::spawn_local(async move {
                if let Err(e) = cache.scan(&meta, asked).await {
                    tracing::warn!(error = %e, "scanning bucket usage failed");
                }
            })
            .detach();
        }
        Ok(last.map(|m| m.usage).unwrap_or_default())
    }

    /// A scan that started at `asked` or later: one already under way is
    /// waited for, and taken if it started late enough.
    async fn scan(&self, meta: &MetaStore, asked: Instant) -> Result<ShardUsage, MetaError> {
        let _one_at_a_time = self.scanning.acquire_permit(1).await;
        if let Some(measured) = self.last.borrow().as_ref() {
            if measured.started >= asked {
                return Ok(Arc::clone(&measured.usage));
            }
        }
        let started = Instant::now();
        let usage = Arc::new(meta.bucket_usage(None).await?);
        *self.last.borrow_mut() = Some(Measured {
            started,
            took: started.elapsed(),
            usage: Arc::clone(&usage),
        });
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::tests::{manifest, write_records};
    use crate::test_util::run_local;

    fn counts(usage: &ShardUsage) -> Vec<(&str, u64)> {
        usage.iter().map(|(b, u)| (b.as_str(), u.objects)).collect()
    }

    #[test]
    fn scans_on_demand_every_time_and_in_the_background_for_scrapes() {
        run_local(|| async {
            let dir = tempfile::tempdir().unwrap();
            let meta = MetaStore::open(dir.path()).unwrap();
            let objects = vec![
                manifest("a", "1", 1),
                manifest("a", "2", 2),
                manifest("b", "1", 1),
            ];
            write_records(&meta, Vec::new(), objects).await;
            let cache = Rc::new(UsageCache::default());

            // A scrape never waits: nothing before the first scan, which it
            // starts in the background.
            let first = cache.get(&meta, Freshness::Cached).await.unwrap();
            assert!(first.is_empty());
            glommio::timer::sleep(Duration::from_millis(200)).await;
            let scanned = cache.get(&meta, Freshness::Cached).await.unwrap();
            assert_eq!(counts(&scanned), [("a", 2), ("b", 1)]);
            assert_eq!(scanned["a"].bytes, 3 << 20);

            // An operator's question scans again, every time.
            write_records(&meta, Vec::new(), vec![manifest("a", "3", 1)]).await;
            for _ in 0..3 {
                let current = cache.get(&meta, Freshness::Current).await.unwrap();
                assert_eq!(counts(&current), [("a", 3), ("b", 1)]);
            }
            let only_b = meta.bucket_usage(Some("b")).await.unwrap();
            assert_eq!(only_b.keys().collect::<Vec<_>>(), ["b"]);
        });
    }
}
