//! Raft group tests on a real metadata store, each inside a glommio
//! executor: propose and read back, restart, log purge and snapshot
//! files found again, snapshot build → install, apply edge cases, entry size.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader, RaftSnapshotBuilder};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{DeleteObject, MetaCommand};

use super::types::{Entry, LogId};
use super::*;
use crate::chunk_hash::ChunkHash;
use crate::meta::keys::Cf;
use crate::meta::tests::{bucket, manifest, run_local};
use crate::meta::{cf, MetaError, MetaStore};

const NODE_ID: NodeId = NodeId(7);
const SHARD_INDEX: ShardIndex = ShardIndex(3);
/// Bound on how long a test waits for a raft condition.
const WAIT_MAX: Duration = Duration::from_secs(10);

fn create_bucket(name: &str) -> MetaCommand {
    MetaCommand {
        op: Some(Op::CreateBucket(bucket(name))),
        ..Default::default()
    }
}

fn delete_bucket(name: &str) -> MetaCommand {
    MetaCommand {
        op: Some(Op::DeleteBucket(name.to_owned())),
        ..Default::default()
    }
}

fn put_object(bucket: &str, key: &str, chunk_count: u32) -> MetaCommand {
    MetaCommand {
        op: Some(Op::PutObject(manifest(bucket, key, chunk_count))),
        ..Default::default()
    }
}

fn delete_object(bucket: &str, key: &str) -> MetaCommand {
    MetaCommand {
        op: Some(Op::DeleteObject(DeleteObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A state machine of node 1 without hooks over a new store in `dir`;
/// the receiver must outlive it (it completes once the machine lets go).
fn plain_state_machine(dir: &Path) -> (MetaStore, StateMachine, oneshot::Receiver<()>) {
    let store = MetaStore::open(dir).unwrap();
    let (token, released) = release_token();
    let sm = StateMachine::new(NodeId(1), store.clone(), token, ApplyHooks::default());
    (store, sm, released)
}

fn release_token() -> (ReleaseToken, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (
        ReleaseToken {
            _sender: Rc::new(tx),
        },
        rx,
    )
}

fn normal_entry(index: u64, command: &MetaCommand) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, NODE_ID), index),
        payload: EntryPayload::Normal(RaftCommand::encode(command)),
    }
}

/// Stops the group and checks that it let go of the store, so the caller
/// can drop its own handle and reopen the directory.
async fn stop(shard: Rc<ShardRaft>, store: &MetaStore) {
    shard.shutdown().await;
    drop(shard);
    assert_eq!(
        store.handle_count(),
        1,
        "raft still holds the metadata store"
    );
}

async fn open_and_start(path: &Path, options: RaftOptions) -> (MetaStore, Rc<ShardRaft>) {
    let store = MetaStore::open(path).unwrap();
    let shard = ShardRaft::start_with(NODE_ID, SHARD_INDEX, store.clone(), options)
        .await
        .unwrap();
    (store, shard)
}

#[test]
fn propose_then_read_back() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let shard = ShardRaft::start(NODE_ID, SHARD_INDEX, store.clone())
            .await
            .unwrap();
        assert!(shard.is_leader());
        assert_eq!(shard.leader(), Some(NODE_ID));

        assert_eq!(
            shard.propose(create_bucket("bk")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            shard.propose(create_bucket("bk")).await.unwrap(),
            ApplyOutcome::BucketAlreadyExists
        );
        assert_eq!(store.get_bucket("bk").await.unwrap(), Some(bucket("bk")));

        for key in ["b", "a", "c"] {
            let outcome = shard.propose(put_object("bk", key, 2)).await.unwrap();
            assert_eq!(outcome, ApplyOutcome::Applied);
        }
        // Overwrite keeps one object with the new manifest.
        shard.propose(put_object("bk", "a", 5)).await.unwrap();
        let a = store.get_object("bk", "a").await.unwrap().unwrap();
        assert_eq!(a.chunks.len(), 5);
        let listed = store.list_objects("bk", "", None, 10).await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);

        assert_eq!(
            shard.propose(delete_object("bk", "b")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(store.get_object("bk", "b").await.unwrap(), None);
        // Deleting a missing object is not an error.
        assert_eq!(
            shard.propose(delete_object("bk", "b")).await.unwrap(),
            ApplyOutcome::Applied
        );

        assert_eq!(
            shard.propose(delete_bucket("bk")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            shard.propose(delete_bucket("bk")).await.unwrap(),
            ApplyOutcome::NoSuchBucket
        );
        assert_eq!(store.list_buckets().await.unwrap(), vec![]);

        let stats = shard.stats();
        assert!(stats.is_leader && stats.running);
        assert_eq!(stats.applied_index, stats.last_log_index);
        // Membership + leader blank + 10 proposals.
        assert_eq!(stats.entries_appended, 12);
        assert!(stats.log_appended_bytes > 0);

        stop(shard, &store).await;
    });
}

#[test]
fn restart_keeps_vote_log_and_applied_state() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("bk")).await.unwrap();
        shard.propose(put_object("bk", "k1", 1)).await.unwrap();
        let before = shard.stats();
        let recovered_before = log_store::read_recovered_log(&store).await.unwrap();
        stop(shard, &store).await;
        drop(store);

        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        let recovered = log_store::read_recovered_log(&store).await.unwrap();
        assert_eq!(recovered, recovered_before);
        let after = shard.stats();
        assert!(after.is_leader);
        // Leadership resumed from the saved vote: same term, no new
        // election, no second initialisation (the first entry is still the
        // original membership entry at index 0).
        assert_eq!(after.current_term, before.current_term);
        assert_eq!(after.last_log_index, before.last_log_index);
        assert_eq!(after.applied_index, before.applied_index);
        assert_eq!(after.entries_appended, 0);
        let first = LogStore::new(store.clone(), Rc::default(), release_token().0)
            .try_get_log_entries(0..1)
            .await
            .unwrap();
        assert!(matches!(first[0].payload, EntryPayload::Membership(_)));

        assert_eq!(store.get_bucket("bk").await.unwrap(), Some(bucket("bk")));
        assert!(store.get_object("bk", "k1").await.unwrap().is_some());
        assert_eq!(
            shard.propose(create_bucket("bk")).await.unwrap(),
            ApplyOutcome::BucketAlreadyExists
        );
        shard.propose(put_object("bk", "k2", 1)).await.unwrap();
        // Only this run's two proposals were appended.
        assert_eq!(shard.stats().entries_appended, 2);
        stop(shard, &store).await;
    });
}

#[test]
fn restart_reapplies_a_lost_applied_state_from_the_log() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("bk")).await.unwrap();
        for i in 0..5 {
            shard
                .propose(put_object("bk", &format!("k{i}"), 1))
                .await
                .unwrap();
        }
        shard.propose(delete_object("bk", "k0")).await.unwrap();
        stop(shard, &store).await;

        // What a crash that lost the unsynced apply batches leaves behind:
        // the synced log, without its applied state.
        store
            .blocking("test_wipe", |db| {
                let mut batch = rocksdb::WriteBatch::default();
                for family in [Cf::SmState, Cf::Buckets, Cf::Objects] {
                    let mut iter = db.raw_iterator_cf(cf(db, family));
                    iter.seek_to_first();
                    while let Some(key) = iter.key() {
                        batch.delete_cf(cf(db, family), key);
                        iter.next();
                    }
                }
                db.write(batch).map_err(MetaError::rocks("test_wipe"))
            })
            .await
            .unwrap();
        assert_eq!(store.get_bucket("bk").await.unwrap(), None);
        drop(store);

        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        assert!(shard.is_leader());
        assert_eq!(store.get_bucket("bk").await.unwrap(), Some(bucket("bk")));
        let keys: Vec<String> = store
            .list_objects("bk", "", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["k1", "k2", "k3", "k4"]);
        stop(shard, &store).await;
    });
}

#[test]
fn snapshot_purges_the_log_and_restart_finds_it_on_disk() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        // No automatic snapshots; keep no log behind a snapshot.
        let options = RaftOptions {
            snapshot_logs_since_last: 1_000_000,
            logs_kept_after_snapshot: 0,
            ..RaftOptions::default()
        };
        let (store, shard) = open_and_start(dir.path(), options.clone()).await;
        shard.propose(create_bucket("bk")).await.unwrap();
        for i in 0..10 {
            shard
                .propose(put_object("bk", &format!("k{i:02}"), 3))
                .await
                .unwrap();
        }
        let last = shard.raft.metrics().borrow().last_applied.unwrap();
        shard.raft.trigger().snapshot().await.unwrap();
        shard
            .raft
            .wait(Some(WAIT_MAX))
            .snapshot(last, "snapshot built")
            .await
            .unwrap();
        shard
            .raft
            .wait(Some(WAIT_MAX))
            .purged(Some(last), "log purged")
            .await
            .unwrap();
        let recovered = log_store::read_recovered_log(&store).await.unwrap();
        assert_eq!(recovered.last_purged, Some(last));
        assert_eq!(recovered.last_log, Some(last));
        stop(shard, &store).await;
        drop(store);

        // The log is empty past the purge mark; the snapshot file is the
        // current snapshot again, without a rebuild.
        let (store, shard) = open_and_start(dir.path(), options).await;
        assert!(shard.is_leader());
        assert_eq!(shard.raft.metrics().borrow().snapshot, Some(last));
        assert_eq!(
            store.list_objects("bk", "", None, 100).await.unwrap().len(),
            10
        );
        shard.propose(put_object("bk", "after", 1)).await.unwrap();
        assert!(store.get_object("bk", "after").await.unwrap().is_some());
        stop(shard, &store).await;
    });
}

#[test]
fn snapshot_build_then_install_into_a_fresh_store() {
    run_local(|| async {
        let source_dir = tempfile::tempdir().unwrap();
        let (source, shard) = open_and_start(source_dir.path(), RaftOptions::default()).await;
        for name in ["b1", "b2"] {
            shard.propose(create_bucket(name)).await.unwrap();
        }
        for i in 0..20 {
            shard
                .propose(put_object("b1", &format!("obj/{i:03}"), 2))
                .await
                .unwrap();
        }
        shard.propose(put_object("b2", "only", 1)).await.unwrap();
        let mut small = manifest("b2", "small", 0);
        small.size_bytes = 5;
        small.embedded = b"small".to_vec();
        shard
            .propose(MetaCommand {
                op: Some(Op::PutObject(small)),
                ..Default::default()
            })
            .await
            .unwrap();
        stop(shard, &source).await;

        let (token, _released) = release_token();
        let mut source_sm = StateMachine::new(
            NodeId(1),
            source.clone(),
            token.clone(),
            ApplyHooks::default(),
        );
        // Nothing yet: the first snapshot is built below.
        assert!(source_sm.get_current_snapshot().await.unwrap().is_none());
        let snapshot = source_sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let (source_applied, source_membership) = source_sm.applied_state().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id, source_applied);
        assert!(source_membership.membership().voter_ids().eq([NODE_ID]));

        // The target holds state the snapshot must replace.
        let target_dir = tempfile::tempdir().unwrap();
        let target = MetaStore::open(target_dir.path()).unwrap();
        // The target is another node: refs in entries node 1 wrote, and
        // the snapshot's blob catalog, go to its catch-up queue.
        let catchup = Rc::new(crate::catchup::Catchup::default());
        let hooks = ApplyHooks {
            catchup: Some(Rc::clone(&catchup)),
            ..ApplyHooks::default()
        };
        let mut target_sm = StateMachine::new(NodeId(2), target.clone(), token, hooks);
        let stale = [
            create_bucket("stale"),
            put_object("stale", "x", 1),
            put_object("b1", "zzz", 1),
        ];
        let stale_entries: Vec<Entry> = stale
            .iter()
            .enumerate()
            .map(|(i, c)| normal_entry(i as u64, c))
            .collect();
        target_sm.apply(stale_entries).await.unwrap();
        assert_eq!(catchup.pending(), 2, "one chunk ref in each stale object");

        let meta = snapshot.meta.clone();
        let data = std::fs::read(snapshot.snapshot.path()).unwrap();
        let received = send_snapshot(snapshot, &mut target_sm).await;
        target_sm.install_snapshot(&meta, received).await.unwrap();

        assert_eq!(
            target.list_buckets().await.unwrap(),
            source.list_buckets().await.unwrap()
        );
        for b in ["b1", "b2", "stale"] {
            assert_eq!(
                target.list_objects(b, "", None, 1000).await.unwrap(),
                source.list_objects(b, "", None, 1000).await.unwrap(),
                "bucket {b}"
            );
        }
        assert_eq!(target.get_bucket("stale").await.unwrap(), None);
        // An embedded object's bytes travel in the snapshot: the target
        // has no other copy of them.
        let small = target.get_object("b2", "small").await.unwrap().unwrap();
        assert_eq!(small.embedded, b"small");
        assert!(small.chunks.is_empty());
        assert_eq!(
            target_sm.applied_state().await.unwrap(),
            (source_applied, source_membership.clone())
        );
        // The source's objects refer to chunks [0; 32] and [1; 32]: the
        // install offers each once.
        assert_eq!(catchup.pending(), 4);
        // Counts follow the installed records (21 objects name chunk 0, 20
        // name chunk 1), not the stale ones that named chunk 0 twice more.
        assert_eq!(chunk_counts(&target).await, (Some(21), Some(20)));
        let current = target_sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, meta);
        assert_eq!(std::fs::read(current.snapshot.path()).unwrap(), data);

        // A snapshot whose meta disagrees with its file is refused.
        let mut wrong = meta.clone();
        wrong.last_log_id = None;
        let received = receive_bytes(&mut target_sm, &data).await;
        let refused = target_sm.install_snapshot(&wrong, received).await;
        assert!(refused.is_err());
        // As is one byte flipped anywhere in the file, before the store
        // is touched.
        let mut flipped = data.clone();
        flipped[data.len() / 2] ^= 0x01;
        let received = receive_bytes(&mut target_sm, &flipped).await;
        let refused = target_sm.install_snapshot(&meta, received).await;
        assert!(refused.unwrap_err().to_string().contains("checksum"));
        assert_eq!(chunk_counts(&target).await, (Some(21), Some(20)));
        // And an unknown format version.
        let mut future = data.clone();
        future[8..12].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_le_bytes());
        let received = receive_bytes(&mut target_sm, &future).await;
        let refused = target_sm.install_snapshot(&meta, received).await;
        assert!(refused.unwrap_err().to_string().contains("format version"));
        assert_eq!(
            target_sm.applied_state().await.unwrap(),
            (source_applied, source_membership)
        );
    });
}

/// Chunk 0's and chunk 1's counts in `store`.
async fn chunk_counts(store: &MetaStore) -> (Option<u64>, Option<u64>) {
    store
        .blocking("counts", |db| {
            let count = |n: u8| {
                super::refs::count_of(db, &ChunkHash::from([n; 32])).map(|c| c.map(|c| c.count))
            };
            Ok((count(0)?, count(1)?))
        })
        .await
        .unwrap()
}

/// Moves a snapshot to `target` as openraft does: read in pieces from the
/// sender's file, written in order to the receiver's, which is then shut
/// down (synced).
async fn send_snapshot(
    mut snapshot: openraft::Snapshot<super::types::TypeConfig>,
    target: &mut StateMachine,
) -> Box<super::snapshot_file::SnapshotFile> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut received = target.begin_receiving_snapshot().await.unwrap();
    loop {
        let mut piece = Vec::with_capacity(64 << 10);
        let n = snapshot.snapshot.read_buf(&mut piece).await.unwrap();
        if n == 0 {
            break;
        }
        received.write_all(&piece).await.unwrap();
    }
    received.shutdown().await.unwrap();
    received
}

/// A snapshot of a stopped shard, sent to an empty store.
struct SentSnapshot {
    /// The log id the source had applied when it built the snapshot.
    source_applied: Option<LogId>,
    snapshot_id: String,
    target: MetaStore,
    /// Node 2's state machine over `target`, which received the file.
    target_sm: StateMachine,
    /// The received file, kept but not installed.
    received: std::path::PathBuf,
    _released: oneshot::Receiver<()>,
}

/// Stops `shard`, builds a snapshot of `source` as node 1, and sends it
/// to an empty store in `target_dir` as node 2.
async fn send_to_empty_store(
    shard: Rc<ShardRaft>,
    source: &MetaStore,
    target_dir: &Path,
) -> SentSnapshot {
    stop(shard, source).await;
    let (token, released) = release_token();
    let mut source_sm = StateMachine::new(
        NodeId(1),
        source.clone(),
        token.clone(),
        ApplyHooks::default(),
    );
    let snapshot = source_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let snapshot_id = snapshot.meta.snapshot_id.clone();
    let (source_applied, _) = source_sm.applied_state().await.unwrap();
    let target = MetaStore::open(target_dir).unwrap();
    let mut target_sm = StateMachine::new(NodeId(2), target.clone(), token, ApplyHooks::default());
    let received = send_snapshot(snapshot, &mut target_sm).await;
    SentSnapshot {
        source_applied,
        snapshot_id,
        target,
        target_sm,
        received: received.path().to_path_buf(),
        _released: released,
    }
}

/// Opens the store in `dir` again and runs the start's snapshot recovery:
/// the store and its current snapshot.
async fn reopen_and_recover(
    dir: &Path,
) -> (MetaStore, Option<super::snapshot_stream::SnapshotOnDisk>) {
    let store = MetaStore::open(dir).unwrap();
    let snapshots = super::snapshot_stream::snapshot_dir(store.path());
    let current = store
        .blocking("recover", move |db| {
            super::state_machine::recover_snapshots(db, &snapshots)
        })
        .await
        .unwrap();
    (store, current)
}

/// `bytes` received as a snapshot file by `target`.
async fn receive_bytes(
    target: &mut StateMachine,
    bytes: &[u8],
) -> Box<super::snapshot_file::SnapshotFile> {
    use tokio::io::AsyncWriteExt;
    let mut received = target.begin_receiving_snapshot().await.unwrap();
    received.write_all(bytes).await.unwrap();
    received.shutdown().await.unwrap();
    received
}

#[test]
fn an_install_a_crash_cut_short_is_finished_at_the_next_start() {
    run_local(|| async {
        let source_dir = tempfile::tempdir().unwrap();
        let (source, shard) = open_and_start(source_dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("b1")).await.unwrap();
        // Enough records for several install batches.
        let mut manifest = manifest("b1", "", 0);
        manifest.embedded = vec![7; 60 << 10];
        manifest.size_bytes = manifest.embedded.len() as u64;
        for i in 0..400 {
            manifest.key = format!("obj/{i:04}");
            shard
                .propose(MetaCommand {
                    op: Some(Op::PutObject(manifest.clone())),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        shard.propose(put_object("b1", "chunked", 2)).await.unwrap();
        let target_dir = tempfile::tempdir().unwrap();
        let sent = send_to_empty_store(shard, &source, target_dir.path()).await;
        let (target, target_sm, received) = (sent.target, sent.target_sm, sent.received);
        let source_applied = sent.source_applied;
        // The stop comes after the clearing batch and one batch of
        // records: the store holds some objects and no applied log id.
        let dir = super::snapshot_stream::snapshot_dir(target.path());
        target
            .blocking("cut short", move |db| {
                let path = super::snapshot_stream::keep_received(&dir, &received, "1-402-1")?;
                let mut installing = super::snapshot_stream::begin_install(db, &path, None)?;
                installing.step(db)?;
                assert!(!installing.is_done());
                Ok(())
            })
            .await
            .unwrap();
        let listed = target
            .list_objects("b1", "", None, 1000)
            .await
            .unwrap()
            .len();
        assert!(listed > 0 && listed < 401, "{listed} objects");
        drop(target_sm);
        drop(target);

        // The next start finishes it before the group reads anything.
        let (target, current) = reopen_and_recover(target_dir.path()).await;
        let current = current.expect("the installed file is the current snapshot");
        assert_eq!(current.header.last_applied, source_applied);
        assert_eq!(
            target.list_objects("b1", "", None, 1000).await.unwrap(),
            source.list_objects("b1", "", None, 1000).await.unwrap(),
        );
        assert_eq!(chunk_counts(&target).await, (Some(1), Some(1)));
        let (token, _released) = release_token();
        let mut target_sm =
            StateMachine::new(NodeId(2), target.clone(), token, ApplyHooks::default());
        assert_eq!(target_sm.applied_state().await.unwrap().0, source_applied);
    });
}

#[test]
fn a_snapshot_received_but_never_installed_is_not_offered_after_a_restart() {
    run_local(|| async {
        let source_dir = tempfile::tempdir().unwrap();
        let (source, shard) = open_and_start(source_dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("b1")).await.unwrap();
        shard.propose(put_object("b1", "k", 1)).await.unwrap();

        // The target stops after the file is kept under its name, before
        // the install marked anything.
        let target_dir = tempfile::tempdir().unwrap();
        let sent = send_to_empty_store(shard, &source, target_dir.path()).await;
        let (target, target_sm, received) = (sent.target, sent.target_sm, sent.received);
        let id = sent.snapshot_id;
        let dir = super::snapshot_stream::snapshot_dir(target.path());
        let kept = target
            .blocking("keep", move |_| {
                super::snapshot_stream::keep_received(&dir, &received, &id)
            })
            .await
            .unwrap();
        assert!(kept.exists());
        drop(target_sm);
        drop(target);

        // Its state is not the store's: it is neither installed nor the
        // current snapshot, and it is gone.
        let (target, current) = reopen_and_recover(target_dir.path()).await;
        assert!(current.is_none());
        assert!(!kept.exists());
        assert!(target.get_bucket("b1").await.unwrap().is_none());
    });
}

#[test]
fn one_apply_call_sees_its_own_earlier_entries() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sm, _released) = plain_state_machine(dir.path());
        let commands = [
            create_bucket("bk"),
            create_bucket("bk"),
            delete_bucket("bk"),
            delete_bucket("bk"),
            create_bucket("bk"),
        ];
        let entries: Vec<Entry> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| normal_entry(i as u64 + 1, c))
            .collect();
        let outcomes = sm.apply(entries).await.unwrap();
        assert_eq!(outcomes, BUCKET_CHURN_OUTCOMES.map(|o| vec![o]));
        assert!(store.get_bucket("bk").await.unwrap().is_some());
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(5));
    });
}

/// Create, create, delete, delete, create of one bucket: what each does.
const BUCKET_CHURN_OUTCOMES: [ApplyOutcome; 5] = [
    ApplyOutcome::Applied,
    ApplyOutcome::BucketAlreadyExists,
    ApplyOutcome::Applied,
    ApplyOutcome::NoSuchBucket,
    ApplyOutcome::Applied,
];

fn bucket_churn(name: &str) -> Vec<MetaCommand> {
    vec![
        create_bucket(name),
        create_bucket(name),
        delete_bucket(name),
        delete_bucket(name),
        create_bucket(name),
    ]
}

fn batch(commands: Vec<MetaCommand>) -> MetaCommand {
    MetaCommand {
        op: Some(Op::Batch(shoal_proto::meta::MetaBatch { commands })),
        ..Default::default()
    }
}

#[test]
fn a_batch_entry_applies_its_commands_in_order_each_as_if_alone() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sm, _released) = plain_state_machine(dir.path());
        let entries = vec![
            normal_entry(1, &batch(bucket_churn("bk"))),
            normal_entry(2, &create_bucket("other")),
        ];
        let outcomes = sm.apply(entries).await.unwrap();
        assert_eq!(
            outcomes,
            [BUCKET_CHURN_OUTCOMES.to_vec(), vec![ApplyOutcome::Applied]]
        );
        assert!(store.get_bucket("bk").await.unwrap().is_some());
        assert!(store.get_bucket("other").await.unwrap().is_some());
        assert_eq!(
            sm.applied_state().await.unwrap().0.map(|l| l.index),
            Some(2)
        );

        // A batch inside a batch, or inline chunks in one, is no entry the
        // proposer writes: the group stops, and nothing is written.
        for wrong in [
            batch(vec![create_bucket("x"), batch(vec![create_bucket("y")])]),
            batch(vec![create_bucket("x"), inline_chunks(&[])]),
        ] {
            assert!(sm.apply(vec![normal_entry(3, &wrong)]).await.is_err());
            assert_eq!(store.get_bucket("x").await.unwrap(), None);
        }
    });
}

#[test]
fn concurrent_proposals_share_entries_and_each_gets_its_own_outcome() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        let before = shard.stats();
        // Queued in this order (`join_all` polls them in order): the
        // first goes alone, the rest wait for it and share entries.
        let mut commands = bucket_churn("bk");
        commands.extend((0..40).map(|i| create_bucket(&format!("b{i}"))));
        let outcomes =
            futures::future::join_all(commands.iter().map(|c| shard.propose(c.clone()))).await;
        let outcomes: Vec<ApplyOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(outcomes[..5], BUCKET_CHURN_OUTCOMES);
        assert!(outcomes[5..].iter().all(|o| *o == ApplyOutcome::Applied));
        for i in 0..40 {
            assert!(store.get_bucket(&format!("b{i}")).await.unwrap().is_some());
        }
        let after = shard.stats();
        let commands = after.commands_proposed - before.commands_proposed;
        let entries = after.entries_proposed - before.entries_proposed;
        assert_eq!(commands, 45);
        assert!(
            entries < 10,
            "45 concurrent commands took {entries} entries"
        );
        assert_eq!(after.entries_appended - before.entries_appended, entries);
        stop(shard, &store).await;
    });
}

#[test]
fn a_proposal_whose_caller_went_away_still_commits_and_spares_the_others() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let shard = Rc::clone(&shard);
                glommio::spawn_local(
                    async move { shard.propose(create_bucket(&format!("b{i}"))).await },
                )
            })
            .collect();
        // Every task queues its command, then one caller goes away.
        glommio::timer::sleep(Duration::from_millis(1)).await;
        let mut tasks = tasks.into_iter();
        let gone = tasks.nth(3).unwrap();
        drop(gone);
        for task in tasks {
            assert_eq!(task.await.unwrap(), ApplyOutcome::Applied);
        }
        shard
            .wait_applied(shard.stats().last_log_index.unwrap(), WAIT_MAX)
            .await;
        for i in 0..10 {
            assert!(
                store.get_bucket(&format!("b{i}")).await.unwrap().is_some(),
                "b{i}"
            );
        }
        stop(shard, &store).await;
    });
}

#[test]
fn unknown_command_stops_apply_and_writes_nothing() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sm, _released) = plain_state_machine(dir.path());
        let entries = vec![
            normal_entry(1, &create_bucket("bk")),
            normal_entry(2, &MetaCommand::default()),
        ];
        assert!(sm.apply(entries).await.is_err());
        // The batch was never written: neither the bucket nor the log id.
        assert_eq!(store.get_bucket("bk").await.unwrap(), None);
        assert_eq!(sm.applied_state().await.unwrap().0, None);
    });
}

#[test]
fn an_entry_at_or_below_the_applied_index_is_never_applied_again() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sm, _released) = plain_state_machine(dir.path());
        sm.apply(vec![
            normal_entry(1, &create_bucket("a")),
            normal_entry(2, &create_bucket("b")),
        ])
        .await
        .unwrap();
        assert!(sm
            .apply(vec![normal_entry(2, &delete_bucket("a"))])
            .await
            .is_err());
        assert!(sm
            .apply(vec![
                normal_entry(4, &delete_bucket("a")),
                normal_entry(3, &delete_bucket("b"))
            ])
            .await
            .is_err());
        // Neither refused batch was written.
        assert!(store.get_bucket("a").await.unwrap().is_some());
        assert!(store.get_bucket("b").await.unwrap().is_some());
        assert_eq!(
            sm.applied_state().await.unwrap().0.map(|l| l.index),
            Some(2)
        );
    });
}

fn inline_chunks(chunks: &[(&[u8], ChunkHash)]) -> MetaCommand {
    let chunks = chunks
        .iter()
        .map(|(data, sha256)| shoal_proto::meta::InlineChunk {
            sha256: sha256.to_vec(),
            data: data.to_vec(),
        })
        .collect();
    MetaCommand {
        op: Some(Op::StoreChunks(shoal_proto::meta::InlineChunks { chunks })),
        ..Default::default()
    }
}

#[test]
fn inline_chunks_land_in_the_blob_log_and_a_bad_one_stops_apply() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta")).unwrap();
        let (blob_log, _) = crate::blob_log::BlobLog::open(
            &dir.path().join("blobs"),
            crate::limits::SEGMENT_BYTES_MAX,
        )
        .await
        .unwrap();
        let blob_log = Rc::new(blob_log);
        let (token, _released) = release_token();
        let hooks = ApplyHooks {
            blob_log: Some(Rc::clone(&blob_log)),
            ..ApplyHooks::default()
        };
        let mut sm = StateMachine::new(NodeId(1), store.clone(), token, hooks);
        let chunks: Vec<Vec<u8>> = vec![
            vec![7; 1 << 20],
            vec![8; 1 << 20],
            b"a short last chunk".to_vec(),
        ];
        let hashed: Vec<(&[u8], ChunkHash)> = chunks
            .iter()
            .map(|data| (&data[..], ChunkHash::of(data)))
            .collect();
        // Two chunks share the first entry, the third has one of its own.
        let entries = vec![
            normal_entry(1, &inline_chunks(&hashed[..2])),
            normal_entry(2, &inline_chunks(&hashed[2..])),
        ];
        let outcomes = sm.apply(entries).await.unwrap();
        assert_eq!(outcomes, [[ApplyOutcome::Applied], [ApplyOutcome::Applied]]);
        for data in &chunks {
            let sha256 = ChunkHash::of(data);
            let at = store.get_blob_location(&sha256).await.unwrap().unwrap();
            assert_eq!(blob_log.read(at.into(), &sha256).await.unwrap(), &data[..]);
        }

        // Bytes that do not match their hash never reach the index.
        let bad = normal_entry(
            3,
            &inline_chunks(&[(b"tampered", ChunkHash::from([9; 32]))]),
        );
        assert!(sm.apply(vec![bad]).await.is_err());
        assert_eq!(
            store
                .get_blob_location(&ChunkHash::from([9; 32]))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            sm.applied_state().await.unwrap().0.map(|l| l.index),
            Some(2)
        );
    });
}

/// A 1 GiB object is 1024 chunk refs in one manifest; its raft entry must
/// stay small (refs only, never bytes).
#[test]
fn one_gib_manifest_costs_under_64_kib_of_log() {
    const ENTRY_BYTES_MAX: u64 = 64 << 10;
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("bk")).await.unwrap();
        let mut command = put_object("bk", "big", 1024);
        if let Some(Op::PutObject(m)) = &mut command.op {
            // Realistic refs: distinct hashes, a large node id.
            for (i, chunk) in m.chunks.iter_mut().enumerate() {
                chunk.sha256 = (0..32).map(|j| (i * 31 + j) as u8).collect();
                chunk.source_node = u64::MAX;
            }
            assert_eq!(m.size_bytes, 1 << 30);
        }
        let before = shard.stats().log_appended_bytes;
        shard.propose(command).await.unwrap();
        let entry_bytes = shard.stats().log_appended_bytes - before;
        println!("a 1024-chunk manifest took {entry_bytes} raft log bytes");
        assert!(
            entry_bytes < ENTRY_BYTES_MAX,
            "a 1024-chunk manifest took {entry_bytes} log bytes"
        );
        let stored = store.get_object("bk", "big").await.unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 1024);
        stop(shard, &store).await;
    });
}

#[test]
fn config_rejects_an_election_timeout_below_the_heartbeat() {
    let options = RaftOptions {
        heartbeat_interval: Duration::from_millis(500),
        election_timeout_min: Duration::from_millis(400),
        ..RaftOptions::default()
    };
    match raft_config(SHARD_INDEX, &options) {
        Err(RaftError::Config { shard_index, .. }) => assert_eq!(shard_index, SHARD_INDEX),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(raft_config(SHARD_INDEX, &RaftOptions::default()).is_ok());
}

#[test]
#[should_panic(expected = "without an op")]
fn proposing_a_command_without_op_is_a_bug() {
    assert_well_formed(&MetaCommand::default());
}

#[test]
#[should_panic(expected = "invalid bucket name")]
fn proposing_a_bucket_name_with_nul_is_a_bug() {
    assert_well_formed(&create_bucket("a\0b"));
}

#[test]
fn network_clients_report_unreachable() {
    use openraft::error::RPCError;
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::VoteRequest;
    run_local(|| async {
        let mut factory = NetworkFactory::new(SHARD_INDEX, NODE_ID, None, Default::default());
        let mut client = factory
            .new_client(NodeId(9), &openraft::BasicNode::default())
            .await;
        let vote = VoteRequest::new(openraft::Vote::new(1, NODE_ID), None);
        let option = RPCOption::new(Duration::from_millis(100));
        match client.vote(vote, option).await {
            Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("node 9"), "{e}"),
            other => panic!("expected unreachable, got {other:?}"),
        }
    });
}

const UPLOAD_ID: &str = "0000000000010123456789abcdef0123";

fn upload_ref(key: &str) -> shoal_proto::meta::UploadRef {
    shoal_proto::meta::UploadRef {
        bucket: "bk".to_owned(),
        key: key.to_owned(),
        upload_id: UPLOAD_ID.to_owned(),
    }
}

fn create_upload(key: &str) -> MetaCommand {
    MetaCommand {
        op: Some(Op::CreateUpload(shoal_proto::meta::MultipartUpload {
            bucket: "bk".to_owned(),
            key: key.to_owned(),
            upload_id: UPLOAD_ID.to_owned(),
            initiated_unix_ms: 1_000,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Part `n` has `n` chunk refs, each of size `n`.
fn put_part(key: &str, part_number: u32) -> MetaCommand {
    let chunk = shoal_proto::meta::ChunkRef {
        sha256: vec![part_number as u8; 32],
        size_bytes: part_number,
        source_node: 1,
        iv: Vec::new(),
    };
    MetaCommand {
        op: Some(Op::PutPart(shoal_proto::meta::UploadedPart {
            bucket: "bk".to_owned(),
            key: key.to_owned(),
            upload_id: UPLOAD_ID.to_owned(),
            part_number,
            size_bytes: u64::from(part_number * part_number),
            chunks: vec![chunk; part_number as usize],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Completes with parts 1 and 3 (as `put_part` made them: no MD5).
fn complete_upload(key: &str) -> MetaCommand {
    complete_upload_with(key, &[(1, vec![]), (3, vec![])])
}

fn complete_upload_with(key: &str, parts: &[(u32, Vec<u8>)]) -> MetaCommand {
    let mut object = manifest("bk", key, 0);
    object.part_count = parts.len() as u32;
    MetaCommand {
        op: Some(Op::CompleteUpload(shoal_proto::meta::CompleteUpload {
            upload: Some(upload_ref(key)),
            manifest: Some(object),
            condition: None,
            parts: parts
                .iter()
                .map(|(part_number, md5)| shoal_proto::meta::ChosenPart {
                    part_number: *part_number,
                    md5: md5.clone(),
                })
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn abort_upload(key: &str) -> MetaCommand {
    MetaCommand {
        op: Some(Op::AbortUpload(upload_ref(key))),
        ..Default::default()
    }
}

fn put_object_if(
    key: &str,
    chunk_count: u32,
    condition: shoal_proto::meta::WriteCondition,
) -> MetaCommand {
    MetaCommand {
        op: Some(Op::PutObjectIf(shoal_proto::meta::PutObject {
            manifest: Some(manifest("bk", key, chunk_count)),
            condition: Some(condition),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn multipart_upload_lifecycle() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        // Parts of an upload that does not exist are refused.
        assert_eq!(
            shard.propose(put_part("k", 1)).await.unwrap(),
            ApplyOutcome::NoSuchUpload
        );
        shard.propose(create_upload("k")).await.unwrap();
        for n in [2, 1, 3] {
            assert_eq!(
                shard.propose(put_part("k", n)).await.unwrap(),
                ApplyOutcome::Applied
            );
        }
        let parts = store.list_parts(UPLOAD_ID, 0, 10).await.unwrap();
        let numbers: Vec<u32> = parts.iter().map(|p| p.part_number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        let after_one = store.list_parts(UPLOAD_ID, 1, 1).await.unwrap();
        assert_eq!(after_one[0].part_number, 2);
        let listed = store.list_uploads("bk", "", None, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            store
                .list_uploads("bk", "", Some(("k".into(), None)), 10)
                .await
                .unwrap(),
            vec![]
        );

        // A part whose MD5 changed since the client's list was checked.
        assert_eq!(
            shard
                .propose(complete_upload_with("k", &[(1, vec![7; 16])]))
                .await
                .unwrap(),
            ApplyOutcome::InvalidPart
        );
        assert_eq!(
            shard.propose(complete_upload("k")).await.unwrap(),
            ApplyOutcome::Applied
        );
        // The manifest gets the chosen parts' refs, in order; part 2 is
        // left out.
        let object = store.get_object("bk", "k").await.unwrap().unwrap();
        assert_eq!(object.part_count, 2);
        let sizes: Vec<u32> = object.chunks.iter().map(|c| c.size_bytes).collect();
        assert_eq!(sizes, [1, 3, 3, 3]);
        // Completion forgets the upload and every part.
        assert_eq!(store.get_upload("bk", "k", UPLOAD_ID).await.unwrap(), None);
        assert!(store.list_parts(UPLOAD_ID, 0, 10).await.unwrap().is_empty());
        assert_eq!(
            shard.propose(complete_upload("k")).await.unwrap(),
            ApplyOutcome::NoSuchUpload
        );
        assert_eq!(
            shard.propose(abort_upload("k")).await.unwrap(),
            ApplyOutcome::NoSuchUpload
        );

        // Abort drops the parts; the reaper's query sees initiation times.
        shard.propose(create_upload("j")).await.unwrap();
        shard.propose(put_part("j", 1)).await.unwrap();
        assert_eq!(
            store.uploads_initiated_before(999, 10).await.unwrap(),
            vec![]
        );
        assert_eq!(
            store.uploads_initiated_before(1_001, 10).await.unwrap(),
            vec![upload_ref("j")]
        );
        assert_eq!(
            shard.propose(abort_upload("j")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert!(store.list_parts(UPLOAD_ID, 0, 10).await.unwrap().is_empty());
        assert!(store
            .uploads_initiated_before(u64::MAX, 10)
            .await
            .unwrap()
            .is_empty());
        stop(shard, &store).await;
    });
}

#[test]
fn conditional_puts_are_decided_at_apply() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sm, _released) = plain_state_machine(dir.path());
        let absent = shoal_proto::meta::WriteCondition {
            if_none_exists: true,
            ..Default::default()
        };
        let matching = shoal_proto::meta::WriteCondition {
            if_match: true,
            match_md5: vec![0xAB; 16],
            ..Default::default()
        };
        let stale = shoal_proto::meta::WriteCondition {
            if_match: true,
            match_md5: vec![0xCD; 16],
            ..Default::default()
        };
        // One batch: the second create-if-absent sees the first's effect,
        // and an abort makes a later part of the same batch fail.
        let commands = [
            put_object_if("k", 1, stale.clone()),
            put_object_if("k", 1, absent.clone()),
            put_object_if("k", 2, absent),
            put_object_if("k", 3, matching),
            put_object_if("k", 4, stale),
            create_upload("u"),
            abort_upload("u"),
            put_part("u", 1),
        ];
        let entries: Vec<Entry> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| normal_entry(i as u64 + 1, c))
            .collect();
        let outcomes = sm.apply(entries).await.unwrap();
        assert_eq!(
            outcomes,
            [
                ApplyOutcome::NoSuchKey,
                ApplyOutcome::Applied,
                ApplyOutcome::PreconditionFailed,
                ApplyOutcome::Applied,
                ApplyOutcome::PreconditionFailed,
                ApplyOutcome::Applied,
                ApplyOutcome::Applied,
                ApplyOutcome::NoSuchUpload,
            ]
            .map(|o| vec![o])
        );
        let object = store.get_object("bk", "k").await.unwrap().unwrap();
        assert_eq!(object.chunks.len(), 3);
        assert!(store.list_parts(UPLOAD_ID, 0, 10).await.unwrap().is_empty());
    });
}

fn user_command(op: Op) -> MetaCommand {
    MetaCommand {
        op: Some(op),
        ..Default::default()
    }
}

fn new_user(name: &str, access_key: &str) -> shoal_proto::meta::User {
    shoal_proto::meta::User {
        name: name.to_owned(),
        id: format!("id-{name}"),
        keys: vec![shoal_proto::meta::AccessKey {
            access_key: access_key.to_owned(),
            secret_key: format!("secret-{access_key}"),
            disabled: false,
            created_unix_ms: 1,
        }],
        disabled: false,
        created_unix_ms: 1,
    }
}

#[test]
fn users_and_buckets_are_published_to_the_directory_as_applied() {
    use shoal_proto::meta::{AccessKey, AddAccessKey, SetEnabled};
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let directory = crate::directory::Directory::new();
        let options = RaftOptions {
            hooks: ApplyHooks {
                directory: Some(Arc::clone(&directory)),
                ..ApplyHooks::default()
            },
            ..RaftOptions::default()
        };
        let (store, shard) = open_and_start(dir.path(), options.clone()).await;
        let propose = |op| shard.propose(user_command(op));
        assert_eq!(
            propose(Op::CreateUser(new_user("main", "AK1")))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            propose(Op::CreateUser(new_user("main", "AK9")))
                .await
                .unwrap(),
            ApplyOutcome::UserExists
        );
        assert_eq!(
            propose(Op::CreateUser(new_user("alt", "AK1")))
                .await
                .unwrap(),
            ApplyOutcome::AccessKeyExists
        );
        // Published before the proposer hears back.
        assert!(directory.key_owner("AK1").unwrap().enabled);
        let add = AddAccessKey {
            user: "main".into(),
            key: Some(AccessKey {
                access_key: "AK2".into(),
                secret_key: "secret-AK2".into(),
                disabled: false,
                created_unix_ms: 2,
            }),
        };
        assert_eq!(
            propose(Op::AddAccessKey(add)).await.unwrap(),
            ApplyOutcome::Applied
        );
        let disable_key = SetEnabled {
            name: "AK1".into(),
            enabled: false,
        };
        assert_eq!(
            propose(Op::SetKeyEnabled(disable_key)).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert!(!directory.key_owner("AK1").unwrap().enabled);
        assert!(directory.key_owner("AK2").unwrap().enabled);
        let disable_user = SetEnabled {
            name: "main".into(),
            enabled: false,
        };
        propose(Op::SetUserEnabled(disable_user)).await.unwrap();
        assert!(!directory.key_owner("AK2").unwrap().enabled);
        assert_eq!(
            propose(Op::DeleteAccessKey("nope".into())).await.unwrap(),
            ApplyOutcome::NoSuchAccessKey
        );
        shard.propose(create_bucket("bk")).await.unwrap();
        assert!(directory.contains_bucket("bk"));

        // A restart loads the directory from the applied state.
        stop(shard, &store).await;
        drop(store);
        let directory = crate::directory::Directory::new();
        let options = RaftOptions {
            hooks: ApplyHooks {
                directory: Some(Arc::clone(&directory)),
                ..ApplyHooks::default()
            },
            ..RaftOptions::default()
        };
        let (store, shard) = open_and_start(dir.path(), options).await;
        assert!(directory.contains_bucket("bk"));
        assert!(!directory.key_owner("AK2").unwrap().enabled);
        assert_eq!(
            shard
                .propose(user_command(Op::DeleteUser("main".into())))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert!(directory.key_owner("AK2").is_none());
        stop(shard, &store).await;
    });
}

#[test]
fn a_user_who_owns_buckets_is_deleted_only_once_they_are_given_away() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        let propose = |op| shard.propose(user_command(op));
        for name in ["leaver", "heir", BOOTSTRAP_USER_NAME] {
            propose(Op::CreateUser(new_user(name, &format!("AK-{name}"))))
                .await
                .unwrap();
        }
        let mut owned = bucket("owned");
        owned.owner_id = "id-leaver".into();
        propose(Op::CreateBucket(owned)).await.unwrap();
        // A bucket from before users existed belongs to the bootstrap user.
        let mut legacy = bucket("legacy");
        legacy.owner_id = String::new();
        propose(Op::CreateBucket(legacy)).await.unwrap();

        for name in ["leaver", BOOTSTRAP_USER_NAME] {
            assert_eq!(
                propose(Op::DeleteUserWithoutBuckets(name.into()))
                    .await
                    .unwrap(),
                ApplyOutcome::UserOwnsBuckets,
                "{name} still owns a bucket"
            );
        }
        let give = |bucket: &str, owner_id: &str| {
            Op::SetBucketOwner(shoal_proto::meta::SetBucketOwner {
                bucket: bucket.into(),
                owner_id: owner_id.into(),
            })
        };
        assert_eq!(
            propose(give("owned", "id-nobody")).await.unwrap(),
            ApplyOutcome::NoSuchUser
        );
        assert_eq!(
            propose(give("missing", "id-heir")).await.unwrap(),
            ApplyOutcome::NoSuchBucket
        );
        assert_eq!(
            propose(give("owned", "id-heir")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            propose(Op::DeleteUserWithoutBuckets("leaver".into()))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            store.get_bucket("owned").await.unwrap().unwrap().owner_id,
            "id-heir"
        );
        // The old op keeps its old meaning: entries written before the
        // checked one existed apply as they did.
        assert_eq!(
            propose(Op::DeleteUser(BOOTSTRAP_USER_NAME.into()))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        stop(shard, &store).await;
    });
}

const BOOTSTRAP_USER_NAME: &str = crate::directory::BOOTSTRAP_USER;

#[test]
fn a_group_being_handed_over_takes_no_more_proposals() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (store, shard) = open_and_start(dir.path(), RaftOptions::default()).await;
        shard.propose(create_bucket("before")).await.unwrap();
        // A group of one has nobody to hand over to, but it stops
        // proposing all the same: its log must not grow under a vote.
        assert_eq!(shard.hand_over().await, Handover::NoOtherVoter);
        assert!(matches!(
            shard.propose(create_bucket("after")).await,
            Err(RaftError::NotLeader { leader: None })
        ));
        stop(shard, &store).await;
    });
}
