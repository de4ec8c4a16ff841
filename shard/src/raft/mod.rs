//! One openraft group per shard (`docs/architecture.md`, "Metadata and raft"): every metadata change of
//! a shard (bucket records, object manifests) is a raft entry, and is
//! visible only once applied.
//!
//! Shard *i* of every node forms group *i*; the group's members are kept in
//! its raft membership, never assumed to be "all nodes". A single node's
//! group has one member; in a cluster, `network.rs` carries openraft's RPCs
//! to the same shard on the other members.
//!
//! **Core and tasks.** A [`ShardRaft`] lives on its shard's core: it must be
//! started inside that core's glommio executor, and openraft's tasks (raft
//! core, state machine worker, ticker, snapshot builds) all run there via
//! the glommio runtime adapter (`runtime.rs`). It is `!Send`: other cores
//! reach it by hopping to this core.
//!
//! **Waits.** Storage goes to rocksdb through the executor's blocking pool
//! (see `crate::meta`); a proposal waits for a synced log append (~one
//! fdatasync) and the apply. [`ShardRaft::start`] waits, at most
//! [`RaftOptions::leader_wait_max`], for a leader.
//!
//! **Throughput.** openraft 0.9 appends each client write as its own
//! synced batch, one at a time, so a shard commits at most about one entry
//! per fsync. Concurrent proposals therefore share entries
//! (`proposer.rs`): while an entry is written, the commands that arrive
//! queue, and the next entry carries them all as one `batch` op, so one
//! log sync commits as many writes as were waiting. An entry's command is
//! a whole object's manifest (or a part's), never its bytes, except in
//! inline mode, where `store_chunks` entries carry up to three chunks (and
//! go alone).

mod apply;
mod codec;
mod error;
mod expire;
mod handover;
pub(crate) mod leadership;
mod log_store;
pub(crate) mod network;
mod pending;
mod proposer;
pub(crate) mod refs;
#[cfg(test)]
mod refs_tests;
mod runtime;
mod snapshot_file;
mod snapshot_pace;
mod snapshot_stream;
mod state_machine;
mod types;
mod uploads;
mod version_meta;
mod versions;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError};
use openraft::metrics::WaitError;
use openraft::{AsyncRuntime, BasicNode, ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::MetaCommand;

pub(crate) use apply::op_chunks_mut;
pub use error::RaftError;
pub use handover::Handover;
pub use log_store::{LogStats, LogStore, RecoveredLog};
pub use network::{Contacts, NetworkFactory, PeerClient};
pub use proposer::ProposerStats;
pub use runtime::{Elapsed, GlommioRuntime, TaskCancelled};
pub use snapshot_pace::SnapshotPace;
pub use snapshot_stream::SNAPSHOT_FORMAT_VERSION;
pub use state_machine::{ApplyHooks, SnapshotBuilder, StateMachine};
pub use types::{ApplyOutcome, EntryOutcome, NodeId, RaftCommand, TypeConfig};

use crate::ids::ShardIndex;
use crate::limits::HANDOVER_CATCH_UP_MAX;
use crate::limits::HANDOVER_ELECTION_MAX;
use crate::limits::LEADER_WAIT_MAX;
use crate::limits::SHUTDOWN_RELEASE_WAIT_MAX;
use crate::limits::{
    CHUNK_BYTES, GC_COLLECT_PER_ENTRY_MAX, INLINE_CHUNKS_PER_ENTRY, INLINE_ENTRY_BYTES_MAX,
};
use crate::limits::{INSTALL_SNAPSHOT_TIMEOUT, SNAPSHOT_CHUNK_BYTES};
use crate::meta::keys::BUCKET_KEY_SEPARATOR;
use crate::meta::MetaStore;
use crate::peer::PeerAuth;
use shoal_proto::peer::Kind;

/// Interval between a leader's heartbeats. openraft also uses it as the
/// deadline of every append RPC, which includes the follower's synced log
/// write: on a busy disk that takes well over 100 ms, and a deadline that
/// short made followers miss heartbeats and call elections under load.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// Shortest time a follower waits without a heartbeat before it stands
/// for election; a few heartbeats, so one lost heartbeat never triggers it.
///
/// A dead leader costs about [`ELECTION_TIMEOUT_MAX`] (its lease) plus a
/// margin, since followers stand as soon as the lease has run out
/// (`leadership`); openraft's own timers would wait another election
/// timeout on top.
pub const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(1_500);
/// Longest such wait; the spread keeps candidates from splitting votes.
/// openraft also makes it the leader lease voters respect.
pub const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(2_000);
/// Entries applied since the last snapshot that trigger a new one (which
/// lets the log be purged).
pub const SNAPSHOT_LOGS_SINCE_LAST: u64 = 20_000;
/// Entries already in a snapshot that are kept in the log anyway, so a
/// follower slightly behind catches up from the log, not a snapshot.
pub const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 1_000;
/// Most entries in one replication message. Bounds the message's size,
/// hence the memory both ends hold for it: in inline mode an entry carries
/// up to three chunks, so 16 entries are up to ~48 MiB; manifests are far
/// smaller.
pub const REPLICATION_ENTRIES_MAX: u64 = 16;

/// How long after a quorum acknowledged one of its heartbeats a leader
/// answers reads without asking the quorum again. Followers that
/// acknowledged it refuse to vote until an election timeout has passed
/// since they heard it (openraft measures from when the heartbeat was
/// sent), so no other leader can exist yet; half the shortest timeout
/// leaves room for clock drift.
pub const LEADER_LEASE: Duration =
    Duration::from_millis(ELECTION_TIMEOUT_MIN.as_millis() as u64 / 2);

const _: () = assert!(HEARTBEAT_INTERVAL.as_millis() * 3 <= ELECTION_TIMEOUT_MIN.as_millis());
const _: () = assert!(LEADER_LEASE.as_millis() > HEARTBEAT_INTERVAL.as_millis());
const _: () = assert!(ELECTION_TIMEOUT_MIN.as_millis() < ELECTION_TIMEOUT_MAX.as_millis());
const _: () = assert!(LOGS_KEPT_AFTER_SNAPSHOT < SNAPSHOT_LOGS_SINCE_LAST);
const _: () = assert!(
    REPLICATION_ENTRIES_MAX * INLINE_ENTRY_BYTES_MAX as u64
        <= crate::peer::frame::PAYLOAD_BYTES_MAX
);

/// Tunables of one group; [`RaftOptions::default`] uses the constants
/// above.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    /// This node's peer address, stored in the membership
    /// (`BasicNode::addr`); empty until peer RPCs exist.
    pub node_addr: String,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub leader_wait_max: Duration,
    pub snapshot_logs_since_last: u64,
    pub logs_kept_after_snapshot: u64,
    /// Where applying entries has effects beyond the metadata store:
    /// bucket and user changes (the metadata shard's group only), inline
    /// chunks, and refs to chunks this node may lack.
    pub hooks: ApplyHooks,
    /// The secret peer connections prove; `None` on a single node.
    pub secret: Option<PeerAuth>,
    /// Whether an uninitialised group makes itself a single-member group
    /// (the first node of a cluster) or waits to be added by a leader (a
    /// node joining one).
    pub bootstrap: bool,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            node_addr: String::new(),
            heartbeat_interval: HEARTBEAT_INTERVAL,
            election_timeout_min: ELECTION_TIMEOUT_MIN,
            election_timeout_max: ELECTION_TIMEOUT_MAX,
            leader_wait_max: LEADER_WAIT_MAX,
            snapshot_logs_since_last: SNAPSHOT_LOGS_SINCE_LAST,
            logs_kept_after_snapshot: LOGS_KEPT_AFTER_SNAPSHOT,
            hooks: ApplyHooks::default(),
            secret: None,
            bootstrap: true,
        }
    }
}

/// A point-in-time view of a group, for metrics and `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftStats {
    /// `raft_log_appended_bytes`: encoded entry bytes appended since start.
    pub log_appended_bytes: u64,
    /// `raft_entries_appended`: entries appended since start.
    pub entries_appended: u64,
    /// Entries this node proposed (as leader) since start.
    pub entries_proposed: u64,
    /// Commands those entries carried (grouped: see `proposer.rs`).
    pub commands_proposed: u64,
    pub current_term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    /// False once the group has stopped (fatal error or shutdown).
    pub running: bool,
}

/// Held (cloned) by every openraft component that owns a store handle;
/// when the last clone drops, the sender drops and
/// [`ShardRaft::shutdown`]'s receiver completes. That is how shutdown knows
/// the store is free for a reopen.
#[derive(Clone)]
pub(crate) struct ReleaseToken {
    _sender: Rc<oneshot::Sender<()>>,
}

/// One shard's raft group on this node.
pub struct ShardRaft {
    node_id: NodeId,
    shard_index: ShardIndex,
    raft: Raft<TypeConfig>,
    log_stats: Rc<LogStats>,
    snapshot_bytes: state_machine::SnapshotSize,
    released: RefCell<Option<oneshot::Receiver<()>>>,
    /// What peer calls this group makes itself prove (a handover); `None`
    /// on a single node.
    secret: Option<PeerAuth>,
    /// When each member was last heard from.
    contacts: Rc<Contacts>,
    /// Set once a handover began: no new proposals from here on.
    handing_over: Cell<bool>,
    /// Groups concurrent proposals into shared entries.
    proposer: Rc<proposer::Proposer>,
    proposer_stats: Rc<ProposerStats>,
    /// When this node last started an election itself (`leadership`).
    last_stand: Cell<Option<Instant>>,
    /// How many it started.
    stands: Cell<u64>,
}

impl std::fmt::Debug for ShardRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRaft")
            .field("node_id", &self.node_id)
            .field("shard_index", &self.shard_index)
            .finish()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// openraft's config for a group, validated.
fn raft_config(shard_index: ShardIndex, options: &RaftOptions) -> Result<Config, RaftError> {
    let config = Config {
        cluster_name: format!("shoal-shard-{shard_index}"),
        heartbeat_interval: millis(options.heartbeat_interval),
        election_timeout_min: millis(options.election_timeout_min),
        election_timeout_max: millis(options.election_timeout_max),
        install_snapshot_timeout: millis(INSTALL_SNAPSHOT_TIMEOUT),
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES as u64,
        max_payload_entries: REPLICATION_ENTRIES_MAX,
        // openraft wants this above the snapshot interval, so a follower
        // that lags by less than a snapshot's worth catches up from the log.
        replication_lag_threshold: options.snapshot_logs_since_last.saturating_mul(2),
        // Snapshots are paced by the shard (`snapshot_pace.rs`), by log
        // bytes as well as entries.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: options.logs_kept_after_snapshot,
        ..Config::default()
    };
    config.validate().map_err(|source| RaftError::Config {
        shard_index,
        source: Box::new(source),
    })
}

/// Maps openraft's error for a write (a proposal or membership change).
fn write_error(
    e: openraft::error::RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
) -> RaftError {
    match e {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            RaftError::NotLeader {
                leader: f.leader_id,
            }
        }
        openraft::error::RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RaftError::Membership(Box::new(e))
        }
        openraft::error::RaftError::Fatal(fatal) => fatal.into(),
    }
}

/// Checks what the front end must have validated; a violation is a bug.
fn assert_well_formed(command: &MetaCommand) {
    let bucket = match &command.op {
        None => panic!("proposed a MetaCommand without an op"),
        Some(Op::CreateBucket(record)) => &record.name,
        Some(Op::DeleteBucket(name)) => name,
        Some(Op::PutBucketVersioning(put)) => {
            assert!(
                put.versioning() != shoal_proto::meta::Versioning::Unversioned,
                "a bucket's versioning is never set back to unversioned"
            );
            &put.bucket
        }
        Some(Op::PutBucketObjectLock(put)) => &put.bucket,
        Some(Op::PutObjectRetention(put)) => {
            assert!(
                put.version_id
                    .as_deref()
                    .is_none_or(crate::version_id::is_version_id),
                "retention names a well-formed version id"
            );
            &put.bucket
        }
        Some(Op::PutObjectLegalHold(put)) => &put.bucket,
        Some(Op::PutObjectTagging(put)) => &put.bucket,
        Some(Op::PutBucketTagging(put)) => &put.bucket,
        Some(Op::PutBucketLifecycle(put)) => &put.bucket,
        Some(Op::PutBucketCors(put)) => &put.bucket,
        Some(Op::PutBucketPolicy(put)) => &put.bucket,
        Some(Op::PutBucketEncryption(put)) => &put.bucket,
        Some(Op::PutBucketOwnership(put)) => &put.bucket,
        Some(Op::LifecycleExpire(expire)) => {
            assert!(expire.day_ms > 0, "a lifecycle day lasts");
            &expire.bucket
        }
        Some(Op::PutObject(manifest)) => &manifest.bucket,
        Some(Op::DeleteObject(delete)) => &delete.bucket,
        Some(Op::PutObjectIf(put)) => {
            &put.manifest
                .as_ref()
                .expect("put_object_if carries a manifest")
                .bucket
        }
        Some(Op::CreateUpload(upload)) => {
            assert!(crate::meta::is_upload_id(&upload.upload_id));
            &upload.bucket
        }
        Some(Op::PutPart(part)) => &part.bucket,
        Some(Op::CompleteUpload(complete)) => {
            assert!(
                complete.manifest.is_some(),
                "complete_upload carries a manifest"
            );
            &complete
                .upload
                .as_ref()
                .expect("complete_upload names its upload")
                .bucket
        }
        Some(Op::AbortUpload(upload)) => &upload.bucket,
        Some(Op::StoreChunks(batch)) => {
            assert!(!batch.chunks.is_empty() && batch.chunks.len() <= INLINE_CHUNKS_PER_ENTRY);
            for chunk in &batch.chunks {
                assert!(chunk.sha256.len() == 32 && chunk.data.len() <= CHUNK_BYTES);
            }
            assert!(prost::Message::encoded_len(command) <= INLINE_ENTRY_BYTES_MAX);
            return;
        }
        Some(Op::CollectChunks(collect)) => {
            assert!(
                !collect.chunks.is_empty() && collect.chunks.len() <= GC_COLLECT_PER_ENTRY_MAX,
                "a collect entry names 1..={GC_COLLECT_PER_ENTRY_MAX} chunks"
            );
            return;
        }
        Some(Op::Batch(_)) => panic!("a batch is the proposer's to build, never a caller's"),
        Some(Op::PutBucketAcl(put)) => &put.bucket,
        Some(Op::PutObjectAcl(put)) => &put.bucket,
        Some(Op::SetBucketOwner(set)) => {
            assert!(!set.owner_id.is_empty(), "a bucket's new owner has an id");
            &set.bucket
        }
        Some(
            Op::CreateUser(_)
            | Op::DeleteUser(_)
            | Op::DeleteUserWithoutBuckets(_)
            | Op::AddAccessKey(_)
            | Op::SetUserEnabled(_)
            | Op::SetKeyEnabled(_)
            | Op::DeleteAccessKey(_),
        ) => return,
    };
    assert!(
        !bucket.is_empty() && !bucket.as_bytes().contains(&BUCKET_KEY_SEPARATOR),
        "proposed a command with an invalid bucket name {bucket:?}"
    );
}

impl ShardRaft {
    /// Starts this node's member of shard `shard_index`'s group with the
    /// default [`RaftOptions`]. See [`ShardRaft::start_with`].
    pub async fn start(
        node_id: NodeId,
        shard_index: ShardIndex,
        store: MetaStore,
    ) -> Result<Rc<ShardRaft>, RaftError> {
        Self::start_with(node_id, shard_index, store, RaftOptions::default()).await
    }

    /// Starts the group member: loads the vote, log and applied state from
    /// `store`; if the store has never been initialised, initialises a
    /// single-member group `{node_id}`; then waits until a leader is known
    /// (for a single member: until this node leads and has applied its log).
    ///
    /// Must be called inside the shard's glommio executor. Takes a few
    /// milliseconds on a fresh store (a synced vote and append) and on
    /// restart about the time to re-apply unapplied entries.
    pub async fn start_with(
        node_id: NodeId,
        shard_index: ShardIndex,
        store: MetaStore,
        options: RaftOptions,
    ) -> Result<Rc<ShardRaft>, RaftError> {
        let started = Instant::now();
        let config = raft_config(shard_index, &options)?;
        let recovered = log_store::read_recovered_log(&store).await?;
        tracing::info!(
            shard_index = shard_index.get(),
            node_id = node_id.get(),
            vote = recovered.vote.map(|v| v.to_string()),
            last_purged = recovered.last_purged.map(|l| l.to_string()),
            last_log = recovered.last_log.map(|l| l.to_string()),
            "starting shard raft group"
        );

        let (release_tx, release_rx) = oneshot::channel();
        let release = ReleaseToken {
            _sender: Rc::new(release_tx),
        };
        let log_stats = Rc::new(LogStats::default());
        let log_store = LogStore::new(store.clone(), Rc::clone(&log_stats), release.clone());
        // First: an install a crash interrupted is finished before anything
        // reads the state it was replacing.
        let current = store
            .blocking("recover_snapshots", move |db| {
                state_machine::recover_snapshots(db, &snapshot_stream::snapshot_dir(db.path()))
            })
            .await?;
        if let Some(directory) = options.hooks.directory.clone() {
            store
                .blocking("load_directory", move |db| directory.load(db))
                .await?;
        }
        if store
            .blocking("count_chunk_refs", refs::ensure_counted)
            .await?
        {
            tracing::info!(
                shard_index = shard_index.get(),
                "counted the chunk references (first start of this store, or of a version that keeps counts)"
            );
        }
        let state_machine =
            StateMachine::new(node_id, store, release, options.hooks.clone()).with_current(current);
        let snapshot_bytes = state_machine.snapshot_size();
        let contacts = Rc::new(Contacts::default());
        let raft = Raft::new(
            node_id,
            Arc::new(config),
            NetworkFactory::new(
                shard_index,
                node_id,
                options.secret.clone(),
                Rc::clone(&contacts),
            ),
            log_store,
            state_machine,
        )
        .await?;
        let proposer_stats = Rc::new(ProposerStats::default());
        let proposer = proposer::Proposer::new(raft.clone(), Rc::clone(&proposer_stats));
        let shard = ShardRaft {
            node_id,
            shard_index,
            raft,
            log_stats,
            snapshot_bytes,
            released: RefCell::new(Some(release_rx)),
            secret: options.secret.clone(),
            contacts,
            handing_over: Cell::new(false),
            proposer,
            proposer_stats,
            last_stand: Cell::new(None),
            stands: Cell::new(0),
        };
        let initialized = shard.raft.is_initialized().await?;
        if !initialized && !options.bootstrap {
            // A joining node: a leader adds it, and it learns everything
            // from the leader's log or snapshot.
            tracing::info!(
                shard_index = shard_index.get(),
                node_id = node_id.get(),
                "waiting to be added to the cluster"
            );
            return Ok(Rc::new(shard));
        }
        if !initialized {
            shard.initialize_alone(&options.node_addr).await?;
        }
        shard.wait_for_leader(options.leader_wait_max).await?;

        tracing::info!(
            shard_index = shard_index.get(),
            node_id = node_id.get(),
            leader = shard.leader().map(|l| l.get()),
            start_ms = millis(started.elapsed()),
            "shard raft group started"
        );
        Ok(Rc::new(shard))
    }

    /// Makes this node the only member of a group never initialised.
    async fn initialize_alone(&self, node_addr: &str) -> Result<(), RaftError> {
        let (node_id, shard_index) = (self.node_id, self.shard_index);
        let members = BTreeMap::from([(node_id, BasicNode::new(node_addr))]);
        match self.raft.initialize(members).await {
            Ok(()) => tracing::info!(
                shard_index = shard_index.get(),
                node_id = node_id.get(),
                "initialised single-member group"
            ),
            // Someone initialised it meanwhile: what we wanted anyway.
            Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(openraft::error::RaftError::APIError(InitializeError::NotInMembers(e))) => {
                unreachable!("node {node_id} is in the membership it proposed: {e}")
            }
            Err(openraft::error::RaftError::Fatal(fatal)) => return Err(fatal.into()),
        }
        Ok(())
    }

    /// Waits, at most `wait_max`, until a leader is known; when it is this
    /// node, also until everything in its log is applied, so reads right
    /// after start see it.
    async fn wait_for_leader(&self, wait_max: Duration) -> Result<(), RaftError> {
        let node_id = self.node_id;
        let waited = self
            .raft
            .wait(Some(wait_max))
            .metrics(
                |m| match m.current_leader {
                    None => false,
                    Some(leader) if leader != node_id => true,
                    Some(_) => {
                        m.state == ServerState::Leader
                            && m.last_applied.map(|l| l.index) >= m.last_log_index
                    }
                },
                "a leader is known",
            )
            .await;
        match waited {
            Ok(_) => Ok(()),
            Err(WaitError::Timeout(..)) => Err(RaftError::NoLeader {
                shard_index: self.shard_index,
                node_id,
                waited_ms: millis(wait_max),
            }),
            Err(WaitError::ShuttingDown) => Err(openraft::error::Fatal::Stopped.into()),
        }
    }

    /// Commits `command` through the group and returns what applying it
    /// did. Returns once the entry is durable in the log and applied to
    /// this node's store.
    ///
    /// [`RaftError::NotLeader`] means this node cannot propose; the caller
    /// proxies to the leader it names.
    pub async fn propose(&self, command: MetaCommand) -> Result<ApplyOutcome, RaftError> {
        self.propose_indexed(command)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// [`ShardRaft::propose`], also returning the entry's log index.
    /// Refused with [`RaftError::NotLeader`] once this node has begun to
    /// hand the group over (see `handover.rs`).
    pub async fn propose_indexed(
        &self,
        mut command: MetaCommand,
    ) -> Result<(ApplyOutcome, u64), RaftError> {
        assert_well_formed(&command);
        // The leader's clock, once, for everything the entry's apply needs
        // to know of time (apply itself never reads one).
        command.proposed_unix_ms = crate::clock::unix_ms_now();
        if self.handing_over.get() {
            return Err(RaftError::NotLeader { leader: None });
        }
        self.proposer.propose(command).await
    }

    /// Serves one raft RPC from a peer: the bincode request in, the
    /// bincode `Result` out (a raft error travels back to the caller as a
    /// value, not a failed frame).
    pub async fn serve_rpc(&self, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, String> {
        fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
            bincode::deserialize(payload).map_err(|e| format!("undecodable raft RPC: {e}"))
        }
        let encoded = match kind {
            Kind::RaftAppend => {
                bincode::serialize(&self.raft.append_entries(decode(payload)?).await)
            }
            Kind::RaftVote => {
                let request = decode(payload)?;
                match self.refusal_while_leading() {
                    Some(refused) => {
                        bincode::serialize(&Ok::<_, openraft::error::RaftError<NodeId>>(refused))
                    }
                    None => bincode::serialize(&self.raft.vote(request).await),
                }
            }
            Kind::RaftSnapshot => {
                bincode::serialize(&self.raft.install_snapshot(decode(payload)?).await)
            }
            other => return Err(format!("{other:?} is not a raft RPC")),
        };
        encoded.map_err(|e| format!("unencodable raft response: {e}"))
    }

    /// Adds `node_id` (peer address `addr`) to the group: as a learner
    /// until it has caught up, then as a voter. Leader only.
    pub async fn add_member(&self, node_id: NodeId, addr: &str) -> Result<(), RaftError> {
        if self
            .membership()
            .iter()
            .any(|(id, _, voter)| *id == node_id && *voter)
        {
            return Ok(());
        }
        self.raft
            .add_learner(node_id, BasicNode::new(addr), true)
            .await
            .map_err(write_error)?;
        let voters = BTreeSet::from([node_id]);
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(voters), false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Removes `node_id` from the group's voters and learners. Leader only.
    pub async fn remove_member(&self, node_id: NodeId) -> Result<(), RaftError> {
        let ids = BTreeSet::from([node_id]);
        for change in [
            ChangeMembers::RemoveVoters(ids.clone()),
            ChangeMembers::RemoveNodes(ids.clone()),
        ] {
            self.raft
                .change_membership(change, false)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// `(node id, peer address, voter?)` of every member this node knows.
    pub fn membership(&self) -> Vec<(NodeId, String, bool)> {
        // Only the membership (an `Arc`) is taken from the metrics: this
        // runs for every chunk a cluster leader stores.
        let config = Arc::clone(&self.raft.metrics().borrow().membership_config);
        let membership = config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone(), voters.contains(id)))
            .collect()
    }

    /// The peer address of a member, as the membership records it.
    pub fn member_addr(&self, node_id: NodeId) -> Option<String> {
        self.membership()
            .into_iter()
            .find(|(id, _, _)| *id == node_id)
            .map(|(_, addr, _)| addr)
    }

    /// Waits (at most `wait_max`) until this node has applied the entry
    /// at `index`: a follower that forwarded a write then reads its own
    /// write. Returns whether it got there in time.
    pub async fn wait_applied(&self, index: u64, wait_max: Duration) -> bool {
        self.raft
            .wait(Some(wait_max))
            .applied_index_at_least(Some(index), "the forwarded entry is applied")
            .await
            .is_ok()
    }

    /// The log index this node must have applied before a read reflects
    /// every write acknowledged so far (a linearizable read). Leader only:
    /// a follower asks its leader for it (`READ_INDEX`) and waits until it
    /// has applied that far.
    ///
    /// Within [`LEADER_LEASE`] of a quorum's acknowledgement, and once the
    /// leader has applied an entry of its own term (so everything earlier
    /// leaders committed is applied too), that is the applied index, at no
    /// cost. Otherwise openraft confirms leadership with a round of
    /// heartbeats to a quorum.
    pub async fn read_index(&self) -> Result<u64, RaftError> {
        let lease_read = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state != ServerState::Leader {
                return Err(RaftError::NotLeader {
                    leader: m.current_leader,
                });
            }
            let leased = m
                .millis_since_quorum_ack
                .is_some_and(|ms| ms < millis(LEADER_LEASE));
            match m.last_applied {
                Some(applied) if leased && applied.leader_id.term == m.current_term => {
                    Some(applied.index)
                }
                _ => None,
            }
        };
        if let Some(index) = lease_read {
            return Ok(index);
        }
        let (read_log_id, _) = self.raft.get_read_log_id().await.map_err(|e| match e {
            openraft::error::RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
                RaftError::NotLeader {
                    leader: f.leader_id,
                }
            }
            openraft::error::RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => {
                RaftError::NotLeader { leader: None }
            }
            openraft::error::RaftError::Fatal(fatal) => fatal.into(),
        })?;
        Ok(read_log_id.map_or(0, |l| l.index))
    }

    /// Asks the group to snapshot its applied state now (which also lets
    /// it purge the log up to there); returns once the snapshot is built.
    pub async fn snapshot_now(&self, wait_max: Duration) -> Result<Option<u64>, RaftError> {
        let applied = self.raft.metrics().borrow().last_applied;
        self.raft.trigger().snapshot().await?;
        let built = self
            .raft
            .wait(Some(wait_max))
            .metrics(
                |m| m.snapshot.map(|s| s.index) >= applied.map(|l| l.index),
                "snapshot built",
            )
            .await;
        match built {
            Ok(_) => Ok(self.snapshot_bytes()),
            Err(WaitError::Timeout(..)) => Ok(None),
            Err(WaitError::ShuttingDown) => Err(openraft::error::Fatal::Stopped.into()),
        }
    }

    /// Starts a snapshot build if `pace` says one is due (see
    /// `snapshot_pace.rs`); returns at once either way.
    pub async fn snapshot_if_due(&self, pace: &mut SnapshotPace) -> Result<(), RaftError> {
        let (applied, snapshot) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            (
                metrics.last_applied.map(|l| l.index),
                metrics.snapshot.map(|s| s.index),
            )
        };
        let snapshot_bytes = self.snapshot_bytes().unwrap_or(0);
        if pace.due(
            applied,
            snapshot,
            snapshot_bytes,
            self.log_stats.appended_bytes(),
        ) {
            self.raft.trigger().snapshot().await?;
        }
        Ok(())
    }

    /// Size of the latest snapshot built or installed on this node.
    pub fn snapshot_bytes(&self) -> Option<u64> {
        self.snapshot_bytes.get()
    }

    /// Records a frame from `node` (the peer server calls it).
    pub fn heard_from(&self, node: NodeId) {
        self.contacts.heard_from(node);
    }

    /// How long ago `node` was last heard from; `None` if never.
    pub fn last_contact(&self, node: NodeId) -> Option<Duration> {
        self.contacts.since(node)
    }

    /// Whether the group can commit writes as far as this node can tell:
    /// a leader heard from a quorum within the longest election timeout; a
    /// follower heard from its leader within it (so that leader had a
    /// quorum recently). A group of one always can.
    pub fn has_quorum(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let voters = m.membership_config.membership().voter_ids().count();
        match (m.state, m.current_leader) {
            (ServerState::Leader, _) if voters <= 1 => true,
            (ServerState::Leader, _) => m
                .millis_since_quorum_ack
                .is_some_and(|ms| ms < millis(ELECTION_TIMEOUT_MAX)),
            (_, Some(leader)) if leader != self.node_id => self
                .contacts
                .since(leader)
                .is_some_and(|since| since < ELECTION_TIMEOUT_MAX),
            _ => false,
        }
    }

    /// Whether this node currently leads the group.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader this node knows of, if any (itself included).
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn shard_index(&self) -> ShardIndex {
        self.shard_index
    }

    /// Counters and state for metrics.
    pub fn stats(&self) -> RaftStats {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        RaftStats {
            log_appended_bytes: self.log_stats.appended_bytes(),
            entries_appended: self.log_stats.appended_entries(),
            entries_proposed: self.proposer_stats.entries(),
            commands_proposed: self.proposer_stats.commands(),
            current_term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            leader: m.current_leader,
            is_leader: m.state == ServerState::Leader,
            running: m.running_state.is_ok(),
        }
    }

    /// Stops the group and waits (at most [`SHUTDOWN_RELEASE_WAIT_MAX`])
    /// until openraft's tasks have dropped their store handles, so that
    /// once the caller drops its own handles the store can be reopened.
    /// Idempotent.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(shard_index = self.shard_index.get(), error = %e, "raft core ended abnormally");
        }
        let released = self.released.borrow_mut().take();
        if let Some(released) = released {
            let waited = GlommioRuntime::timeout(SHUTDOWN_RELEASE_WAIT_MAX, released).await;
            if waited.is_err() {
                tracing::warn!(
                    shard_index = self.shard_index.get(),
                    waited_ms = millis(SHUTDOWN_RELEASE_WAIT_MAX),
                    "raft tasks still hold the metadata store after shutdown"
                );
            }
        }
        tracing::info!(
            shard_index = self.shard_index.get(),
            "shard raft group stopped"
        );
    }
}
