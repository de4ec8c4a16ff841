//! Every core's read-only view of the bucket catalog.
//!
//! Bucket records are owned by the metadata shard (shard 0) and change only
//! through its raft group. After each committed change the core that made it
//! publishes a new immutable map, so a PUT on any core checks its bucket
//! without hopping. Reads are lock-free (`ArcSwap::load`); writes are rare.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use shoal_proto::meta::BucketRecord;

#[derive(Clone, Default)]
pub struct Catalog {
    buckets: Arc<ArcSwap<BTreeMap<String, BucketRecord>>>,
}

impl Catalog {
    pub fn new(records: Vec<BucketRecord>) -> Self {
        let map = records.into_iter().map(|r| (r.name.clone(), r)).collect();
        Catalog {
            buckets: Arc::new(ArcSwap::from_pointee(map)),
        }
    }

    pub fn get(&self, name: &str) -> Option<BucketRecord> {
        self.buckets.load().get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.buckets.load().contains_key(name)
    }

    /// All buckets in name order.
    pub fn list(&self) -> Vec<BucketRecord> {
        self.buckets.load().values().cloned().collect()
    }

    /// Publishes a committed create.
    pub fn insert(&self, record: BucketRecord) {
        self.buckets.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            next.insert(record.name.clone(), record.clone());
            next
        });
    }

    /// Publishes a committed delete.
    pub fn remove(&self, name: &str) {
        self.buckets.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            next.remove(name);
            next
        });
    }
}
