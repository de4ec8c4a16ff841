//! The state machine of one shard's group: applies committed
//! [`MetaCommand`]s to the metadata store's `buckets`, `objects`,
//! `uploads` and `parts` column families (each op's effect is in
//! `apply.rs`), and builds and installs snapshots of them.
//!
//! Runs on the shard's core, in openraft's state machine worker task
//! (snapshot builds in a task of their own); every rocksdb call goes
//! through [`MetaStore::blocking`].
//!
//! Atomicity: each `apply` call writes one `WriteBatch` holding every
//! entry's effect together with the new last-applied log id and
//! membership, so a crash never leaves a half-applied entry or an effect
//! without its log id. The batch is not synced (see the `meta` module docs:
//! the applied state can be rebuilt from the synced log).
//!
//! Inline chunks (`store_chunks` entries, written when some member lacks the
//! blob-offload capability) are appended to this node's blob log before
//! the batch is built, and their locations go into the same batch.
//! Chunk refs in entries another leader wrote are offered to the shard's
//! [`Catchup`] queue after the batch, so a missing chunk is fetched in the
//! background; apply never waits for it.
//!
//! Snapshots are files (`snapshot_stream.rs`): built from a rocksdb view,
//! sent and received in chunks, installed in batches, so no member ever
//! holds a whole snapshot in memory. The latest file is the current
//! snapshot, also after a restart. They hold the metadata, never blob
//! bytes; a node that installs one offers the chunks its refs name to its
//! catch-up queue.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta,
};
use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{self, meta_command::Op, InlineChunk, MetaCommand};

use super::apply::{apply_op, op_chunks_mut};
use super::codec::{encode, storage_error};
use super::log_store::read_record;
use super::pending::Pending;
use super::refs::{self, EntryStamp};
use super::snapshot_file::SnapshotFile;
use super::snapshot_stream::{self, SnapshotHeader, SnapshotOnDisk};
use super::types::{
    ApplyOutcome, Entry, EntryOutcome, LogId, NodeId, StorageError, StoredMembership, TypeConfig,
};
use super::ReleaseToken;
use crate::blob_log::{BlobLog, RecordHold};
use crate::catchup::Catchup;
use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::directory::Directory;
use crate::limits::{CHUNK_BYTES, SNAPSHOT_NO_SPACE_PAUSE};
use crate::meta::keys::{self, Cf, SM_STATE_LAST_APPLIED_KEY, SM_STATE_MEMBERSHIP_KEY};
use crate::meta::{cf, hashed_refs, MetaError, MetaStore};
use crate::version_id::VersionStamp;

/// The latest snapshot, as built or installed (or found at start).
pub(crate) type CurrentSnapshot = Rc<RefCell<Option<SnapshotOnDisk>>>;

/// Bytes of the latest snapshot built or installed, for metrics.
pub(crate) type SnapshotSize = Rc<Cell<Option<u64>>>;

/// openraft's state machine over the metadata store.
pub struct StateMachine {
    node_id: NodeId,
    store: MetaStore,
    /// Where its snapshot files live (`snapshot_stream.rs`).
    snapshot_dir: PathBuf,
    current: CurrentSnapshot,
    snapshot_size: SnapshotSize,
    /// When a build last found the disk full.
    no_space_since: Rc<Cell<Option<Instant>>>,
    release: ReleaseToken,
    /// Where bucket and user changes are published (metadata shard only).
    directory: Option<Arc<Directory>>,
    /// Where inline chunks go; a group without one stops at the first.
    blob_log: Option<Rc<BlobLog>>,
    /// Told about chunks this node may lack.
    catchup: Option<Rc<Catchup>>,
}

/// Where the state machine's side effects beyond the store go.
#[derive(Clone, Default)]
pub struct ApplyHooks {
    /// Bucket and user changes (metadata shard only).
    pub directory: Option<Arc<Directory>>,
    /// The shard's blob log, for inline chunks.
    pub blob_log: Option<Rc<BlobLog>>,
    /// The shard's catch-up queue, for refs to chunks this node may lack.
    pub catchup: Option<Rc<Catchup>>,
}

impl std::fmt::Debug for ApplyHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyHooks")
            .field("directory", &self.directory.is_some())
            .field("blob_log", &self.blob_log.is_some())
            .field("catchup", &self.catchup.is_some())
            .finish()
    }
}

impl StateMachine {
    pub(crate) fn new(
        node_id: NodeId,
        store: MetaStore,
        release: ReleaseToken,
        hooks: ApplyHooks,
    ) -> StateMachine {
        StateMachine {
            node_id,
            snapshot_dir: snapshot_stream::snapshot_dir(store.path()),
            store,
            current: Rc::new(RefCell::new(None)),
            snapshot_size: Rc::new(Cell::new(None)),
            no_space_since: Rc::new(Cell::new(None)),
            release,
            directory: hooks.directory,
            blob_log: hooks.blob_log,
            catchup: hooks.catchup,
        }
    }

    /// Starts from `current`, the snapshot file found at start (see
    /// [`recover_snapshots`]).
    pub(crate) fn with_current(self, current: Option<SnapshotOnDisk>) -> StateMachine {
        self.snapshot_size.set(current.as_ref().map(|c| c.bytes));
        *self.current.borrow_mut() = current;
        self
    }

    /// Where the size of the latest snapshot is kept.
    pub(crate) fn snapshot_size(&self) -> SnapshotSize {
        Rc::clone(&self.snapshot_size)
    }

    /// Decodes `entries`, appends their inline chunks to the blob log (all
    /// at once, so they share a group commit) and collects the chunk refs
    /// of entries other leaders wrote.
    async fn prepare(&self, entries: Vec<Entry>) -> Result<Prepared, MetaError> {
        let mut applying = Vec::with_capacity(entries.len());
        let mut inline = Vec::new();
        let mut offered = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let step = match entry.payload {
                EntryPayload::Blank => Applying::Blank,
                EntryPayload::Membership(m) => Applying::Membership(m),
                EntryPayload::Normal(command) => {
                    let key = keys::log_key(log_id.index);
                    let command = command
                        .decode()
                        .map_err(|e| MetaError::decode(Cf::RaftLog.name(), &key, e))?;
                    let written_elsewhere =
                        log_id.leader_id.node_id != self.node_id && self.catchup.is_some();
                    let mut offer = |op: &mut Op| {
                        if let Some(chunks) = op_chunks_mut(op).filter(|_| written_elsewhere) {
                            offered.extend(hashed_refs(chunks));
                        }
                    };
                    match known_op(&key, command)? {
                        (Op::StoreChunks(batch), _) => {
                            for chunk in batch.chunks {
                                inline.push((applying.len(), log_id.index, chunk));
                            }
                            Applying::StoredChunks(Vec::new()) // filled once stored
                        }
                        (Op::Batch(batch), _) => {
                            let mut ops = Vec::with_capacity(batch.commands.len());
                            for command in batch.commands {
                                let (mut op, unix_ms) = known_op(&key, command)?;
                                if matches!(op, Op::Batch(_) | Op::StoreChunks(_)) {
                                    return Err(MetaError::decode(
                                        Cf::RaftLog.name(),
                                        &key,
                                        "a batch holds a batch or store_chunks op",
                                    ));
                                }
                                offer(&mut op);
                                ops.push((op, unix_ms));
                            }
                            Applying::Ops(ops)
                        }
                        (mut op, unix_ms) => {
                            offer(&mut op);
                            Applying::Ops(vec![(op, unix_ms)])
                        }
                    }
                }
            };
            applying.push((log_id, step));
        }
        // The records stay held until the batch that indexes them is
        // written (see `blob_log::space`).
        let hold = match (&self.blob_log, inline.is_empty()) {
            (Some(blob_log), false) => Some(blob_log.hold()),
            _ => None,
        };
        let stored = futures::future::try_join_all(
            inline
                .iter()
                .map(|(_, index, chunk)| self.store_inline(*index, chunk)),
        )
        .await?;
        for ((at, _, _), stored) in inline.iter().zip(stored) {
            if let Applying::StoredChunks(chunks) = &mut applying[*at].1 {
                chunks.push(stored);
            }
        }
        Ok(Prepared {
            applying,
            offered,
            _hold: hold,
        })
    }

    /// Appends one inline chunk to the blob log once it passes its check.
    async fn store_inline(
        &self,
        index: u64,
        chunk: &InlineChunk,
    ) -> Result<(ChunkHash, meta::BlobLocation), MetaError> {
        let refuse = |reason: String| MetaError::InlineChunk { index, reason };
        let sha256 = ChunkHash::from_slice(&chunk.sha256)
            .ok_or_else(|| refuse("sha256 is not 32 bytes".into()))?;
        if chunk.data.len() > CHUNK_BYTES {
            return Err(refuse(format!("{} bytes", chunk.data.len())));
        }
        if ChunkHash::of(&chunk.data) != sha256 {
            return Err(refuse("bytes do not match their sha256".into()));
        }
        let blob_log = self
            .blob_log
            .as_ref()
            .ok_or_else(|| refuse("this group has no blob log".into()))?;
        let mut buf = ChunkBuf::new();
        buf.fill_from(&chunk.data);
        let (at, _) = blob_log
            .append(buf, sha256)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        Ok((sha256, at.into()))
    }
}

/// An entry ready for the batch (cloned for each try of a write that
/// waits for disk space).
#[derive(Clone)]
enum Applying {
    Blank,
    Membership(openraft::Membership<NodeId, BasicNode>),
    /// The ops of a plain entry (one) or a batch entry, each with the
    /// leader's clock when it was proposed.
    Ops(Vec<(Op, u64)>),
    /// Inline chunks, already in this node's blob log: `(sha256, where)`.
    StoredChunks(Vec<(ChunkHash, meta::BlobLocation)>),
}

/// Entries ready for the batch, and the chunk refs to offer to catch-up.
struct Prepared {
    applying: Vec<(LogId, Applying)>,
    offered: Vec<(ChunkHash, NodeId)>,
    /// Keeps the inline chunks' records from release until applied.
    _hold: Option<RecordHold>,
}

/// Builds snapshots from a consistent view of the store.
pub struct SnapshotBuilder {
    store: MetaStore,
    dir: PathBuf,
    current: CurrentSnapshot,
    size: SnapshotSize,
    no_space_since: Rc<Cell<Option<Instant>>>,
    _release: ReleaseToken,
}

/// A decoded command's op and proposal time; a command this build does
/// not know (a newer leader's?) stops the group, as skipping it would
/// diverge from the replicas that understand it.
fn known_op(key: &[u8], command: MetaCommand) -> Result<(Op, u64), MetaError> {
    match command.op {
        Some(op) => Ok((op, command.proposed_unix_ms)),
        None => Err(MetaError::decode(
            Cf::RaftLog.name(),
            key,
            "MetaCommand without a known op",
        )),
    }
}

fn read_applied_state(db: &DB) -> Result<(Option<LogId>, StoredMembership), MetaError> {
    let last_applied = read_record(db, Cf::SmState, SM_STATE_LAST_APPLIED_KEY)?;
    let membership = read_record(db, Cf::SmState, SM_STATE_MEMBERSHIP_KEY)?.unwrap_or_default();
    Ok((last_applied, membership))
}

/// Applies `entries` (consecutive, committed, prepared) in one batch and
/// returns the outcomes of each entry's commands.
fn apply_entries(
    db: &DB,
    entries: Vec<(LogId, Applying)>,
    directory: Option<&Directory>,
) -> Result<Vec<EntryOutcome>, MetaError> {
    let sm_state = cf(db, Cf::SmState);
    let mut batch = WriteBatch::default();
    let mut pending = Pending::default();
    let mut membership = None;
    let mut outcomes = Vec::with_capacity(entries.len());
    let last = entries.last().expect("apply is called with entries").0;
    // Raft hands each entry over once, in log order: an index at or below
    // one already applied would apply a change twice.
    let mut applied: Option<LogId> = read_record(db, Cf::SmState, SM_STATE_LAST_APPLIED_KEY)?;
    for (log_id, step) in entries {
        assert!(
            applied.is_none_or(|a| log_id.index > a.index),
            "entry {log_id} applied after {applied:?}"
        );
        applied = Some(log_id);
        let outcome = match step {
            Applying::Blank => vec![ApplyOutcome::Applied],
            Applying::Membership(m) => {
                membership = Some(StoredMembership::new(Some(log_id), m));
                vec![ApplyOutcome::Applied]
            }
            Applying::StoredChunks(chunks) => {
                for (sha256, location) in chunks {
                    crate::meta::index_into(db, &mut batch, &sha256, &location);
                }
                vec![ApplyOutcome::Applied]
            }
            Applying::Ops(ops) => {
                let mut outcomes = Vec::with_capacity(ops.len());
                for (sub, (op, unix_ms)) in (0u32..).zip(ops) {
                    let stamp = VersionStamp {
                        unix_ms,
                        index: log_id.index,
                        sub,
                    };
                    outcomes.push(apply_op(db, &mut batch, &mut pending, op, stamp)?);
                    // Each op settles its refs before the next runs, so
                    // a batch counts exactly as its ops would one by one.
                    let at = EntryStamp {
                        index: log_id.index,
                        unix_ms,
                    };
                    let deltas = std::mem::take(&mut pending.ref_deltas);
                    refs::settle(&mut pending.count_table(db, &mut batch), deltas, at)?;
                }
                outcomes
            }
        };
        outcomes.push(outcome);
    }
    batch.put_cf(sm_state, SM_STATE_LAST_APPLIED_KEY, encode(&last));
    if let Some(membership) = membership {
        batch.put_cf(sm_state, SM_STATE_MEMBERSHIP_KEY, encode(&membership));
    }
    db.write(batch).map_err(MetaError::rocks("apply"))?;
    if let Some(directory) = directory {
        directory.publish(&pending.changes);
    }
    Ok(outcomes)
}

fn now_unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// openraft's view of a snapshot file.
fn meta_of(snapshot: &SnapshotOnDisk) -> SnapshotMeta<NodeId, BasicNode> {
    SnapshotMeta {
        last_log_id: snapshot.header.last_applied,
        last_membership: snapshot.header.membership.clone(),
        snapshot_id: snapshot.snapshot_id.clone(),
    }
}

/// Opens `snapshot` for openraft to read.
async fn open_snapshot(snapshot: &SnapshotOnDisk) -> Result<Snapshot<TypeConfig>, StorageError> {
    let meta = meta_of(snapshot);
    let file = SnapshotFile::open(&snapshot.path).await.map_err(|e| {
        storage_error(
            ErrorSubject::Snapshot(Some(meta.signature())),
            ErrorVerb::Read,
            MetaError::SnapshotFile {
                op: "open",
                path: snapshot.path.clone(),
                source: e,
            },
        )
    })?;
    Ok(Snapshot {
        meta,
        snapshot: Box::new(file),
    })
}

/// Finishes an install a crash interrupted, then finds the current
/// snapshot file; before the group starts. Blocking.
pub(crate) fn recover_snapshots(db: &DB, dir: &Path) -> Result<Option<SnapshotOnDisk>, MetaError> {
    if let Some(path) = snapshot_stream::interrupted_install(db, dir)? {
        let installed = snapshot_stream::install_all(db, &path)?;
        tracing::warn!(
            snapshot = %path.display(),
            records = installed.records,
            "finished installing a raft snapshot a stop had interrupted"
        );
    }
    let (applied, _) = read_applied_state(db)?;
    snapshot_stream::latest(dir, applied)
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (dir, at) = (self.dir.clone(), now_unix_ms());
        let cooling = self
            .no_space_since
            .get()
            .is_some_and(|since| since.elapsed() < SNAPSHOT_NO_SPACE_PAUSE);
        let built = if cooling {
            None
        } else {
            match self
                .store
                .blocking("build_snapshot", move |db| {
                    snapshot_stream::build(db, &dir, at)
                })
                .await
            {
                Ok(built) => Some(built),
                // A full disk must not stop the group: keep serving the
                // snapshot there is, and try again after a pause.
                Err(e) if e.is_no_space() && self.current.borrow().is_some() => {
                    tracing::warn!(error = %e, "no space to build a raft snapshot: keeping the previous one for now");
                    self.no_space_since.set(Some(Instant::now()));
                    None
                }
                Err(e) => {
                    return Err(storage_error(
                        ErrorSubject::Snapshot(None),
                        ErrorVerb::Write,
                        e,
                    ))
                }
            }
        };
        let snapshot = match built {
            Some(built) => {
                tracing::info!(
                    snapshot = %built.snapshot_id,
                    snapshot_bytes = built.bytes,
                    "built raft snapshot"
                );
                self.size.set(Some(built.bytes));
                *self.current.borrow_mut() = Some(built.clone());
                let (dir, keep) = (self.dir.clone(), built.path.clone());
                let retired = self
                    .store
                    .blocking("retire_snapshots", move |db| {
                        snapshot_stream::retire_others(db, &dir, &keep)
                    })
                    .await;
                if let Err(e) = retired {
                    tracing::warn!(error = %e, "removing older raft snapshots failed; the next build tries again");
                }
                built
            }
            None => self
                .current
                .borrow()
                .clone()
                .expect("checked above: there is a current snapshot"),
        };
        open_snapshot(&snapshot).await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.store
            .blocking("applied_state", read_applied_state)
            .await
            .map_err(|e| storage_error(ErrorSubject::StateMachine, ErrorVerb::Read, e))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let failed = |e| storage_error(ErrorSubject::Apply(last), ErrorVerb::Write, e);
        // Committed, not applied: a restart must apply these again.
        crate::crash_point::crash_point("crash::committed");
        let Prepared {
            applying,
            offered,
            _hold: hold,
        } = self.prepare(entries).await.map_err(failed)?;
        let directory = self.directory.clone();
        let outcomes = self
            .store
            .write_when_space("apply", move |db| {
                apply_entries(db, applying.clone(), directory.as_deref())
            })
            .await
            .map_err(failed)?;
        // Applied, not acknowledged.
        crate::crash_point::crash_point("crash::applied");
        drop(hold);
        if let Some(catchup) = &self.catchup {
            catchup.offer(offered);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            dir: self.snapshot_dir.clone(),
            current: Rc::clone(&self.current),
            size: Rc::clone(&self.snapshot_size),
            no_space_since: Rc::clone(&self.no_space_since),
            _release: self.release.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let dir = self.snapshot_dir.clone();
        let failed = |e: std::io::Error| {
            storage_error(
                ErrorSubject::Snapshot(None),
                ErrorVerb::Write,
                MetaError::SnapshotFile {
                    op: "create",
                    path: snapshot_stream::receiving_path(&self.snapshot_dir),
                    source: e,
                },
            )
        };
        let created = self
            .store
            .blocking("begin_receiving_snapshot", move |_| {
                std::fs::create_dir_all(&dir).map_err(|e| MetaError::SnapshotFile {
                    op: "create",
                    path: dir.clone(),
                    source: e,
                })
            })
            .await;
        created.map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        let file = SnapshotFile::create(&snapshot_stream::receiving_path(&self.snapshot_dir))
            .await
            .map_err(failed)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let failed = |e| {
            storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let received = snapshot.path().to_path_buf();
        drop(snapshot);
        let (dir, id) = (self.snapshot_dir.clone(), meta.snapshot_id.clone());
        let expected = SnapshotHeader {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let begin_with = expected.clone();
        let mut installing = self
            .store
            .blocking("install_snapshot", move |db| {
                let path = snapshot_stream::keep_received(&dir, &received, &id)?;
                snapshot_stream::begin_install(db, &path, Some(&begin_with))
            })
            .await
            .map_err(failed)?;
        // One batch per blocking job: other work of this core's store
        // goes on between them.
        while !installing.is_done() {
            installing = self
                .store
                .blocking("install_snapshot", move |db| {
                    installing.step(db)?;
                    Ok(installing)
                })
                .await
                .map_err(failed)?;
        }
        let path = installing.path().to_path_buf();
        let installed = installing.into_installed();
        let directory = self.directory.clone();
        let (dir, keep) = (self.snapshot_dir.clone(), path.clone());
        let bytes = self
            .store
            .blocking("install_snapshot", move |db| {
                if let Some(directory) = directory {
                    directory.load(db)?;
                }
                snapshot_stream::retire_others(db, &dir, &keep)
            })
            .await
            .map_err(failed)?;
        tracing::info!(
            snapshot = %meta,
            records = installed.records,
            chunks = installed.chunks.len(),
            "installed raft snapshot"
        );
        if let Some(catchup) = &self.catchup {
            // No source hint: any member that has a chunk will do.
            catchup.offer(
                installed
                    .chunks
                    .into_iter()
                    .map(|sha256| (sha256, NodeId(0))),
            );
            if installed.chunks_left_out {
                catchup.missed();
            }
        }
        let on_disk = SnapshotOnDisk {
            header: expected,
            snapshot_id: meta.snapshot_id.clone(),
            bytes,
            path,
        };
        self.snapshot_size.set(Some(on_disk.bytes));
        *self.current.borrow_mut() = Some(on_disk);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.current.borrow().clone();
        let Some(current) = current else {
            return Ok(None);
        };
        match open_snapshot(&current).await {
            // A build made a newer one current, and retired this file,
            // while it was being opened: open the newer one.
            Err(_) if self.current.borrow().as_ref().map(|c| &c.path) != Some(&current.path) => {
                let newer = self
                    .current
                    .borrow()
                    .clone()
                    .expect("a newer current snapshot");
                open_snapshot(&newer).await.map(Some)
            }
            opened => opened.map(Some),
        }
    }
}
