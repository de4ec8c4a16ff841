//! Who leads a group: standing for election as soon as a silent leader's
//! lease has run out, and spreading leaders evenly over the members.
//!
//! **Fast failover.** openraft 0.9 lets a follower that heard a leader
//! stand only after the leader's lease (the longest election timeout) plus
//! one more election timeout, and its voters refuse any candidate until
//! that lease has run out since they last heard the leader. So its own
//! timers lose 2–2.5 election timeouts to a dead leader, where the lease
//! alone is what safety needs. Each follower watches how long the leader
//! has been silent (any frame from it counts, see `Contacts`) and stands
//! once the lease plus a margin has passed ([`stand_after`]): the voters'
//! leases have run out by then, so the vote can be granted. Followers
//! stand in rank order, a stagger apart, so two of them do not split the
//! vote; the next one stands if the first could not win (its log was
//! behind, or it is gone too).
//!
//! **A live leader stays.** openraft's leader grants its vote to any
//! candidate of a later term whose log is long enough (its own lease
//! counts from its election, long past), so a follower that cannot hear
//! the leader (a one-way partition, a stalled link) would unseat a leader
//! the rest of the group hears well, once its timers run out. So a leader
//! that a quorum acknowledged within its lease refuses votes
//! ([`ShardRaft::refusal_while_leading`]), except while it hands the group
//! over on purpose. The other followers refuse too: their lease holds.
//!
//! **Balance.** Shard *i*'s preferred leader is voter *i mod n* in node-id
//! order ([`preferred_leader`]), so the groups of a node's shards are led
//! by different members. A leader that is not the preferred one hands the
//! group over once the preferred member is live and holds every entry
//! (after it returns from a restart, say). Only where the two votes of a
//! handover are a quorum (three voters or fewer): with more, the other
//! voters refuse until their lease runs out, and a move would cost the
//! group a lease of refused writes.

use std::time::{Duration, Instant};

use openraft::raft::VoteResponse;
use openraft::ServerState;

use super::handover::matched_index;
use super::{NodeId, ShardRaft, ELECTION_TIMEOUT_MAX, ELECTION_TIMEOUT_MIN};

/// How long after the lease has run out the first follower stands: covers
/// the voters hearing the leader's last heartbeat a little later than it.
pub const STAND_MARGIN: Duration = Duration::from_millis(200);

/// How much later each follower of the next rank stands.
pub const STAND_STAGGER: Duration = Duration::from_millis(500);

/// The least time between two elections this node starts itself.
const STAND_AGAIN_MIN: Duration = ELECTION_TIMEOUT_MAX;

/// Voters at most for which a handover is a quorum at once.
const BALANCE_VOTERS_MAX: usize = 3;

/// How long a silent leader waits before the follower of `rank` (0 first)
/// stands for election.
pub fn stand_after(rank: usize) -> Duration {
    let rank = u32::try_from(rank).unwrap_or(u32::MAX);
    ELECTION_TIMEOUT_MAX + STAND_MARGIN + STAND_STAGGER.saturating_mul(rank)
}

/// The member that should lead shard `shard`'s group: voter `shard mod n`
/// in node-id order.
pub fn preferred_leader(shard: u16, voters: &[NodeId]) -> Option<NodeId> {
    let mut sorted = voters.to_vec();
    sorted.sort_unstable();
    sorted
        .get(usize::from(shard) % sorted.len().max(1))
        .copied()
}

/// This node's place among the voters other than `leader`, in node-id
/// order; `None` if it is not one of them.
fn stand_rank(me: NodeId, leader: NodeId, voters: &[NodeId]) -> Option<usize> {
    let mut others: Vec<NodeId> = voters.iter().copied().filter(|v| *v != leader).collect();
    others.sort_unstable();
    others.iter().position(|v| *v == me)
}

impl ShardRaft {
    /// Starts an election if this node follows a leader that has been
    /// silent past its lease for this node's rank (see the module docs).
    /// Returns the silent leader and how long it was silent when it did.
    pub async fn stand_if_leader_silent(&self) -> Option<(NodeId, Duration)> {
        let (leader, rank) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state != ServerState::Follower {
                return None;
            }
            let leader = m.current_leader.filter(|l| *l != self.node_id)?;
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            (leader, stand_rank(self.node_id, leader, &voters)?)
        };
        let silent = self.contacts.since(leader)?;
        let stood_lately = self
            .last_stand
            .get()
            .is_some_and(|at| at.elapsed() < STAND_AGAIN_MIN);
        if silent < stand_after(rank) || stood_lately {
            return None;
        }
        self.last_stand.set(Some(Instant::now()));
        self.stands.set(self.stands.get() + 1);
        match self.raft.trigger().elect().await {
            Ok(()) => Some((leader, silent)),
            Err(e) => {
                tracing::warn!(shard = self.shard_index.get(), error = %e, "could not stand for election");
                None
            }
        }
    }

    /// Elections this node started because its leader went silent.
    pub fn stands(&self) -> u64 {
        self.stands.get()
    }

    /// The answer to a vote request while this node leads with a quorum
    /// behind it and is not handing the group over: refused, with its own
    /// vote (lower than the candidate's, so the candidate just carries on).
    /// `None` when the request should go to openraft.
    pub(super) fn refusal_while_leading(&self) -> Option<VoteResponse<NodeId>> {
        if self.handing_over.get() || !self.is_leader() || !self.has_quorum() {
            return None;
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.membership_config.membership().voter_ids().count() <= 1 {
            return None;
        }
        Some(VoteResponse {
            vote: m.vote,
            vote_granted: false,
            last_log_id: None,
        })
    }

    /// The member this node, leading, should hand the group to: the
    /// preferred leader, when it is another voter, live, and holds every
    /// entry, in a group where a handover is a quorum at once.
    pub fn balance_target(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state != ServerState::Leader || self.handing_over.get() {
            return None;
        }
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if voters.len() > BALANCE_VOTERS_MAX {
            return None;
        }
        let preferred = preferred_leader(self.shard_index.get(), &voters)?;
        let live = self
            .contacts
            .since(preferred)
            .is_some_and(|since| since < ELECTION_TIMEOUT_MIN);
        let caught_up = matched_index(&m, preferred) >= m.last_log_index;
        (preferred != self.node_id && live && caught_up).then_some(preferred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|id| NodeId(*id)).collect()
    }

    #[test]
    fn followers_stand_in_rank_order_after_the_lease() {
        assert_eq!(stand_after(0), ELECTION_TIMEOUT_MAX + STAND_MARGIN);
        assert_eq!(stand_after(1) - stand_after(0), STAND_STAGGER);
        // Leader 2 of voters 1, 2, 3: node 1 stands first, then node 3.
        let voters = ids(&[3, 1, 2]);
        assert_eq!(stand_rank(NodeId(1), NodeId(2), &voters), Some(0));
        assert_eq!(stand_rank(NodeId(3), NodeId(2), &voters), Some(1));
        assert_eq!(stand_rank(NodeId(2), NodeId(2), &voters), None);
        assert_eq!(
            stand_rank(NodeId(9), NodeId(2), &voters),
            None,
            "a learner never stands"
        );
    }

    #[test]
    fn shards_prefer_different_leaders_in_turn() {
        let voters = ids(&[30, 10, 20]);
        let preferred: Vec<_> = (0..6).map(|s| preferred_leader(s, &voters)).collect();
        assert_eq!(
            preferred,
            ids(&[10, 20, 30, 10, 20, 30])
                .into_iter()
                .map(Some)
                .collect::<Vec<_>>()
        );
        assert_eq!(preferred_leader(0, &[]), None);
    }
}
