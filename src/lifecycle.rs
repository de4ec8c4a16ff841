//! The lifecycle worker: on each core, every `--lifecycle-interval`, for
//! each local shard whose group this node leads, it reads the versions and
//! uploads of every bucket with lifecycle rules, at a bounded rate, and
//! proposes through raft what the rules make due.
//!
//! It only nominates. Each `lifecycle_expire` entry is checked again where
//! it applies, with the entry's proposal time as "now" and the key's
//! versions as they are then (`shoal_shard::raft`, `expire.rs`), so every
//! member decides alike, Object Lock holds, and a version written or a rule
//! changed since the worker looked decides instead. Rules are read afresh
//! on each pass: a rule added or changed applies to objects already
//! written.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    BucketRecord, LifecycleAction, LifecycleExpire, LifecycleRule, ObjectManifest, Versioning,
};
use shoal_shard::error::ShardError;
use shoal_shard::ids::ShardIndex;
use shoal_shard::lifecycle::{current_due, lone_marker_due, noncurrent_due, upload_due};
use shoal_shard::limits::LIST_KEYS_MAX;
use shoal_shard::meta::VersionSummary;
use shoal_shard::ops::ShardRequest;
use shoal_shard::raft::ApplyOutcome;
use shoal_shard::shard::{Shard, ShardStats};
use shoal_shard::version_id::NULL_VERSION_ID;

use crate::limits::LIFECYCLE_EXAMINED_PER_S;
use crate::s3::S3Context;

/// What the worker needs besides the node's state.
#[derive(Clone, Copy, Debug)]
pub struct LifecycleTiming {
    /// `--lifecycle-interval`.
    pub interval: Duration,
    /// `--lifecycle-day`.
    pub day: Duration,
}

/// One local shard, as the worker sees it.
pub struct LocalShard {
    pub shard: Rc<Shard>,
    pub stats: Arc<ShardStats>,
}

/// Runs the worker on this core until the process ends.
pub async fn run(ctx: Rc<S3Context>, shards: Vec<LocalShard>, timing: LifecycleTiming) {
    loop {
        glommio::timer::sleep(timing.interval).await;
        for local in &shards {
            if !local.shard.raft().is_leader() {
                continue;
            }
            for record in ctx.directory.buckets() {
                let rules = enabled_rules(&record);
                if rules.is_empty() {
                    continue;
                }
                let pass = Pass {
                    ctx: &ctx,
                    shard: local.shard.index(),
                    stats: &local.stats,
                    bucket: &record.name,
                    rules: &rules,
                    versioning: record.versioning(),
                    day_ms: timing.day.as_millis().max(1) as u64,
                };
                if let Err(e) = pass.run().await {
                    tracing::warn!(shard = pass.shard.get(), bucket = record.name, error = %e, "lifecycle pass failed");
                }
            }
        }
    }
}

fn enabled_rules(record: &BucketRecord) -> Vec<LifecycleRule> {
    record
        .lifecycle
        .as_ref()
        .map(|l| l.rules.iter().filter(|r| r.enabled).cloned().collect())
        .unwrap_or_default()
}

/// One pass over one bucket's keys on one shard.
struct Pass<'a> {
    ctx: &'a S3Context,
    shard: ShardIndex,
    stats: &'a ShardStats,
    bucket: &'a str,
    rules: &'a [LifecycleRule],
    versioning: Versioning,
    day_ms: u64,
}

impl Pass<'_> {
    async fn run(&self) -> Result<(), ShardError> {
        self.versions().await?;
        if self.rules.iter().any(|r| r.abort_incomplete_days > 0) {
            self.uploads().await?;
        }
        Ok(())
    }

    /// Reads every version of the bucket on this shard, a page at a time,
    /// and judges each key once all its versions are read.
    async fn versions(&self) -> Result<(), ShardError> {
        let mut after = None;
        let mut key_versions: Vec<VersionSummary> = Vec::new();
        loop {
            let page = self
                .ctx
                .router
                .call(self.shard, |reply| ShardRequest::ListVersions {
                    bucket: self.bucket.to_string(),
                    prefix: String::new(),
                    after: after.clone(),
                    limit: LIST_KEYS_MAX,
                    reply,
                })
                .await?;
            let full = page.len() >= LIST_KEYS_MAX;
            after = page
                .last()
                .map(|v| (v.listed.key.as_bytes().to_vec(), Some(v.position)));
            self.pace(page.len()).await;
            for version in page {
                if key_versions
                    .first()
                    .is_some_and(|v| v.listed.key != version.listed.key)
                {
                    self.judge_key(&std::mem::take(&mut key_versions)).await?;
                }
                key_versions.push(version);
            }
            if !full {
                break;
            }
        }
        if !key_versions.is_empty() {
            self.judge_key(&key_versions).await?;
        }
        Ok(())
    }

    /// Proposes what the rules make due among one key's versions (newest
    /// first, the whole key).
    async fn judge_key(&self, versions: &[VersionSummary]) -> Result<(), ShardError> {
        let now = now_unix_ms();
        let as_manifest = |v: &VersionSummary| ObjectManifest {
            key: v.listed.key.clone(),
            size_bytes: v.listed.size_bytes,
            last_modified_unix_ms: v.listed.last_modified_unix_ms,
            tags: v.listed.tags.clone(),
            ..Default::default()
        };
        for rule in self.rules {
            for (at, version) in versions.iter().enumerate() {
                let manifest = as_manifest(version);
                let action = match (at, version.listed.delete_marker) {
                    (0, false) if current_due(rule, &manifest, now, self.day_ms) => {
                        LifecycleAction::ExpireCurrent
                    }
                    (0, true) if versions.len() == 1 && lone_marker_due(rule, &manifest.key) => {
                        LifecycleAction::RemoveDeleteMarker
                    }
                    (0, _) => continue,
                    (at, _) => {
                        let since = versions[at - 1].listed.last_modified_unix_ms;
                        if !noncurrent_due(rule, &manifest, since, at - 1, now, self.day_ms) {
                            continue;
                        }
                        LifecycleAction::ExpireNoncurrent
                    }
                };
                let version_id = match version.listed.version_id.as_str() {
                    "" => NULL_VERSION_ID.to_string(),
                    id => id.to_string(),
                };
                self.expire(rule, action, &version.listed.key, version_id, String::new())
                    .await?;
            }
        }
        Ok(())
    }

    /// Proposes aborting the bucket's uploads the rules make due.
    async fn uploads(&self) -> Result<(), ShardError> {
        let mut after = None;
        loop {
            let page = self
                .ctx
                .router
                .call(self.shard, |reply| ShardRequest::ListUploads {
                    bucket: self.bucket.to_string(),
                    prefix: String::new(),
                    after: after.clone(),
                    limit: LIST_KEYS_MAX,
                    reply,
                })
                .await?;
            let full = page.len() >= LIST_KEYS_MAX;
            after = page
                .last()
                .map(|u| (u.key.clone(), Some(u.upload_id.clone())));
            self.pace(page.len()).await;
            let now = now_unix_ms();
            for upload in &page {
                if let Some(rule) = self
                    .rules
                    .iter()
                    .find(|r| upload_due(r, upload, now, self.day_ms))
                {
                    let action = LifecycleAction::AbortUpload;
                    self.expire(
                        rule,
                        action,
                        &upload.key,
                        String::new(),
                        upload.upload_id.clone(),
                    )
                    .await?;
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Proposes one action and counts it if it was applied.
    async fn expire(
        &self,
        rule: &LifecycleRule,
        action: LifecycleAction,
        key: &str,
        version_id: String,
        upload_id: String,
    ) -> Result<(), ShardError> {
        let expire = LifecycleExpire {
            bucket: self.bucket.to_string(),
            key: key.to_string(),
            action: action.into(),
            version_id,
            upload_id,
            rule: Some(rule.clone()),
            day_ms: self.day_ms,
            versioning: self.versioning.into(),
        };
        let outcome = self
            .ctx
            .router
            .propose(self.shard, Op::LifecycleExpire(expire))
            .await?;
        if matches!(outcome, ApplyOutcome::NotDue) {
            return Ok(());
        }
        let counter = match action {
            LifecycleAction::ExpireCurrent => &self.stats.lifecycle_expired_current,
            LifecycleAction::ExpireNoncurrent => &self.stats.lifecycle_expired_noncurrent,
            LifecycleAction::RemoveDeleteMarker => &self.stats.lifecycle_markers_removed,
            LifecycleAction::AbortUpload => &self.stats.lifecycle_uploads_aborted,
            LifecycleAction::None => return Ok(()),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts `examined` entries and waits so that a pass reads at most
    /// [`LIFECYCLE_EXAMINED_PER_S`] of them a second.
    async fn pace(&self, examined: usize) {
        self.stats
            .lifecycle_examined
            .fetch_add(examined as u64, Ordering::Relaxed);
        let wait = Duration::from_secs_f64(examined as f64 / LIFECYCLE_EXAMINED_PER_S as f64);
        glommio::timer::sleep(wait).await;
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
