//! Handing a group's leadership to another member before this node stops,
//! so a planned stop does not cost the group an election timeout of
//! refused writes.
//!
//! openraft 0.9 has no leadership transfer, but its rules allow one: a
//! follower refuses to vote while it heard a leader within its lease (the
//! longest election timeout), yet a leader grants its vote to a candidate
//! of a later term whose log is at least as long as its own (a leader's
//! lease is counted from its own election, long past). So the leader stops
//! taking proposals (a forwarded write gets "not leader" and its client
//! retries), lets the ones in flight finish, waits until the chosen member
//! holds every entry it has, asks it to stand ([`Kind::StandForLeader`]),
//! and votes for it. Without the pause, a write appended between the
//! catch-up and the vote makes the leader's log the longer one, and it
//! refuses. With three voters the vote is a quorum at once; with more, the
//! others keep refusing until their lease lapses, and the group elects as
//! it would without a handover.
//!
//! Every wait is bounded ([`HANDOVER_CATCH_UP_MAX`],
//! [`HANDOVER_ELECTION_MAX`]); a failed handover is reported, never
//! retried: the node is stopping either way.

use std::time::Instant;

use openraft::{BasicNode, RaftMetrics, ServerState};
use shoal_proto::peer::{Kind, PeerFrame};

use super::{NodeId, RaftError, ShardRaft, HANDOVER_CATCH_UP_MAX, HANDOVER_ELECTION_MAX};
use crate::limits::PROPOSALS_SETTLE_POLL;
use crate::peer::client::{connect, request};

/// How a handover went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// This node did not lead the group: nothing to hand over.
    NotLeader,
    /// No other voter to hand it to (a single-member group).
    NoOtherVoter,
    /// `to` leads the group now.
    HandedTo(NodeId),
    /// It did not happen; the group elects a leader on its own.
    Failed(String),
}

/// The last log index the leader knows `member` holds (`None`: none yet,
/// or this node does not lead).
pub(super) fn matched_index(m: &RaftMetrics<NodeId, BasicNode>, member: NodeId) -> Option<u64> {
    m.replication
        .as_ref()
        .and_then(|r| r.get(&member).cloned().flatten())
        .map(|log_id| log_id.index)
}

impl ShardRaft {
    /// Starts an election on this node now (asked by a leader that stops).
    pub async fn stand_for_leader(&self) -> Result<(), RaftError> {
        self.raft.trigger().elect().await?;
        Ok(())
    }

    /// Hands leadership to the voter that holds the most of the log. From
    /// the call on, this node proposes nothing more (it is stopping).
    pub async fn hand_over(&self) -> Handover {
        self.handing_over.set(true);
        self.transfer(None).await
    }

    /// Hands leadership to `target` (balancing); this node takes proposals
    /// again once the handover is over, however it went (as a follower it
    /// forwards them).
    pub async fn hand_over_to(&self, target: NodeId) -> Handover {
        self.handing_over.set(true);
        let outcome = self.transfer(Some(target)).await;
        self.handing_over.set(false);
        outcome
    }

    /// The handover itself, to `target` or else the voter holding the most
    /// of the log; proposals are refused meanwhile.
    async fn transfer(&self, target: Option<NodeId>) -> Handover {
        let settled_by = Instant::now() + HANDOVER_CATCH_UP_MAX;
        while self.proposer.pending() > 0 && Instant::now() < settled_by {
            glommio::timer::sleep(PROPOSALS_SETTLE_POLL).await;
        }
        let (target, last_log_index) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state != ServerState::Leader {
                return Handover::NotLeader;
            }
            let mut voters = m
                .membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.node_id);
            let target = match target {
                Some(target) => voters.find(|id| *id == target),
                None => voters.max_by_key(|id| matched_index(&m, *id)),
            };
            match target {
                Some(target) => (target, m.last_log_index),
                None => return Handover::NoOtherVoter,
            }
        };
        let (Some(secret), Some(addr)) = (&self.secret, self.member_addr(target)) else {
            return Handover::Failed(format!("no peer address for node {target}"));
        };
        let caught_up = self
            .raft
            .wait(Some(HANDOVER_CATCH_UP_MAX))
            .metrics(
                |m| matched_index(m, target) >= last_log_index,
                "the new leader holds every entry",
            )
            .await;
        if caught_up.is_err() {
            return Handover::Failed(format!(
                "node {target} did not catch up within {} ms",
                HANDOVER_CATCH_UP_MAX.as_millis()
            ));
        }
        let asked = async {
            let mut stream = connect(&addr, self.shard_index, secret, self.node_id).await?;
            let header = PeerFrame {
                kind: Kind::StandForLeader as i32,
                ..Default::default()
            };
            request(&mut stream, 1, header, &[]).await
        };
        // A member that accepts the connection but never answers (stopped,
        // or its packets dropped) must not hold this node's stop up.
        let answered =
            glommio::timer::timeout(HANDOVER_ELECTION_MAX, async { Ok(asked.await) }).await;
        match answered {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Handover::Failed(format!("asking node {target} to stand: {e}")),
            Err(_) => {
                return Handover::Failed(format!(
                    "node {target} did not answer within {} ms",
                    HANDOVER_ELECTION_MAX.as_millis()
                ))
            }
        }
        let elected = self
            .raft
            .wait(Some(HANDOVER_ELECTION_MAX))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != self.node_id),
                "another member leads",
            )
            .await;
        match elected {
            Ok(m) => Handover::HandedTo(m.current_leader.unwrap_or(target)),
            Err(_) => Handover::Failed(format!(
                "node {target} was not elected within {} ms",
                HANDOVER_ELECTION_MAX.as_millis()
            )),
        }
    }
}
