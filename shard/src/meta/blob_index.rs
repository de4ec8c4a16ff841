//! The local blob index: where this node's blob log holds each chunk
//! (`blobs`: hash → location) and, the other way, which hash each record
//! was indexed for (`blob_records`: location → hash and size).
//!
//! `blobs` answers reads. `blob_records` lets the reclaimer list the
//! records of one segment without scanning every hash. It is written in the
//! same batch as `blobs`, without reading anything first, so it may keep
//! entries that `blobs` no longer points back at (the chunk was stored
//! again elsewhere, or forgotten): a record is live only while
//! `blobs[hash]` equals its location, and [`MetaStore::segment_records`]
//! checks exactly that, removing the stale entries it meets.
//!
//! **Why a dead record stays dead.** A location is written into `blobs`
//! only by the append that created its record (under a hold that keeps the
//! reclaimer out of its segment until the index write is done). After
//! `blobs[hash]` moves away from a location, nothing ever points it back,
//! so a record seen dead by the reclaimer can be released at once.

use prost::Message;
use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{BlobLocation, ChunkRefCount};

use super::keys::{self, Cf};
use super::{cf, get_decoded, write_synced, MetaError, MetaStore};
use crate::chunk_hash::ChunkHash;

/// One record of a segment that the index still points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveRecord {
    pub hash: ChunkHash,
    pub offset_bytes: u64,
    pub size_bytes: u32,
}

/// An indexed chunk that no count names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreferenced {
    pub hash: ChunkHash,
    pub at: BlobLocation,
    /// The group collected it (after its grace); else it never had a ref
    /// (an orphan) or its collect entry was applied before a restart of a
    /// store that did not keep the mark.
    pub collected: bool,
}

/// A page of the index, as the sweeper reads it.
#[derive(Debug, Default)]
pub struct IndexPage {
    /// Indexed chunks that no count names: never referenced, or collected.
    pub unreferenced: Vec<Unreferenced>,
    /// Entries read.
    pub entries: usize,
    /// Payload bytes of every entry read.
    pub payload_bytes: u64,
    /// Where the next page starts; `None` after the last.
    pub next: Option<ChunkHash>,
}

/// Puts `hash → at` into `blobs` and its `blob_records` entry into `batch`.
pub(crate) fn index_into(db: &DB, batch: &mut WriteBatch, hash: &ChunkHash, at: &BlobLocation) {
    batch.put_cf(cf(db, Cf::Blobs), hash.as_bytes(), at.encode_to_vec());
    batch.put_cf(
        cf(db, Cf::BlobRecords),
        keys::blob_record_key(at.segment, at.offset_bytes),
        record_value(hash, at.size_bytes),
    );
}

/// Removes `hash`'s index entry at `at`, its `blob_records` entry and its
/// collected mark, in `batch`.
fn unindex_into(db: &DB, batch: &mut WriteBatch, hash: &ChunkHash, at: &BlobLocation) {
    batch.delete_cf(cf(db, Cf::Blobs), hash.as_bytes());
    batch.delete_cf(cf(db, Cf::Collected), hash.as_bytes());
    batch.delete_cf(
        cf(db, Cf::BlobRecords),
        keys::blob_record_key(at.segment, at.offset_bytes),
    );
}

fn record_value(hash: &ChunkHash, size_bytes: u32) -> [u8; 36] {
    let mut value = [0u8; 36];
    value[..32].copy_from_slice(hash.as_bytes());
    value[32..].copy_from_slice(&size_bytes.to_be_bytes());
    value
}

fn decode_record(key: &[u8], value: &[u8]) -> Result<(ChunkHash, u32), MetaError> {
    let bad = || MetaError::decode(Cf::BlobRecords.name(), key, "not a hash and a size");
    let value: &[u8; 36] = value.try_into().map_err(|_| bad())?;
    let hash = ChunkHash::from_slice(&value[..32]).ok_or_else(bad)?;
    let size = u32::from_be_bytes(value[32..].try_into().expect("4 bytes"));
    Ok((hash, size))
}

/// Gives every `blobs` entry its `blob_records` entry, once per store (a
/// store written before `blob_records` existed); returns how many it
/// wrote. Must finish before the reclaimer first runs: a record without an
/// entry would look dead. Runs at open, before anything else uses the store.
pub(crate) fn ensure_records(db: &DB) -> Result<u64, MetaError> {
    let records = cf(db, Cf::BlobRecords);
    let done = db
        .get_cf(records, keys::BLOB_RECORDS_COMPLETE_KEY)
        .map_err(MetaError::rocks("ensure_records"))?;
    if done.is_some() {
        return Ok(0);
    }
    let mut batch = WriteBatch::default();
    let mut written = 0;
    let mut iter = db.raw_iterator_cf(cf(db, Cf::Blobs));
    iter.seek_to_first();
    while let Some((key, value)) = iter.item() {
        if let Some(hash) = ChunkHash::from_slice(key) {
            let at: BlobLocation = super::decode(Cf::Blobs, key, value)?;
            batch.put_cf(
                records,
                keys::blob_record_key(at.segment, at.offset_bytes),
                record_value(&hash, at.size_bytes),
            );
            written += 1;
        }
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("ensure_records"))?;
    batch.put_cf(records, keys::BLOB_RECORDS_COMPLETE_KEY, []);
    db.write(batch)
        .map_err(MetaError::rocks("ensure_records"))?;
    Ok(written)
}

/// Whether the sweeper may forget a chunk it saw unreferenced at `at`:
/// only if the index still points there (stored again elsewhere, it is a
/// new record with a clock of its own) and no count names it (referred to
/// again, or not yet collected).
pub(crate) fn may_forget(indexed: Option<&BlobLocation>, at: &BlobLocation, counted: bool) -> bool {
    indexed == Some(at) && !counted
}

/// Whether a commit may refer to a chunk (pinned by then): indexed here,
/// or kept alive by a count above zero (another member holds it, and
/// catch-up brings it here).
pub(crate) fn may_refer(indexed: bool, count: Option<&ChunkRefCount>) -> bool {
    indexed || count.is_some_and(|c| c.count > 0)
}

impl MetaStore {
    /// Up to `max` index entries after `after` (from the first when
    /// `None`), with those that no reference count names.
    pub async fn index_page(
        &self,
        after: Option<ChunkHash>,
        max: usize,
    ) -> Result<IndexPage, MetaError> {
        self.blocking("index_page", move |db| {
            let mut iter = db.raw_iterator_cf(cf(db, Cf::Blobs));
            match after {
                Some(after) => {
                    iter.seek(keys::successor(after.as_bytes()));
                }
                None => iter.seek_to_first(),
            }
            let mut page = IndexPage::default();
            let mut entries = Vec::with_capacity(max);
            while page.entries < max {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                page.entries += 1;
                if let Some(hash) = ChunkHash::from_slice(key) {
                    let at: BlobLocation = super::decode(Cf::Blobs, key, value)?;
                    page.payload_bytes += u64::from(at.size_bytes);
                    entries.push((hash, at));
                }
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("index_page"))?;
            if page.entries == max {
                page.next = entries.last().map(|(hash, _)| *hash);
            }
            let counts = cf(db, Cf::ChunkRefs);
            let found = db.multi_get_cf(entries.iter().map(|(hash, _)| (counts, hash.as_bytes())));
            let mut unreferenced = Vec::new();
            for (entry, found) in entries.into_iter().zip(found) {
                if found.map_err(MetaError::rocks("index_page"))?.is_none() {
                    unreferenced.push(entry);
                }
            }
            let marks = cf(db, Cf::Collected);
            let marked = db.multi_get_cf(
                unreferenced
                    .iter()
                    .map(|(hash, _)| (marks, hash.as_bytes())),
            );
            for ((hash, at), marked) in unreferenced.into_iter().zip(marked) {
                let collected = marked.map_err(MetaError::rocks("index_page"))?.is_some();
                page.unreferenced.push(Unreferenced {
                    hash,
                    at,
                    collected,
                });
            }
            Ok(page)
        })
        .await
    }

    /// How many chunks are at zero references, waiting out their grace
    /// before a collect; counted up to `max` (a bounded scan of the zero
    /// list, run once per sweep).
    pub async fn zero_refs_count(&self, max: u64) -> Result<u64, MetaError> {
        self.blocking("zero_refs_count", move |db| {
            let mut iter = db.raw_iterator_cf(cf(db, Cf::ZeroRefs));
            iter.seek_to_first();
            let mut count = 0;
            while count < max && iter.valid() {
                count += 1;
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("zero_refs_count"))?;
            Ok(count)
        })
        .await
    }

    /// Removes each `(hash, at)` from the index (and its collected mark),
    /// in one write, if the index still points there and no count names
    /// it ([`may_forget`], checked in the same call); returns which it
    /// removed.
    pub async fn forget_blobs(
        &self,
        places: Vec<(ChunkHash, BlobLocation)>,
    ) -> Result<Vec<bool>, MetaError> {
        self.blocking("forget_blobs", move |db| {
            let mut batch = WriteBatch::default();
            let mut forgot = Vec::with_capacity(places.len());
            for (hash, at) in &places {
                let indexed: Option<BlobLocation> = get_decoded(db, Cf::Blobs, hash.as_bytes())?;
                let counted = db
                    .get_pinned_cf(cf(db, Cf::ChunkRefs), hash.as_bytes())
                    .map_err(MetaError::rocks("forget_blobs"))?
                    .is_some();
                let forget = may_forget(indexed.as_ref(), at, counted);
                if forget {
                    unindex_into(db, &mut batch, hash, at);
                }
                forgot.push(forget);
            }
            if !batch.is_empty() {
                db.write(batch).map_err(MetaError::rocks("forget_blobs"))?;
            }
            Ok(forgot)
        })
        .await
    }

    /// One page of the index in blob-log order (by segment, then offset):
    /// up to `records_max` records after `after` that the index still
    /// points at, and where the next page starts (`None` after the last).
    /// The scrub walks the log this way, so its reads move forward on disk.
    pub async fn records_page(
        &self,
        after: Option<(u64, u64)>,
        records_max: usize,
    ) -> Result<(Vec<(ChunkHash, BlobLocation)>, Option<(u64, u64)>), MetaError> {
        self.blocking("records_page", move |db| {
            let records = cf(db, Cf::BlobRecords);
            let mut read_opts = rocksdb::ReadOptions::default();
            read_opts.set_iterate_upper_bound(keys::BLOB_RECORDS_COMPLETE_KEY.to_vec());
            let mut iter = db.raw_iterator_cf_opt(records, read_opts);
            match after {
                Some((segment, offset_bytes)) => iter.seek(keys::successor(
                    &keys::blob_record_key(segment, offset_bytes),
                )),
                None => iter.seek_to_first(),
            }
            let mut found = Vec::new();
            while found.len() < records_max {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                let (segment, offset_bytes) = keys::blob_record_place(key).ok_or_else(|| {
                    MetaError::decode(Cf::BlobRecords.name(), key, "key is not 16 bytes")
                })?;
                let (hash, size_bytes) = decode_record(key, value)?;
                let at = BlobLocation {
                    segment,
                    offset_bytes,
                    size_bytes,
                };
                found.push((hash, at));
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("records_page"))?;
            let next = (found.len() == records_max)
                .then(|| found.last().map(|(_, at)| (at.segment, at.offset_bytes)))
                .flatten();
            let blobs = cf(db, Cf::Blobs);
            let indexed = db.multi_get_cf(found.iter().map(|(hash, _)| (blobs, hash.as_bytes())));
            let mut live = Vec::with_capacity(found.len());
            for ((hash, at), indexed) in found.into_iter().zip(indexed) {
                if let Some(value) = indexed.map_err(MetaError::rocks("records_page"))? {
                    let current: BlobLocation = super::decode(Cf::Blobs, hash.as_bytes(), &value)?;
                    if current == at {
                        live.push((hash, at));
                    }
                }
            }
            Ok((live, next))
        })
        .await
    }

    /// Removes `hash` from the index if it still points at `at` (a record
    /// found damaged); a synced write. Returns whether it did.
    pub async fn forget_damaged(
        &self,
        hash: ChunkHash,
        at: BlobLocation,
    ) -> Result<bool, MetaError> {
        self.blocking("forget_damaged", move |db| {
            let indexed: Option<BlobLocation> = get_decoded(db, Cf::Blobs, hash.as_bytes())?;
            if indexed != Some(at) {
                return Ok(false);
            }
            let mut batch = WriteBatch::default();
            unindex_into(db, &mut batch, &hash, &at);
            write_synced(db, batch, "forget_damaged")?;
            Ok(true)
        })
        .await
    }

    /// After the blob log's recovery: removes from the index every chunk
    /// whose indexed record `readable` says is gone (cut off the newest
    /// segment, in a damaged range, or in a segment that is missing), in
    /// one synced write, and returns them. The entries of segments that
    /// `intact` says are whole are skipped without being read, so this
    /// reads only the newest segment's entries and those of missing ones.
    pub async fn forget_unreadable(
        &self,
        intact: impl Fn(u64) -> bool + Send + 'static,
        readable: impl Fn(BlobLocation) -> bool + Send + 'static,
    ) -> Result<Vec<(ChunkHash, BlobLocation)>, MetaError> {
        self.blocking("forget_unreadable", move |db| {
            let records = cf(db, Cf::BlobRecords);
            let mut iter = db.raw_iterator_cf(records);
            iter.seek_to_first();
            let mut lost = Vec::new();
            while let Some((key, value)) = iter.item() {
                if key == keys::BLOB_RECORDS_COMPLETE_KEY {
                    break; // sorts after every record
                }
                let (segment, offset_bytes) = keys::blob_record_place(key).ok_or_else(|| {
                    MetaError::decode(Cf::BlobRecords.name(), key, "key is not 16 bytes")
                })?;
                if intact(segment) {
                    iter.seek(segment_end(segment));
                    continue;
                }
                let (hash, size_bytes) = decode_record(key, value)?;
                let at = BlobLocation {
                    segment,
                    offset_bytes,
                    size_bytes,
                };
                if !readable(at) {
                    let indexed: Option<BlobLocation> =
                        get_decoded(db, Cf::Blobs, hash.as_bytes())?;
                    if indexed == Some(at) {
                        lost.push((hash, at));
                    }
                }
                iter.next();
            }
            iter.status()
                .map_err(MetaError::rocks("forget_unreadable"))?;
            if lost.is_empty() {
                return Ok(lost);
            }
            let mut batch = WriteBatch::default();
            for (hash, at) in &lost {
                unindex_into(db, &mut batch, hash, at);
            }
            write_synced(db, batch, "forget_unreadable")?;
            Ok(lost)
        })
        .await
    }

    /// Points `hash` at `to` (a copy the compactor wrote) instead of
    /// `from`, if the index still points at `from`; a synced write, since
    /// `from`'s segment is deleted next. Returns whether it moved.
    pub async fn move_blob(
        &self,
        hash: ChunkHash,
        from: BlobLocation,
        to: BlobLocation,
    ) -> Result<bool, MetaError> {
        self.blocking("move_blob", move |db| {
            let indexed: Option<BlobLocation> = get_decoded(db, Cf::Blobs, hash.as_bytes())?;
            if indexed != Some(from) {
                return Ok(false);
            }
            let mut batch = WriteBatch::default();
            index_into(db, &mut batch, &hash, &to);
            batch.delete_cf(
                cf(db, Cf::BlobRecords),
                keys::blob_record_key(from.segment, from.offset_bytes),
            );
            write_synced(db, batch, "move_blob")?;
            Ok(true)
        })
        .await
    }

    /// For each of `hashes`, whether a commit may refer to it: the chunk
    /// is indexed here, or a count of at least one says committed refs
    /// keep it alive on the members that hold it.
    pub async fn chunks_present(&self, hashes: Vec<ChunkHash>) -> Result<Vec<bool>, MetaError> {
        self.blocking("chunks_present", move |db| {
            let blobs = cf(db, Cf::Blobs);
            let indexed = db.multi_get_cf(hashes.iter().map(|h| (blobs, h.as_bytes())));
            let mut present = Vec::with_capacity(hashes.len());
            for (hash, indexed) in hashes.iter().zip(indexed) {
                let indexed = indexed
                    .map_err(MetaError::rocks("chunks_present"))?
                    .is_some();
                let count: Option<ChunkRefCount> = match indexed {
                    true => None, // not needed
                    false => get_decoded(db, Cf::ChunkRefs, hash.as_bytes())?,
                };
                present.push(may_refer(indexed, count.as_ref()));
            }
            Ok(present)
        })
        .await
    }

    /// Whether any count names `hash` (it has refs, or is still in its
    /// grace period): a chunk that is not counted was collected, or never
    /// committed, and is not worth fetching.
    pub async fn is_counted(&self, hash: ChunkHash) -> Result<bool, MetaError> {
        self.blocking("is_counted", move |db| {
            let counted = db
                .get_pinned_cf(cf(db, Cf::ChunkRefs), hash.as_bytes())
                .map_err(MetaError::rocks("is_counted"))?;
            Ok(counted.is_some())
        })
        .await
    }

    /// The records of `segment` that the index points at, in offset
    /// order. Entries it finds stale are removed.
    pub async fn segment_records(&self, segment: u64) -> Result<Vec<LiveRecord>, MetaError> {
        self.blocking("segment_records", move |db| {
            let records = cf(db, Cf::BlobRecords);
            let mut read_opts = rocksdb::ReadOptions::default();
            read_opts.set_iterate_upper_bound(segment_end(segment));
            let mut iter = db.raw_iterator_cf_opt(records, read_opts);
            iter.seek(keys::blob_record_key(segment, 0));
            let mut found = Vec::new();
            while let Some((key, value)) = iter.item() {
                let (_, offset_bytes) = keys::blob_record_place(key).ok_or_else(|| {
                    MetaError::decode(Cf::BlobRecords.name(), key, "key is not 16 bytes")
                })?;
                let (hash, size_bytes) = decode_record(key, value)?;
                found.push((hash, offset_bytes, size_bytes));
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("segment_records"))?;
            let blobs = cf(db, Cf::Blobs);
            let indexed =
                db.multi_get_cf(found.iter().map(|(hash, _, _)| (blobs, hash.as_bytes())));
            let mut live = Vec::new();
            let mut stale = WriteBatch::default();
            for ((hash, offset_bytes, size_bytes), indexed) in found.into_iter().zip(indexed) {
                let points_here = match indexed.map_err(MetaError::rocks("segment_records"))? {
                    Some(value) => {
                        let at: BlobLocation = super::decode(Cf::Blobs, hash.as_bytes(), &value)?;
                        at.segment == segment && at.offset_bytes == offset_bytes
                    }
                    None => false,
                };
                if points_here {
                    live.push(LiveRecord {
                        hash,
                        offset_bytes,
                        size_bytes,
                    });
                } else {
                    stale.delete_cf(records, keys::blob_record_key(segment, offset_bytes));
                }
            }
            if !stale.is_empty() {
                db.write(stale)
                    .map_err(MetaError::rocks("segment_records"))?;
            }
            Ok(live)
        })
        .await
    }
}

/// The first `blob_records` key past `segment`'s.
fn segment_end(segment: u64) -> Vec<u8> {
    match segment.checked_add(1) {
        Some(next) => keys::blob_record_key(next, 0).to_vec(),
        None => keys::BLOB_RECORDS_COMPLETE_KEY.to_vec(),
    }
}
