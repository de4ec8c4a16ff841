//! The cluster over the admin endpoint: every shard group's members and
//! leader as this node sees them, and adding or removing a node.
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /admin/cluster` | per shard: leader, members (id, peer address, voter, capabilities) and write mode (`offload` or `inline`) |
//! | `POST /admin/cluster/snapshot` | snapshot every shard group on this node now; answers each snapshot's size |
//! | `POST /admin/cluster/members?node_id=N&peer_addr=H:P` | add node N to every shard group this node leads |
//! | `DELETE /admin/cluster/members/N` | remove node N from every shard group this node leads |
//!
//! Membership changes are made by each group's leader; the answer lists,
//! per shard, whether this node changed it or which node leads it.

use http::{Method, Response, StatusCode};
use serde_json::{json, Value};
use shoal_shard::error::ShardError;
use shoal_shard::ops::ShardRequest;
use shoal_shard::raft::RaftError;
use shoal_shard::replication::advertises_offload;

use super::text;
use crate::limits::MEMBER_LIVE_WINDOW_MS;
use crate::s3::{Body, S3Context};
use shoal_shard::ids::NodeId;

const _: () =
    assert!(MEMBER_LIVE_WINDOW_MS as u128 <= shoal_shard::raft::ELECTION_TIMEOUT_MIN.as_millis());

/// Whether a member is live: this node is; one heard from recently is.
/// Of one not heard from lately, only a leader (which talks to every
/// member) or a follower about its leader (which it hears every heartbeat)
/// can say it is down; otherwise it is unknown (`None`): followers talk to
/// the leader only.
fn live(is_me: bool, i_lead: bool, is_leader: bool, last_contact_ms: Option<u64>) -> Option<bool> {
    match last_contact_ms {
        _ if is_me => Some(true),
        Some(ms) if ms < MEMBER_LIVE_WINDOW_MS => Some(true),
        _ if i_lead || is_leader => Some(false),
        _ => None,
    }
}

pub async fn serve(ctx: &S3Context, method: &Method, path: &str, query: &str) -> Response<Body> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let param = |name: &str| super::param(query, name);
    let result = match (method, segments.as_slice()) {
        (&Method::GET, ["admin", "cluster"]) => Ok(overview(ctx).await),
        (&Method::POST, ["admin", "cluster", "snapshot"]) => Ok(snapshot(ctx).await),
        (&Method::POST, ["admin", "cluster", "members"]) => {
            match (
                param("node_id").and_then(|n| n.parse::<u64>().ok().map(NodeId)),
                param("peer_addr"),
            ) {
                (Some(node_id), Some(peer_addr)) => Ok(change(ctx, node_id, Some(peer_addr)).await),
                _ => Err("give node_id=<u64> and peer_addr=<host:port>"),
            }
        }
        (&Method::DELETE, ["admin", "cluster", "members", id]) => {
            match id.parse::<u64>().map(NodeId) {
                Ok(node_id) => Ok(change(ctx, node_id, None).await),
                Err(_) => Err("the node id is a number"),
            }
        }
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "application/json",
                json!({"error": "no such admin resource"}).to_string() + "\n",
            )
        }
    };
    match result {
        Ok((status, body)) => text(status, "application/json", body.to_string() + "\n"),
        Err(message) => text(
            StatusCode::BAD_REQUEST,
            "application/json",
            json!({ "error": message }).to_string() + "\n",
        ),
    }
}

async fn overview(ctx: &S3Context) -> (StatusCode, Value) {
    let mut shards = Vec::new();
    for shard in ctx.router.shards() {
        match ctx
            .router
            .call(shard, |reply| ShardRequest::ClusterView { reply })
            .await
        {
            Ok(view) => {
                let advertised = |id: &NodeId| {
                    view.capabilities
                        .iter()
                        .find(|(member, _)| member == id)
                        .and_then(|(_, capabilities)| capabilities.clone())
                };
                // What a leader would do now: offload only when every
                // member advertises it (as far as this node has heard).
                let offload = view
                    .members
                    .iter()
                    .all(|(id, _, _)| advertised(id).is_some_and(|c| advertises_offload(&c)));
                let last_contact_ms = |id: &NodeId| {
                    view.last_contact_ms
                        .iter()
                        .find(|(member, _)| member == id)
                        .and_then(|(_, ms)| *ms)
                };
                let me = ctx.config.node_id;
                shards.push(json!({
                    "shard": view.shard,
                    "leader": view.leader,
                    "quorum": view.has_quorum,
                    "mode": if offload { "offload" } else { "inline" },
                    "members": view.members.iter().map(|(id, addr, voter)| json!({
                        "node_id": id, "peer_addr": addr, "voter": voter,
                        "capabilities": advertised(id),
                        "last_contact_ms": last_contact_ms(id),
                        "live": live(*id == me, view.leader == Some(me), view.leader == Some(*id), last_contact_ms(id)),
                    })).collect::<Vec<_>>(),
                }))
            }
            Err(e) => shards.push(json!({ "shard": shard, "error": e.to_string() })),
        }
    }
    (
        StatusCode::OK,
        json!({ "node_id": ctx.config.node_id, "shards": shards }),
    )
}

/// Snapshots every shard group on this node.
async fn snapshot(ctx: &S3Context) -> (StatusCode, Value) {
    let mut shards = Vec::new();
    let mut all_built = true;
    for shard in ctx.router.shards() {
        let built = ctx
            .router
            .call(shard, |reply| ShardRequest::Snapshot { reply })
            .await;
        shards.push(match built {
            Ok(Some(bytes)) => json!({ "shard": shard, "snapshot_bytes": bytes }),
            Ok(None) => {
                all_built = false;
                json!({ "shard": shard, "error": "not built in time" })
            }
            Err(e) => {
                all_built = false;
                json!({ "shard": shard, "error": e.to_string() })
            }
        });
    }
    let status = if all_built {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({ "node_id": ctx.config.node_id, "shards": shards }),
    )
}

/// Adds (with an address) or removes `node_id` in every shard group.
async fn change(
    ctx: &S3Context,
    node_id: NodeId,
    peer_addr: Option<String>,
) -> (StatusCode, Value) {
    let mut results = Vec::new();
    let mut all_done = true;
    for shard in ctx.router.shards() {
        let outcome = match &peer_addr {
            Some(addr) => {
                let peer_addr = addr.clone();
                ctx.router
                    .call(shard, |reply| ShardRequest::AddMember {
                        node_id,
                        peer_addr,
                        reply,
                    })
                    .await
            }
            None => {
                ctx.router
                    .call(shard, |reply| ShardRequest::RemoveMember { node_id, reply })
                    .await
            }
        };
        let entry = match outcome {
            Ok(()) => json!({ "shard": shard, "done": true }),
            Err(ShardError::Raft(RaftError::NotLeader { leader })) => {
                all_done = false;
                json!({ "shard": shard, "done": false, "leader": leader })
            }
            Err(e) => {
                all_done = false;
                json!({ "shard": shard, "done": false, "error": e.to_string() })
            }
        };
        results.push(entry);
    }
    let status = if all_done {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (status, json!({ "node_id": node_id, "shards": results }))
}
