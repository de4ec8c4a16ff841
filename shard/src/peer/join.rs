//! Joining a cluster: ask a member to add this node to shard *i*'s group,
//! following "not leader" answers to the group's leader.

use std::time::{Duration, Instant};

use shoal_proto::peer::{ClusterOverview, JoinRequest, Kind, PeerFrame};

use super::server::NOT_LEADER;
use super::{PeerAuth, PeerError};
use crate::ids::{NodeId, ShardIndex};
use crate::limits::JOIN_RETRY_PAUSE;
use crate::limits::JOIN_WARN_INTERVAL;
use crate::peer::client::{connect, request};

/// What this node tells the cluster about itself.
#[derive(Clone, Debug)]
pub struct Joiner {
    pub node_id: NodeId,
    /// This node's peer address (its shard 0 port).
    pub peer_addr: String,
    pub shard_count: u16,
    pub secret: PeerAuth,
}

/// Asks `contact` (any member's peer address) to add this node to shard
/// `shard`'s group, following redirects to the leader, until it succeeds
/// or `wait_max` passes. Returns once the leader has added the node as a
/// voter (it waits for the node to catch up first).
pub async fn join(
    joiner: &Joiner,
    contact: &str,
    shard: ShardIndex,
    wait_max: Duration,
) -> Result<(), PeerError> {
    let started = Instant::now();
    let deadline = started + wait_max;
    let mut warned_at = started;
    let mut target = contact.to_string();
    loop {
        let error = match attempt(joiner, &target, shard).await {
            Ok(()) => return Ok(()),
            Err(PeerError::Remote(message)) if message.starts_with(NOT_LEADER) => {
                let leader = message[NOT_LEADER.len()..].trim();
                target = if leader.is_empty() {
                    contact.to_string()
                } else {
                    leader.to_string()
                };
                PeerError::Remote(message)
            }
            // A refused secret or certificate, or a shard-count mismatch, will
            // not change.
            Err(e @ (PeerError::BadSecret | PeerError::WrongShard { .. } | PeerError::Tls(_))) => {
                return Err(e)
            }
            Err(PeerError::Remote(message)) if message.contains("shards") => {
                return Err(PeerError::Remote(message))
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(error);
        }
        if warned_at.elapsed() >= JOIN_WARN_INTERVAL {
            warned_at = Instant::now();
            tracing::warn!(
                shard = shard.get(),
                contact = %target,
                error = %error,
                waited_s = started.elapsed().as_secs(),
                gives_up_after_s = wait_max.as_secs(),
                "cannot join the cluster yet; still trying"
            );
        } else {
            tracing::debug!(shard = shard.get(), target = %target, error = %error, "join attempt failed; retrying");
        }
        glommio::timer::sleep(JOIN_RETRY_PAUSE).await;
    }
}

async fn attempt(joiner: &Joiner, target: &str, shard: ShardIndex) -> Result<(), PeerError> {
    let mut stream = connect(target, shard, &joiner.secret, joiner.node_id).await?;
    let header = PeerFrame {
        kind: Kind::Join as i32,
        join: Some(JoinRequest {
            node_id: joiner.node_id.get(),
            peer_addr: joiner.peer_addr.clone(),
            shard_count: u32::from(joiner.shard_count),
        }),
        ..Default::default()
    };
    request(&mut stream, 1, header, &[]).await?;
    Ok(())
}

/// Shard `shard`'s view of the cluster, from the member at `target`.
pub async fn overview(
    target: &str,
    shard: ShardIndex,
    secret: &PeerAuth,
    node_id: NodeId,
) -> Result<ClusterOverview, PeerError> {
    let mut stream = connect(target, shard, secret, node_id).await?;
    let header = PeerFrame {
        kind: Kind::ClusterOverview as i32,
        ..Default::default()
    };
    let (response, _) = request(&mut stream, 1, header, &[]).await?;
    response
        .overview
        .ok_or_else(|| PeerError::Malformed("overview answer without an overview".into()))
}
