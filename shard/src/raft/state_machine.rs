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
//! Snapshots hold the metadata and a catalog of the chunk hashes it refers
//! to, never blob bytes; a node that installs one offers the catalog to its
//! catch-up queue. They are built and sent whole, in memory (a
//! `Cursor<Vec<u8>>`). The latest one is kept in
//! memory only: openraft rebuilds it at start when the log has been purged.
//! Streaming snapshots from a rocksdb checkpoint are future work; until
//! then a snapshot costs memory proportional to the shard's metadata.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta,
};
use rocksdb::{WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use shoal_proto::meta::{self, meta_command::Op, InlineChunk, MetaCommand};

use super::apply::{apply_op, op_chunks_mut, Pending};
use super::codec::{decode, encode, storage_error};
use super::log_store::read_record;
use super::refs::{self, EntryStamp};
use super::types::{
    ApplyOutcome, Entry, EntryOutcome, LogId, NodeId, StorageError, StoredMembership, TypeConfig,
};
use super::ReleaseToken;
use crate::blob_log::{BlobLog, RecordHold};
use crate::catchup::Catchup;
use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::directory::Directory;
use crate::limits::CHUNK_BYTES;
use crate::meta::keys::{self, Cf, SM_STATE_LAST_APPLIED_KEY, SM_STATE_MEMBERSHIP_KEY};
use crate::meta::{cf, hashed_refs, record_chunks, MetaError, MetaStore};

/// Version of [`SnapshotImage`]'s encoding. Bump it when the image
/// changes; an install refuses versions it does not know.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 4;

/// Key under which snapshot decode errors are reported (a snapshot has no
/// key of its own).
const SNAPSHOT_ERROR_KEY: &[u8] = b"snapshot";

/// What a snapshot carries, bincode-encoded. Keys and values are the raw
/// column family records (prost values), so building and installing never
/// re-encode a manifest.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotImage {
    /// First field, so it can be read before the rest is understood.
    format_version: u32,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    buckets: Records,
    objects: Records,
    uploads: Records,
    parts: Records,
    users: Records,
    /// Every chunk hash `objects` and `parts` refer to, sorted, each once:
    /// what an installing node must eventually hold in its blob log.
    blob_catalog: Vec<ChunkHash>,
}

/// The latest snapshot, as built or installed.
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

type CurrentSnapshot = Rc<RefCell<Option<StoredSnapshot>>>;

/// Bytes of the latest snapshot built or installed, for metrics.
pub(crate) type SnapshotSize = Rc<Cell<Option<u64>>>;

/// Raw `(key, value)` records of one column family.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// openraft's state machine over the metadata store.
pub struct StateMachine {
    node_id: NodeId,
    store: MetaStore,
    current: CurrentSnapshot,
    snapshot_size: SnapshotSize,
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
            store,
            current: Rc::new(RefCell::new(None)),
            snapshot_size: Rc::new(Cell::new(None)),
            release,
            directory: hooks.directory,
            blob_log: hooks.blob_log,
            catchup: hooks.catchup,
        }
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
    current: CurrentSnapshot,
    size: SnapshotSize,
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
                for (op, unix_ms) in ops {
                    outcomes.push(apply_op(db, &mut batch, &mut pending, op)?);
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

/// Every record of `family` in a snapshot view.
fn collect_family(db: &DB, view: &rocksdb::Snapshot<'_>, family: Cf) -> Result<Records, MetaError> {
    let mut iter = view.raw_iterator_cf(cf(db, family));
    iter.seek_to_first();
    let mut records = Vec::new();
    while let Some((key, value)) = iter.item() {
        records.push((key.to_vec(), value.to_vec()));
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("build_snapshot"))?;
    Ok(records)
}

/// Reads a consistent image of the applied state and encodes it.
fn build_image(db: &DB) -> Result<(Option<LogId>, StoredMembership, Vec<u8>), MetaError> {
    let view = db.snapshot();
    let sm_state = cf(db, Cf::SmState);
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, MetaError> {
        view.get_cf(sm_state, key)
            .map_err(MetaError::rocks("build_snapshot"))
    };
    let last_applied: Option<LogId> = read(SM_STATE_LAST_APPLIED_KEY)?
        .map(|v| decode(Cf::SmState, SM_STATE_LAST_APPLIED_KEY, &v))
        .transpose()?;
    let membership: StoredMembership = read(SM_STATE_MEMBERSHIP_KEY)?
        .map(|v| decode(Cf::SmState, SM_STATE_MEMBERSHIP_KEY, &v))
        .transpose()?
        .unwrap_or_default();
    let objects = collect_family(db, &view, Cf::Objects)?;
    let parts = collect_family(db, &view, Cf::Parts)?;
    let blob_catalog = blob_catalog(&objects, &parts)?;
    let image = SnapshotImage {
        format_version: SNAPSHOT_FORMAT_VERSION,
        last_applied,
        membership: membership.clone(),
        buckets: collect_family(db, &view, Cf::Buckets)?,
        objects,
        uploads: collect_family(db, &view, Cf::Uploads)?,
        parts,
        users: collect_family(db, &view, Cf::Users)?,
        blob_catalog,
    };
    Ok((last_applied, membership, encode(&image)))
}

/// The distinct chunk hashes the manifests and parts refer to, sorted.
fn blob_catalog(objects: &Records, parts: &Records) -> Result<Vec<ChunkHash>, MetaError> {
    let mut catalog = BTreeSet::new();
    for (family, records) in [(Cf::Objects, objects), (Cf::Parts, parts)] {
        for (key, value) in records {
            let chunks = record_chunks(family, key, value)?;
            catalog.extend(hashed_refs(&chunks).map(|(sha256, _)| sha256));
        }
    }
    Ok(catalog.into_iter().collect())
}

/// Decodes a snapshot image, refusing unknown format versions.
fn decode_image(data: &[u8]) -> Result<SnapshotImage, MetaError> {
    let version: u32 = decode(Cf::SmState, SNAPSHOT_ERROR_KEY, data)?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(MetaError::SnapshotVersion {
            found: version,
            supported: SNAPSHOT_FORMAT_VERSION,
        });
    }
    decode(Cf::SmState, SNAPSHOT_ERROR_KEY, data)
}

/// Adds to `batch` the deletion of every record of `family`.
fn clear_family(db: &DB, batch: &mut WriteBatch, family: Cf) -> Result<(), MetaError> {
    let handle = cf(db, family);
    let mut iter = db.raw_iterator_cf(handle);
    iter.seek_to_first();
    let first = iter.key().map(<[u8]>::to_vec);
    iter.seek_to_last();
    let last = iter.key().map(<[u8]>::to_vec);
    iter.status()
        .map_err(MetaError::rocks("install_snapshot"))?;
    if let (Some(first), Some(last)) = (first, last) {
        batch.delete_range_cf(handle, first, keys::successor(&last));
    }
    Ok(())
}

/// Replaces the applied state with the image, in one synced batch.
fn install_image(
    db: &DB,
    image: &SnapshotImage,
    meta: &SnapshotMeta<NodeId, BasicNode>,
) -> Result<(), MetaError> {
    let mut batch = WriteBatch::default();
    let families = [
        (Cf::Buckets, &image.buckets),
        (Cf::Objects, &image.objects),
        (Cf::Uploads, &image.uploads),
        (Cf::Parts, &image.parts),
        (Cf::Users, &image.users),
    ];
    for (family, _) in families {
        clear_family(db, &mut batch, family)?;
    }
    // Puts after the range deletions in the same batch win over them.
    for (family, records) in families {
        let handle = cf(db, family);
        for (key, value) in records {
            batch.put_cf(handle, key, value);
        }
    }
    // Counts are not in the image: they follow from its manifests and
    // parts. Chunks that were at zero here are no longer listed; the orphan
    // scan finds their bytes.
    refs::count_into(
        db,
        &mut batch,
        image.objects.iter().map(|(k, v)| (&k[..], &v[..])),
        image.parts.iter().map(|(k, v)| (&k[..], &v[..])),
    )?;
    let sm_state = cf(db, Cf::SmState);
    match meta.last_log_id {
        Some(last) => batch.put_cf(sm_state, SM_STATE_LAST_APPLIED_KEY, encode(&last)),
        None => batch.delete_cf(sm_state, SM_STATE_LAST_APPLIED_KEY),
    }
    batch.put_cf(
        sm_state,
        SM_STATE_MEMBERSHIP_KEY,
        encode(&meta.last_membership),
    );
    let mut opts = WriteOptions::default();
    // Rare and large: make it durable now rather than with the next append.
    opts.set_sync(true);
    db.write_opt(batch, &opts)
        .map_err(MetaError::rocks("install_snapshot"))
}

fn snapshot_id(last_applied: Option<LogId>) -> String {
    let built_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    match last_applied {
        Some(log_id) => format!(
            "{}-{}-{}",
            log_id.leader_id.term, log_id.index, built_unix_ms
        ),
        None => format!("0-0-{built_unix_ms}"),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (last_applied, membership, data) = self
            .store
            .blocking("build_snapshot", build_image)
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: snapshot_id(last_applied),
        };
        tracing::info!(
            snapshot = %meta,
            snapshot_bytes = data.len(),
            "built raft snapshot"
        );
        self.size.set(Some(data.len() as u64));
        *self.current.borrow_mut() = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
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
            current: Rc::clone(&self.current),
            size: Rc::clone(&self.snapshot_size),
            _release: self.release.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let install_meta = meta.clone();
        let directory = self.directory.clone();
        let (data, catalog) = self
            .store
            .blocking("install_snapshot", move |db| {
                let image = decode_image(&data)?;
                if image.last_applied != install_meta.last_log_id {
                    return Err(MetaError::decode(
                        Cf::SmState.name(),
                        SNAPSHOT_ERROR_KEY,
                        format!(
                            "image was taken at {:?} but its meta says {:?}",
                            image.last_applied, install_meta.last_log_id
                        ),
                    ));
                }
                install_image(db, &image, &install_meta)?;
                if let Some(directory) = directory {
                    directory.load(db)?;
                }
                Ok((data, image.blob_catalog))
            })
            .await
            .map_err(|e| {
                storage_error(
                    ErrorSubject::Snapshot(Some(meta.signature())),
                    ErrorVerb::Write,
                    e,
                )
            })?;
        tracing::info!(
            snapshot = %meta,
            snapshot_bytes = data.len(),
            catalog_chunks = catalog.len(),
            "installed raft snapshot"
        );
        if let Some(catchup) = &self.catchup {
            // No source hint: any member that has a chunk will do.
            catchup.offer(catalog.into_iter().map(|sha256| (sha256, NodeId(0))));
        }
        self.snapshot_size.set(Some(data.len() as u64));
        *self.current.borrow_mut() = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.current.borrow().as_ref().map(|stored| Snapshot {
            meta: stored.meta.clone(),
            snapshot: Box::new(Cursor::new(stored.data.clone())),
        }))
    }
}
