//! The metadata store: one rocksdb instance per shard (`docs/architecture.md`, "Metadata and raft").
//!
//! It owns everything a shard knows about its objects except their bytes:
//! the raft log and vote (`raft_log`, `raft_state`), the applied state
//! (`sm_state`, `buckets`, `objects`, multipart `uploads` and their
//! `parts`) and the local blob index (`blobs`:
//! SHA-256 → where the chunk sits in this node's blob log). The column
//! families and key encodings are in `keys.rs`; they are a storage format.
//!
//! **Threads.** A [`MetaStore`] is used from the shard's core (one glommio
//! executor), but rocksdb calls block (reads may hit the disk, synced writes
//! wait for an fsync, and a write may stall behind compaction), so no
//! rocksdb call runs on the executor thread. Every async method moves its
//! work, as one closure, to the executor's blocking pool
//! (`glommio::executor().spawn_blocking`) and awaits the result. We use that
//! pool rather than a thread of our own because it already is what a
//! dedicated thread would be: one thread per executor by default, pinned to
//! the executor's CPU set, fed through a bounded (4096) FIFO queue, and it
//! wakes the executor through its eventfd when a call finishes. A shard that
//! shares its core with others shares that thread too, which keeps rocksdb
//! from taking more CPUs than the node was given. Each logical operation is
//! one closure and one `WriteBatch`, so a hop (~0.1 ms) is paid per
//! operation, never per key.
//!
//! **Waits.** Callers may wait on rocksdb (via the pool) and on nothing
//! else. Only raft appends, vote saves, log truncation and snapshot installs
//! are synced; every other write relies on the ordering argument below.
//!
//! **Durability by WAL order.** All column families share one write-ahead
//! log, recovery replays a prefix of it (`PointInTime` recovery mode, set
//! explicitly), and a synced write syncs every WAL record before it. So an
//! unsynced write becomes durable no later than the next synced write on
//! the same store. The PUT path relies on this: blob locations are written
//! unsynced, then the object's manifest is proposed, and the raft append of
//! that entry is synced, so a committed manifest never points at an index
//! entry that a crash could lose. Applied state is also written unsynced:
//! after a crash it is rebuilt by re-applying the (synced) log.
//!
//! **Closing.** rocksdb closes when the last handle is dropped; closing may
//! wait for background work, so drop the last handle off the executor (or
//! accept a short stall at shutdown).

mod blob_index;
mod error;
pub(crate) mod keys;
mod read_compaction;
mod uploads;
mod versions;

#[cfg(test)]
mod no_space_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, Options, ReadOptions,
    WriteBatch, DB,
};
use shoal_proto::meta::{
    BlobLocation, BucketRecord, ChunkRef, ObjectListed, ObjectManifest, ObjectSize, UploadedPart,
};

pub(crate) use blob_index::index_into;
#[cfg(test)]
pub(crate) use blob_index::{may_forget, may_refer};
pub use blob_index::{IndexPage, LiveRecord, Unreferenced};
pub use error::MetaError;
use keys::Cf;
pub use keys::{is_upload_id, UPLOAD_ID_LEN};
pub use read_compaction::ReadCompactionStats;
use read_compaction::{IterationCost, ReadCompactions};
pub use versions::{VersionCursor, VersionSummary};

use crate::chunk_hash::ChunkHash;
use crate::ids::NodeId;
use crate::limits::{LIST_KEYS_MAX, META_OUT_OF_SPACE_WAIT_MAX, OUT_OF_SPACE_RETRY};

/// What one bucket holds on one shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub objects: u64,
    pub bytes: u64,
}

/// One shard's rocksdb instance. Cheap to clone (an `Arc` inside); every
/// clone is the same store.
#[derive(Clone)]
pub struct MetaStore {
    db: Arc<DB>,
    read_compactions: Arc<ReadCompactions>,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore")
            .field("path", &self.db.path())
            .finish()
    }
}

impl MetaStore {
    /// Opens (or creates) the store at `path` with all its column families.
    ///
    /// Blocks (it replays the WAL): call it before the executors start or
    /// from a blocking thread, never on an executor thread.
    pub fn open(path: &Path) -> Result<MetaStore, MetaError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        // The durability argument in the module docs needs prefix recovery.
        db_opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        // Memtables of every column family together: rocksdb's default
        // lets each of 13 families hold two 64 MiB memtables, which small
        // objects' raft entries and manifests (embedded bodies) fill fast.
        db_opts.set_db_write_buffer_size(crate::limits::SHARD_MEMTABLES_BYTES_MAX);
        let descriptors = Cf::ALL
            .iter()
            .map(|&cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf)));
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors)
            .map_err(MetaError::rocks("open"))?;
        let backfilled = blob_index::ensure_records(&db)?;
        if backfilled > 0 {
            tracing::info!(path = %path.display(), records = backfilled, "indexed blob records by location (first start of this version)");
        }
        Ok(MetaStore {
            db: Arc::new(db),
            read_compactions: Arc::default(),
        })
    }

    /// The store's directory.
    pub(crate) fn path(&self) -> &Path {
        self.db.path()
    }

    /// Runs `f` against the database on the executor's blocking pool.
    ///
    /// Must be called inside a glommio executor. A panic inside `f` is a
    /// bug; it is printed by the panic hook and comes back as
    /// [`MetaError::Blocking`] instead of killing the pool's thread (which
    /// would hang every later call).
    pub(crate) async fn blocking<R, F>(&self, op: &'static str, f: F) -> Result<R, MetaError>
    where
        F: FnOnce(&DB) -> Result<R, MetaError> + Send + 'static,
        R: Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let outcome = glommio::executor()
            .spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(move || f(&db))))
            .await;
        match outcome {
            Ok(result) => result,
            Err(panic) => Err(MetaError::Blocking {
                op,
                reason: panic_message(panic.as_ref()),
            }),
        }
    }

    /// Runs a write raft cannot go on without (a log append, a vote, an
    /// applied batch) like [`MetaStore::blocking`], but while the disk is
    /// full it waits and tries again every [`OUT_OF_SPACE_RETRY`], for at
    /// most [`META_OUT_OF_SPACE_WAIT_MAX`]: openraft stops a group for good
    /// on any storage error, and rocksdb resumes writing by itself once
    /// space is back (its file manager polls free space), so waiting is
    /// what lets the group go on without a restart. A leader that waits
    /// stops sending heartbeats, and a member with room takes over.
    pub(crate) async fn write_when_space<R, F>(
        &self,
        op: &'static str,
        write: F,
    ) -> Result<R, MetaError>
    where
        F: Fn(&DB) -> Result<R, MetaError> + Send + Sync + 'static,
        R: Send + 'static,
    {
        let write = Arc::new(write);
        let deadline = Instant::now() + META_OUT_OF_SPACE_WAIT_MAX;
        let mut waited = false;
        loop {
            let attempt = Arc::clone(&write);
            match self.blocking(op, move |db| attempt(db)).await {
                Err(e) if e.is_no_space() && Instant::now() < deadline => {
                    if !waited {
                        tracing::warn!(op, error = %e, "the metadata store found the disk full: waiting for space (delete objects, or free space on the file system)");
                        waited = true;
                    }
                    glommio::timer::sleep(OUT_OF_SPACE_RETRY).await;
                }
                outcome => {
                    if waited && outcome.is_ok() {
                        tracing::info!(op, "the metadata store has space again: writes resumed");
                    }
                    return outcome;
                }
            }
        }
    }

    /// Writes the memtables of every column family to disk and syncs the
    /// WAL, so the next start replays nothing (every write that matters is
    /// already synced when made: this is for a quick restart). On a
    /// blocking thread.
    pub async fn flush(&self) -> Result<(), MetaError> {
        self.blocking("flush", |db| {
            let families: Vec<_> = Cf::ALL.iter().map(|&c| cf(db, c)).collect();
            db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default())
                .map_err(MetaError::rocks("flush"))?;
            db.flush_wal(true).map_err(MetaError::rocks("flush_wal"))
        })
        .await
    }

    /// The bucket's record, if it exists.
    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        let name = name.to_owned();
        self.blocking("get_bucket", move |db| {
            get_decoded(db, Cf::Buckets, name.as_bytes())
        })
        .await
    }

    /// Every bucket of this shard, sorted by name (byte order).
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>, MetaError> {
        self.blocking("list_buckets", |db| {
            let mut iter = db.raw_iterator_cf(cf(db, Cf::Buckets));
            iter.seek_to_first();
            let mut buckets = Vec::new();
            while let Some((key, value)) = iter.item() {
                buckets.push(decode(Cf::Buckets, key, value)?);
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("list_buckets"))?;
            Ok(buckets)
        })
        .await
    }

    /// The object's manifest, if it exists.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectManifest>, MetaError> {
        let full_key = keys::object_key(bucket, key.as_bytes());
        self.blocking("get_object", move |db| {
            get_decoded(db, Cf::Objects, &full_key)
        })
        .await
    }

    /// What a listing shows of up to `limit` objects of `bucket` whose keys
    /// start with `prefix` and sort strictly after `after` (raw key bytes;
    /// any bytes, e.g. a common prefix followed by 0xFF), in key byte
    /// order. Each manifest is decoded as an [`ObjectListed`]: its chunk
    /// refs and embedded body are skipped, not copied.
    ///
    /// One page per call: the caller bounds `limit` (a listing asks each
    /// shard for at most a page, [`LIST_KEYS_MAX`]).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<ObjectListed>, MetaError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let full_prefix = keys::object_key(bucket, prefix.as_bytes());
        let start = keys::list_start(bucket, prefix.as_bytes(), after.as_deref());
        let end = keys::bucket_objects_end(bucket);
        let range = (keys::bucket_objects_prefix(bucket), end.clone());
        let (listed, hidden) = self
            .blocking("list_objects", move |db| {
                let cost = IterationCost::start();
                let mut read_opts = ReadOptions::default();
                // Keeps the iterator from walking into the next bucket (or
                // through its tombstones) once this bucket's keys run out.
                read_opts.set_iterate_upper_bound(end);
                let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Objects), read_opts);
                iter.seek(&start);
                let mut listed = Vec::with_capacity(limit.min(LIST_KEYS_MAX));
                while listed.len() < limit {
                    let Some((key, value)) = iter.item() else {
                        break;
                    };
                    if !key.starts_with(&full_prefix) {
                        break;
                    }
                    listed.push(decode::<ObjectListed>(Cf::Objects, key, value)?);
                    iter.next();
                }
                iter.status().map_err(MetaError::rocks("list_objects"))?;
                let hidden = cost.hidden(listed.len());
                Ok((listed, hidden))
            })
            .await?;
        self.read_compactions
            .note(&self.db, Cf::Objects, range, listed.len(), hidden);
        Ok(listed)
    }

    /// What this store's listings found and the compactions they asked
    /// for (`read_compaction.rs`).
    pub fn read_compaction_stats(&self) -> Arc<ReadCompactionStats> {
        Arc::clone(&self.read_compactions.stats)
    }

    /// Objects and bytes of every bucket with objects on this shard: one
    /// pass over the `objects` column family that decodes only each
    /// manifest's size. Costs a blocking thread about a second per million
    /// objects; [`crate::usage`] keeps the answer for a while.
    /// With `only`, just that bucket's key range is read.
    pub async fn bucket_usage(
        &self,
        only: Option<&str>,
    ) -> Result<BTreeMap<String, BucketUsage>, MetaError> {
        let range = only.map(|bucket| {
            (
                keys::bucket_objects_prefix(bucket),
                keys::bucket_objects_end(bucket),
            )
        });
        self.blocking("bucket_usage", move |db| {
            let mut usage: BTreeMap<String, BucketUsage> = BTreeMap::new();
            let mut read_opts = ReadOptions::default();
            let start = match range {
                Some((start, end)) => {
                    read_opts.set_iterate_upper_bound(end);
                    start
                }
                None => Vec::new(),
            };
            let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Objects), read_opts);
            iter.seek(&start);
            while let Some((key, value)) = iter.item() {
                let bucket = key
                    .split(|&b| b == keys::BUCKET_KEY_SEPARATOR)
                    .next()
                    .unwrap_or_default();
                let size: ObjectSize = decode(Cf::Objects, key, value)?;
                let bucket = String::from_utf8_lossy(bucket);
                let entry = match usage.get_mut(bucket.as_ref()) {
                    Some(entry) => entry,
                    None => usage.entry(bucket.into_owned()).or_default(),
                };
                entry.objects += 1;
                entry.bytes += size.size_bytes;
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("bucket_usage"))?;
            Ok(usage)
        })
        .await
    }

    /// One page of a scan through every manifest (current versions, then
    /// the others), then every part, for chunk refs whose chunk is not in
    /// this node's blob index: at most `records_max` records from `from`
    /// on. Returns `(sha256, source node)` of the missing chunks and where
    /// the next page starts (`None` once the scan is done).
    pub async fn missing_chunks(
        &self,
        from: ChunkScan,
        records_max: usize,
    ) -> Result<(Vec<(ChunkHash, NodeId)>, Option<ChunkScan>), MetaError> {
        self.blocking("missing_chunks", move |db| {
            let family = CHUNK_SCAN_FAMILIES[from.family];
            let mut iter = db.raw_iterator_cf(cf(db, family));
            match &from.after {
                Some(after) => {
                    iter.seek(keys::successor(after));
                }
                None => iter.seek_to_first(),
            }
            let mut refs = Vec::new();
            let mut last = None;
            let mut records = 0;
            while records < records_max {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                refs.extend(hashed_refs(&record_chunks(family, key, value)?));
                last = Some(key.to_vec());
                records += 1;
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("missing_chunks"))?;
            refs.sort_unstable();
            refs.dedup_by_key(|(hash, _)| *hash);
            let blobs = cf(db, Cf::Blobs);
            let found = db.multi_get_cf(refs.iter().map(|(hash, _)| (blobs, hash.as_bytes())));
            let mut missing = Vec::new();
            for (chunk, found) in refs.into_iter().zip(found) {
                if found.map_err(MetaError::rocks("missing_chunks"))?.is_none() {
                    missing.push(chunk);
                }
            }
            let next = if records == records_max {
                Some(ChunkScan {
                    family: from.family,
                    after: last,
                })
            } else if from.family + 1 < CHUNK_SCAN_FAMILIES.len() {
                Some(ChunkScan {
                    family: from.family + 1,
                    after: None,
                })
            } else {
                None
            };
            Ok((missing, next))
        })
        .await
    }

    /// `bucket/key` of up to `names_max` objects on this shard whose
    /// manifests name `hash`: what an operator needs to hear about a chunk
    /// that is damaged beyond repair. Reads every manifest, so it is for
    /// that rare case only.
    pub async fn objects_naming(
        &self,
        hash: ChunkHash,
        names_max: usize,
    ) -> Result<Vec<String>, MetaError> {
        self.blocking("objects_naming", move |db| {
            let mut names = Vec::new();
            for family in [Cf::Objects, Cf::Versions] {
                let mut iter = db.raw_iterator_cf(cf(db, family));
                iter.seek_to_first();
                while names.len() < names_max {
                    let Some((key, value)) = iter.item() else {
                        break;
                    };
                    let chunks = record_chunks(family, key, value)?;
                    if hashed_refs(&chunks).any(|(named, _)| named == hash) {
                        let object_key = match family {
                            Cf::Versions => keys::versioned_object_key(key).unwrap_or(key),
                            _ => key,
                        };
                        names.push(keys::object_name(object_key));
                    }
                    iter.next();
                }
                iter.status().map_err(MetaError::rocks("objects_naming"))?;
            }
            Ok(names)
        })
        .await
    }

    /// Whether `bucket` holds at least one object on this shard: a
    /// current version, or a noncurrent one or delete marker (S3 deletes
    /// only a bucket without any).
    pub async fn bucket_has_objects(&self, bucket: &str) -> Result<bool, MetaError> {
        let prefix = keys::bucket_objects_prefix(bucket);
        let end = keys::bucket_objects_end(bucket);
        self.blocking("bucket_has_objects", move |db| {
            for family in [Cf::Objects, Cf::Versions] {
                let mut read_opts = ReadOptions::default();
                read_opts.set_iterate_upper_bound(end.clone());
                let mut iter = db.raw_iterator_cf_opt(cf(db, family), read_opts);
                iter.seek(&prefix);
                let found = iter.valid();
                iter.status()
                    .map_err(MetaError::rocks("bucket_has_objects"))?;
                if found {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Whether the last stop left the mark that every chunk was at hand
    /// (see [`keys::SM_STATE_CHUNKS_COMPLETE_KEY`]); the mark is removed
    /// (synced), so a crash after this start audits again.
    pub async fn take_chunks_complete_mark(&self) -> Result<bool, MetaError> {
        self.blocking("take_chunks_complete_mark", |db| {
            let handle = cf(db, Cf::SmState);
            let key = keys::SM_STATE_CHUNKS_COMPLETE_KEY;
            let found = db
                .get_pinned_cf(handle, key)
                .map_err(MetaError::rocks("take_chunks_complete_mark"))?
                .is_some();
            if found {
                let mut batch = WriteBatch::default();
                batch.delete_cf(handle, key);
                write_synced(db, batch, "take_chunks_complete_mark")?;
            }
            Ok(found)
        })
        .await
    }

    /// Leaves the mark that every chunk is at hand, for the next start.
    pub async fn mark_chunks_complete(&self) -> Result<(), MetaError> {
        self.blocking("mark_chunks_complete", |db| {
            let mut batch = WriteBatch::default();
            batch.put_cf(cf(db, Cf::SmState), keys::SM_STATE_CHUNKS_COMPLETE_KEY, []);
            write_synced(db, batch, "mark_chunks_complete")
        })
        .await
    }

    /// Records where chunks sit in this node's blob log, in one batch.
    ///
    /// Not synced unless `sync`: on the PUT path the entries become durable
    /// with the next synced write on this store, the raft append of the
    /// manifest that refers to them (see the module docs). A chunk pushed
    /// by the leader has no such write coming, so its entry is synced
    /// before the push is acknowledged.
    pub async fn put_blob_locations(
        &self,
        locations: Vec<(ChunkHash, BlobLocation)>,
        sync: bool,
    ) -> Result<(), MetaError> {
        if locations.is_empty() {
            return Ok(());
        }
        self.blocking("put_blob_locations", move |db| {
            let mut batch = WriteBatch::default();
            for (hash, location) in &locations {
                index_into(db, &mut batch, hash, location);
            }
            let mut opts = rocksdb::WriteOptions::default();
            opts.set_sync(sync);
            db.write_opt(batch, &opts)
                .map_err(MetaError::rocks("put_blob_locations"))
        })
        .await
    }

    /// Where the chunk with this SHA-256 sits in this node's blob log.
    pub async fn get_blob_location(
        &self,
        hash: &ChunkHash,
    ) -> Result<Option<BlobLocation>, MetaError> {
        let hash = *hash;
        self.blocking("get_blob_location", move |db| {
            get_decoded(db, Cf::Blobs, hash.as_bytes())
        })
        .await
    }

    /// How many handles (clones) of this store are alive. Restart code
    /// uses it to check that nothing still holds the database.
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.db)
    }
}

/// Where a [`MetaStore::missing_chunks`] scan goes on: after `after` in
/// the family `CHUNK_SCAN_FAMILIES[family]`, then in the next ones. The
/// default is the start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkScan {
    family: usize,
    after: Option<Vec<u8>>,
}

/// The families whose records hold chunk refs, in the order a scan for
/// missing chunks reads them.
const CHUNK_SCAN_FAMILIES: [Cf; 3] = [Cf::Objects, Cf::Versions, Cf::Parts];

/// Options of one column family.
fn cf_options(cf: Cf) -> Options {
    let mut opts = Options::default();
    let compression = match cf {
        // Raft entries live briefly (until a snapshot lets them be purged)
        // and the small state records are rewritten constantly: compressing
        // them costs CPU on the commit path for no lasting gain.
        Cf::RaftLog | Cf::RaftState | Cf::SmState => DBCompressionType::None,
        Cf::Buckets
        | Cf::Objects
        | Cf::Versions
        | Cf::Blobs
        | Cf::Uploads
        | Cf::Parts
        | Cf::Users => DBCompressionType::Lz4,
        // Hashes, locations and a few varints: nothing there compresses.
        Cf::ChunkRefs | Cf::ZeroRefs | Cf::BlobRecords | Cf::Collected => DBCompressionType::None,
    };
    opts.set_compression_type(compression);
    opts
}

/// The handle of a column family. Every family is created by
/// [`MetaStore::open`], so a missing one is a bug.
pub(crate) fn cf(db: &DB, cf: Cf) -> &ColumnFamily {
    db.cf_handle(cf.name())
        .unwrap_or_else(|| panic!("column family {} was not opened", cf.name()))
}

/// Decodes a prost record read from `cf` at `key`.
pub(crate) fn decode<M: Message + Default>(
    cf: Cf,
    key: &[u8],
    value: &[u8],
) -> Result<M, MetaError> {
    M::decode(value).map_err(|e| MetaError::decode(cf.name(), key, e))
}

/// The chunk refs of an `objects` (manifest) or `parts` record.
pub(crate) fn record_chunks(
    family: Cf,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<ChunkRef>, MetaError> {
    match family {
        Cf::Objects | Cf::Versions => Ok(decode::<ObjectManifest>(family, key, value)?.chunks),
        Cf::Parts => Ok(decode::<UploadedPart>(family, key, value)?.chunks),
        other => unreachable!("{} holds no chunk refs", other.name()),
    }
}

/// `(sha256, source node)` of each ref whose hash is well formed.
pub(crate) fn hashed_refs(chunks: &[ChunkRef]) -> impl Iterator<Item = (ChunkHash, NodeId)> + '_ {
    chunks.iter().filter_map(|c| {
        let sha256 = ChunkHash::from_slice(&c.sha256)?;
        Some((sha256, NodeId(c.source_node)))
    })
}

/// Writes `batch` and syncs the WAL before returning: for rare writes that
/// must be durable at once rather than with the next synced raft append.
pub(crate) fn write_synced(db: &DB, batch: WriteBatch, op: &'static str) -> Result<(), MetaError> {
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).map_err(MetaError::rocks(op))
}

/// Reads and decodes one prost record.
pub(crate) fn get_decoded<M: Message + Default>(
    db: &DB,
    family: Cf,
    key: &[u8],
) -> Result<Option<M>, MetaError> {
    let value = db
        .get_pinned_cf(cf(db, family), key)
        .map_err(MetaError::rocks("get"))?;
    value.map(|v| decode(family, key, &v)).transpose()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
