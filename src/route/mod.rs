//! Which shard owns what, and how a request reaches that shard's core.
//!
//! An object belongs to shard `shard_of(bucket, key)`; bucket records belong
//! to [`METADATA_SHARD`]. The [`Router`] on each core holds the shards that
//! core owns and one bounded, lock-free glommio channel to every other
//! core's shards. A request hops by value (chunk buffers move, they are not
//! copied); a full channel makes the sender wait, it never drops.

mod hash;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::channel::oneshot;
use glommio::channels::shared_channel::ConnectedSender;
use shoal_proto::meta::meta_command::Op;
use shoal_shard::error::ShardError;
use shoal_shard::ids::ShardIndex;
use shoal_shard::ops::{Reply, ShardRequest};
use shoal_shard::raft::ApplyOutcome;
use shoal_shard::shard::{Shard, ShardStats};

pub use hash::{shard_of, METADATA_SHARD};

/// This core's view of every shard: local ones by reference, remote ones by
/// channel.
pub struct Router {
    shard_count: u16,
    local: HashMap<ShardIndex, Rc<Shard>>,
    remote: HashMap<ShardIndex, ConnectedSender<ShardRequest>>,
    /// Every shard's stats, for the hop-queue depth gauge.
    stats: Arc<Vec<Arc<ShardStats>>>,
}

impl Router {
    pub fn new(
        shard_count: u16,
        local: HashMap<ShardIndex, Rc<Shard>>,
        remote: HashMap<ShardIndex, ConnectedSender<ShardRequest>>,
        stats: Arc<Vec<Arc<ShardStats>>>,
    ) -> Self {
        for shard in (0..shard_count).map(ShardIndex) {
            assert!(
                local.contains_key(&shard) ^ remote.contains_key(&shard),
                "shard {shard} must be reachable exactly one way"
            );
        }
        Router {
            shard_count,
            local,
            remote,
            stats,
        }
    }

    pub fn shard_count(&self) -> u16 {
        self.shard_count
    }

    /// Every shard of the node, in index order.
    pub fn shards(&self) -> impl Iterator<Item = ShardIndex> {
        (0..self.shard_count).map(ShardIndex)
    }

    /// The shard owning `bucket/key`.
    pub fn owner(&self, bucket: &str, key: &str) -> ShardIndex {
        shard_of(bucket, key, self.shard_count)
    }

    /// Whether any shard holds an object of `bucket`: objects live on
    /// every shard, so the bucket is empty only if all of them say so.
    pub async fn bucket_has_objects(&self, bucket: &str) -> Result<bool, ShardError> {
        let checks = self.shards().map(|shard| {
            self.call(shard, |reply| ShardRequest::BucketHasObjects {
                bucket: bucket.to_string(),
                reply,
            })
        });
        for found in futures::future::join_all(checks).await {
            if found? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Sends a request built around a fresh reply channel to `shard` and
    /// waits for its answer.
    pub async fn call<T>(
        &self,
        shard: ShardIndex,
        build: impl FnOnce(Reply<T>) -> ShardRequest,
    ) -> Result<T, ShardError> {
        let (reply, answer) = oneshot::channel();
        let request = build(reply);
        if let Some(local) = self.local.get(&shard) {
            local.dispatch(request).await;
        } else {
            let sender = self.remote.get(&shard).expect("router covers every shard");
            let depth = &self.stats[shard.as_usize()].hop_queue_depth;
            depth.fetch_add(1, Ordering::Relaxed);
            if sender.send(request).await.is_err() {
                depth.fetch_sub(1, Ordering::Relaxed);
                return Err(ShardError::Stopped { shard });
            }
        }
        answer.await.unwrap_or(Err(ShardError::Stopped { shard }))
    }

    /// Commits `op` through `shard`'s group and answers how it applied.
    pub async fn propose(&self, shard: ShardIndex, op: Op) -> Result<ApplyOutcome, ShardError> {
        self.call(shard, |reply| ShardRequest::Propose { op, reply })
            .await
    }
}
