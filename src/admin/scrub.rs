//! The scrub over the admin endpoint: how far each shard's scrub has got
//! and what it found, and asking for a pass now.
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /admin/scrub` | per shard: pace, whether a pass is running and how far it is, passes finished, bytes checked, damaged chunks found, repaired and not, and the findings kept |
//! | `POST /admin/scrub` | every shard starts a pass as soon as its current one (if any) ends; answers as `GET` |
//!
//! Reads and sets only the shards' shared stats, so it answers at once
//! from core 0.

use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

use shoal_shard::shard::ShardStats;

use super::Answer;
use crate::metrics::Registry;

pub(super) fn serve(registry: &Registry, method: &Method) -> Answer {
    match *method {
        Method::GET => Ok((StatusCode::OK, report(registry))),
        Method::POST => {
            let off = registry
                .shards
                .iter()
                .all(|stats| stats.scrub.rate_bytes_per_s.load(Ordering::Relaxed) == 0);
            if off {
                return Err((
                    StatusCode::CONFLICT,
                    "the scrub is off on this node (--scrub-rate 0)".into(),
                ));
            }
            for stats in registry.shards.iter() {
                stats.scrub.request_pass();
            }
            Ok((StatusCode::OK, report(registry)))
        }
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or POST /admin/scrub".into(),
        )),
    }
}

fn report(registry: &Registry) -> Value {
    let shards: Vec<Value> = registry
        .shards
        .iter()
        .enumerate()
        .map(|(shard, stats)| shard_report(shard, stats))
        .collect();
    json!({ "shards": shards })
}

fn shard_report(shard: usize, stats: &ShardStats) -> Value {
    let scrub = &stats.scrub;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    json!({
        "shard": shard,
        "rate_bytes_per_s": load(&scrub.rate_bytes_per_s),
        "running": scrub.running.load(Ordering::Relaxed),
        "pass_checked_bytes": load(&scrub.pass_checked_bytes),
        "pass_live_bytes": load(&scrub.pass_live_bytes),
        "passes": load(&scrub.passes),
        "last_pass_end_unix_ms": load(&scrub.last_pass_end_unix_ms),
        "checked_bytes": load(&scrub.checked_bytes),
        "found": load(&scrub.found),
        "repaired": load(&scrub.repaired),
        "unrepaired": load(&scrub.unrepaired),
        "findings": scrub.findings(),
    })
}
