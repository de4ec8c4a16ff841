//! Chunk reference counts: how many committed object manifests and upload
//! parts of a shard name each chunk (`chunk_refs`), and which chunks no
//! longer have any, since when (`zero_refs`). The collector reads the
//! latter; see `docs/architecture.md`, "The life of a chunk".
//!
//! Counts are part of the applied state. Each entry's changes are summed
//! first ([`RefDeltas`]: an ACL change that rewrites a manifest is -1 +1,
//! not a trip through zero) and then settled into the same write batch as
//! the manifests and parts that caused them, so a count can never disagree
//! with the refs it counts, on any member, after any crash.
//!
//! A count that drops to zero remembers the entry's index and its
//! leader-stamped time (`MetaCommand.proposed_unix_ms`): apply never reads
//! a clock, so every member records the same. A later ref to the same
//! chunk takes it off the zero list; the collector only ever drops a chunk
//! whose count is still zero *from the same index*.

use std::collections::HashMap;

use prost::Message;
use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{ChunkRef, ChunkRefCount, CollectChunk, ObjectManifest, UploadedPart};

use crate::chunk_hash::ChunkHash;
use crate::meta::keys::{self, Cf, SM_STATE_REFS_COUNTED_KEY};
use crate::meta::{cf, decode, get_decoded, hashed_refs, MetaError};

/// One record of a column family, as rocksdb's iterator yields it.
type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Changes to counts one entry makes, summed per chunk.
#[derive(Debug, Default)]
pub(crate) struct RefDeltas(HashMap<ChunkHash, i64>);

impl RefDeltas {
    /// Counts one ref for each of `chunks` (a chunk named twice counts
    /// twice).
    pub fn add(&mut self, chunks: &[ChunkRef]) {
        for (hash, _) in hashed_refs(chunks) {
            *self.0.entry(hash).or_default() += 1;
        }
    }

    /// Drops one ref for each of `chunks`.
    pub fn remove(&mut self, chunks: &[ChunkRef]) {
        for (hash, _) in hashed_refs(chunks) {
            *self.0.entry(hash).or_default() -= 1;
        }
    }
}

/// Counts as earlier entries of the batch being built left them.
#[derive(Debug, Default)]
pub(crate) struct PendingRefs(HashMap<ChunkHash, ChunkRefCount>);

/// Where and when an entry was proposed, for the counts it drops to zero.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryStamp {
    pub index: u64,
    pub unix_ms: u64,
}

/// The tables [`settle`] and [`collect`] read and write: the count of each
/// chunk, the zero list (chunks at zero, by the time they got there), and
/// the local marks of collected chunks. The state machine's is a rocksdb
/// write batch ([`BatchCounts`]); the seeded GC model's is in memory, so
/// both run the same decisions.
pub(crate) trait CountTable {
    /// A chunk's count (`None`: never referred to, or collected).
    fn count(&self, hash: &ChunkHash) -> Result<Option<ChunkRefCount>, MetaError>;
    fn set_count(&mut self, hash: &ChunkHash, count: ChunkRefCount);
    /// Forgets a collected chunk's count.
    fn drop_count(&mut self, hash: &ChunkHash);
    fn list_zero(&mut self, hash: &ChunkHash, unix_ms: u64, index: u64);
    fn unlist_zero(&mut self, hash: &ChunkHash, unix_ms: u64);
    /// Marks a collected chunk for this node's sweeper, if this node holds
    /// it (the sweeper deletes the mark when it forgets the chunk; a mark
    /// for a chunk never held would stay).
    fn mark_collected(&mut self, hash: &ChunkHash) -> Result<(), MetaError>;
}

/// The state machine's [`CountTable`]: reads see the store as earlier
/// entries of the batch left it; writes go into the batch.
pub(crate) struct BatchCounts<'a> {
    pub db: &'a DB,
    pub batch: &'a mut WriteBatch,
    pub pending: &'a mut PendingRefs,
}

impl CountTable for BatchCounts<'_> {
    fn count(&self, hash: &ChunkHash) -> Result<Option<ChunkRefCount>, MetaError> {
        match self.pending.0.get(hash) {
            // A collected chunk is pending as the default count: gone.
            Some(count) if *count == ChunkRefCount::default() => Ok(None),
            Some(count) => Ok(Some(*count)),
            None => get_decoded(self.db, Cf::ChunkRefs, hash.as_bytes()),
        }
    }

    fn set_count(&mut self, hash: &ChunkHash, count: ChunkRefCount) {
        self.batch.put_cf(
            cf(self.db, Cf::ChunkRefs),
            hash.as_bytes(),
            count.encode_to_vec(),
        );
        self.pending.0.insert(*hash, count);
    }

    fn drop_count(&mut self, hash: &ChunkHash) {
        self.batch
            .delete_cf(cf(self.db, Cf::ChunkRefs), hash.as_bytes());
        self.pending.0.insert(*hash, ChunkRefCount::default());
    }

    fn list_zero(&mut self, hash: &ChunkHash, unix_ms: u64, index: u64) {
        self.batch.put_cf(
            cf(self.db, Cf::ZeroRefs),
            keys::zero_ref_key(unix_ms, hash.as_bytes()),
            index.to_be_bytes(),
        );
    }

    fn unlist_zero(&mut self, hash: &ChunkHash, unix_ms: u64) {
        self.batch.delete_cf(
            cf(self.db, Cf::ZeroRefs),
            keys::zero_ref_key(unix_ms, hash.as_bytes()),
        );
    }

    fn mark_collected(&mut self, hash: &ChunkHash) -> Result<(), MetaError> {
        // Local to this node, like the blob index it looks at.
        let held = self
            .db
            .get_pinned_cf(cf(self.db, Cf::Blobs), hash.as_bytes())
            .map_err(MetaError::rocks("collect"))?
            .is_some();
        if held {
            self.batch
                .put_cf(cf(self.db, Cf::Collected), hash.as_bytes(), []);
        }
        Ok(())
    }
}

/// Writes one entry's count changes into `table`: new counts, chunks whose
/// count reached zero onto the zero list, chunks referred to again off it.
pub(crate) fn settle(
    table: &mut impl CountTable,
    deltas: RefDeltas,
    at: EntryStamp,
) -> Result<(), MetaError> {
    let mut changed: Vec<_> = deltas.0.into_iter().filter(|(_, d)| *d != 0).collect();
    // Same order on every member: the batch is the same bytes everywhere.
    changed.sort_unstable_by_key(|(hash, _)| *hash);
    for (hash, delta) in changed {
        let before = table.count(&hash)?.unwrap_or_default();
        let count = before.count.checked_add_signed(delta).unwrap_or_else(|| {
            // More refs dropped than were ever counted: a bug, or a store
            // whose counts were lost. Every member clamps the same way, and
            // a chunk at zero is only collected after its grace period.
            tracing::error!(sha256 = %hash, count = before.count, delta, "a chunk's reference count would go below zero");
            0
        });
        if before.count == 0 && before.zero_index != 0 {
            table.unlist_zero(&hash, before.zero_unix_ms);
        }
        let after = if count == 0 {
            table.list_zero(&hash, at.unix_ms, at.index);
            ChunkRefCount {
                count: 0,
                zero_index: at.index,
                zero_unix_ms: at.unix_ms,
            }
        } else {
            ChunkRefCount {
                count,
                ..Default::default()
            }
        };
        table.set_count(&hash, after);
    }
    Ok(())
}

/// Whether a collect entry naming `chunk` drops it, given its `current`
/// count: only if that is still zero from the entry the collector saw. A
/// chunk referred to since (its count above zero, or zero again from a
/// later entry) stays.
pub(crate) fn collectable(current: &ChunkRefCount, chunk: &CollectChunk) -> bool {
    current.count == 0 && current.zero_index == chunk.zero_index
}

/// Applies a collect entry: forgets the count of each named chunk that is
/// [`collectable`], and returns those.
pub(crate) fn collect(
    table: &mut impl CountTable,
    chunks: &[CollectChunk],
) -> Result<Vec<ChunkHash>, MetaError> {
    let mut collected = Vec::new();
    for chunk in chunks {
        let Some(hash) = ChunkHash::from_slice(&chunk.sha256) else {
            continue; // malformed: nothing to collect, on every member
        };
        let Some(current) = table.count(&hash)? else {
            continue; // collected already, or never counted
        };
        if !collectable(&current, chunk) {
            continue;
        }
        table.drop_count(&hash);
        table.unlist_zero(&hash, current.zero_unix_ms);
        table.mark_collected(&hash)?;
        collected.push(hash);
    }
    Ok(collected)
}

/// Up to `max` chunks of the zero list whose count dropped to zero at or
/// before `before_unix_ms`, oldest first: what the collector proposes.
pub(crate) fn zero_before(
    db: &DB,
    before_unix_ms: u64,
    max: usize,
) -> Result<Vec<CollectChunk>, MetaError> {
    let mut found = Vec::new();
    let mut iter = db.raw_iterator_cf(cf(db, Cf::ZeroRefs));
    iter.seek_to_first();
    while let Some((key, value)) = iter.item() {
        if found.len() >= max || key.len() != 40 {
            break;
        }
        let unix_ms = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        if unix_ms > before_unix_ms {
            break;
        }
        let zero_index = value
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| MetaError::decode(Cf::ZeroRefs.name(), key, "index is not 8 bytes"))?;
        found.push(CollectChunk {
            sha256: key[8..].to_vec(),
            zero_index,
        });
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("zero_before"))?;
    Ok(found)
}

/// Counts every ref of `objects` (encoded manifests, current versions and
/// the others alike) and `parts`.
fn count_all<'a>(
    objects: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    parts: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<HashMap<ChunkHash, u64>, MetaError> {
    let mut counts: HashMap<ChunkHash, u64> = HashMap::new();
    let mut count = |chunks: &[ChunkRef]| {
        for (hash, _) in hashed_refs(chunks) {
            *counts.entry(hash).or_default() += 1;
        }
    };
    for (key, value) in objects {
        count(&decode::<ObjectManifest>(Cf::Objects, key, value)?.chunks);
    }
    for (key, value) in parts {
        count(&decode::<UploadedPart>(Cf::Parts, key, value)?.chunks);
    }
    Ok(counts)
}

/// Replaces both count families in `batch` with `counts` and marks the
/// store counted.
fn write_counts(db: &DB, batch: &mut WriteBatch, counts: HashMap<ChunkHash, u64>) {
    for family in [Cf::ChunkRefs, Cf::ZeroRefs] {
        // Every key of both families is 32 or 40 bytes, all below this.
        batch.delete_range_cf(cf(db, family), &[][..], &[0xffu8; 41][..]);
    }
    for (hash, count) in counts {
        let record = ChunkRefCount {
            count,
            ..Default::default()
        };
        batch.put_cf(
            cf(db, Cf::ChunkRefs),
            hash.as_bytes(),
            record.encode_to_vec(),
        );
    }
    batch.put_cf(cf(db, Cf::SmState), SM_STATE_REFS_COUNTED_KEY, []);
}

/// Counts every ref in the store once, if it was written before counts
/// existed; returns whether it counted. Runs before the group starts, so
/// no entry is applied meanwhile.
pub(crate) fn ensure_counted(db: &DB) -> Result<bool, MetaError> {
    let counted = db
        .get_cf(cf(db, Cf::SmState), SM_STATE_REFS_COUNTED_KEY)
        .map_err(MetaError::rocks("ensure_counted"))?;
    if counted.is_some() {
        return Ok(false);
    }
    let read = |family: Cf| -> Result<Vec<KeyValue>, MetaError> {
        db.iterator_cf(cf(db, family), rocksdb::IteratorMode::Start)
            .collect::<Result<_, _>>()
            .map_err(MetaError::rocks("ensure_counted"))
    };
    let (objects, versions) = (read(Cf::Objects)?, read(Cf::Versions)?);
    let parts = read(Cf::Parts)?;
    let counts = count_all(
        objects
            .iter()
            .chain(&versions)
            .map(|(k, v)| (&k[..], &v[..])),
        parts.iter().map(|(k, v)| (&k[..], &v[..])),
    )?;
    let mut batch = WriteBatch::default();
    write_counts(db, &mut batch, counts);
    db.write(batch)
        .map_err(MetaError::rocks("ensure_counted"))?;
    Ok(true)
}

/// A chunk's count as the store has it (`None`: never referred to, or
/// collected).
#[cfg(test)]
pub(crate) fn count_of(db: &DB, hash: &ChunkHash) -> Result<Option<ChunkRefCount>, MetaError> {
    get_decoded(db, Cf::ChunkRefs, hash.as_bytes())
}
