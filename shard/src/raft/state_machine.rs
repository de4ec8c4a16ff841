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
//! Snapshots hold the metadata only, never blob bytes, and are built and
//! sent whole, in memory (a `Cursor<Vec<u8>>`). The latest one is kept in
//! memory only: openraft rebuilds it at start when the log has been purged.
//! Streaming snapshots from a rocksdb checkpoint are future work; until
//! then a snapshot costs memory proportional to the shard's metadata.

use std::cell::RefCell;
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

use super::apply::{apply_op, Pending};
use super::codec::{decode, encode, storage_error};
use super::log_store::read_record;
use super::types::{
    ApplyOutcome, Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig,
};
use super::ReleaseToken;
use crate::directory::Directory;
use crate::meta::keys::{self, Cf, SM_STATE_LAST_APPLIED_KEY, SM_STATE_MEMBERSHIP_KEY};
use crate::meta::{cf, MetaError, MetaStore};

/// Version of [`SnapshotImage`]'s encoding. Bump it when the image
/// changes; an install refuses versions it does not know.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 3;

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
}

/// The latest snapshot, as built or installed.
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

type CurrentSnapshot = Rc<RefCell<Option<StoredSnapshot>>>;

/// Raw `(key, value)` records of one column family.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// openraft's state machine over the metadata store.
pub struct StateMachine {
    store: MetaStore,
    current: CurrentSnapshot,
    release: ReleaseToken,
    /// Where bucket and user changes are published (metadata shard only).
    directory: Option<Arc<Directory>>,
}

impl StateMachine {
    pub(crate) fn new(
        store: MetaStore,
        release: ReleaseToken,
        directory: Option<Arc<Directory>>,
    ) -> StateMachine {
        StateMachine {
            store,
            current: Rc::new(RefCell::new(None)),
            release,
            directory,
        }
    }
}

/// Builds snapshots from a consistent view of the store.
pub struct SnapshotBuilder {
    store: MetaStore,
    current: CurrentSnapshot,
    _release: ReleaseToken,
}

fn read_applied_state(db: &DB) -> Result<(Option<LogId>, StoredMembership), MetaError> {
    let last_applied = read_record(db, Cf::SmState, SM_STATE_LAST_APPLIED_KEY)?;
    let membership = read_record(db, Cf::SmState, SM_STATE_MEMBERSHIP_KEY)?.unwrap_or_default();
    Ok((last_applied, membership))
}

/// Applies `entries` (consecutive, committed) in one batch and returns one
/// outcome per entry.
fn apply_entries(
    db: &DB,
    entries: &[Entry],
    directory: Option<&Directory>,
) -> Result<Vec<ApplyOutcome>, MetaError> {
    let sm_state = cf(db, Cf::SmState);
    let mut batch = WriteBatch::default();
    let mut pending = Pending::default();
    let mut membership = None;
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let outcome = match &entry.payload {
            EntryPayload::Blank => ApplyOutcome::Applied,
            EntryPayload::Membership(m) => {
                membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                ApplyOutcome::Applied
            }
            EntryPayload::Normal(command) => {
                let key = keys::log_key(entry.log_id.index);
                let command = command
                    .decode()
                    .map_err(|e| MetaError::decode(Cf::RaftLog.name(), &key, e))?;
                let Some(op) = command.op else {
                    // A command this build does not know (a newer leader?):
                    // skipping it would diverge from the replicas that
                    // understand it, so the group stops instead.
                    return Err(MetaError::decode(
                        Cf::RaftLog.name(),
                        &key,
                        "MetaCommand without a known op",
                    ));
                };
                apply_op(db, &mut batch, &mut pending, op)?
            }
        };
        outcomes.push(outcome);
    }
    let last = entries.last().expect("apply is called with entries").log_id;
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
    let image = SnapshotImage {
        format_version: SNAPSHOT_FORMAT_VERSION,
        last_applied,
        membership: membership.clone(),
        buckets: collect_family(db, &view, Cf::Buckets)?,
        objects: collect_family(db, &view, Cf::Objects)?,
        uploads: collect_family(db, &view, Cf::Uploads)?,
        parts: collect_family(db, &view, Cf::Parts)?,
        users: collect_family(db, &view, Cf::Users)?,
    };
    Ok((last_applied, membership, encode(&image)))
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

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let directory = self.directory.clone();
        self.store
            .blocking("apply", move |db| {
                apply_entries(db, &entries, directory.as_deref())
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Apply(last), ErrorVerb::Write, e))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            current: Rc::clone(&self.current),
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
        let data = self
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
                Ok(data)
            })
            .await
            .map_err(|e| {
                storage_error(
                    ErrorSubject::Snapshot(Some(meta.signature())),
                    ErrorVerb::Write,
                    e,
                )
            })?;
        tracing::info!(snapshot = %meta, snapshot_bytes = data.len(), "installed raft snapshot");
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
