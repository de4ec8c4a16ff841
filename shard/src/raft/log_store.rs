//! The raft log and vote of one shard's group, kept in the metadata store's
//! `raft_log` and `raft_state` column families.
//!
//! Runs on the shard's core, inside openraft's core task; every rocksdb
//! call goes through [`MetaStore::blocking`]. openraft awaits each call
//! before issuing the next, which is what serialises the log's writes.
//!
//! Durability: `append`, `save_vote` and `truncate` are synced before they
//! return (an append is durable before its `LogFlushed` callback fires).
//! `purge` and `save_committed` are not: a purge lost in a crash brings
//! back entries that are still valid together with the old purge mark, and
//! the committed mark is only a hint that openraft recomputes.

use std::cell::Cell;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::rc::Rc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use rocksdb::{ReadOptions, WriteBatch, WriteOptions, DB};

use super::codec::{decode, encode, storage_error};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use super::ReleaseToken;
use crate::meta::keys::{
    self, Cf, RAFT_STATE_COMMITTED_KEY, RAFT_STATE_LAST_PURGED_KEY, RAFT_STATE_VOTE_KEY,
};
use crate::meta::{cf, MetaError, MetaStore};

/// Counters of what this group appended to its log (since start). Read by
/// the metrics endpoint as `raft_log_appended_bytes` and
/// `raft_entries_appended`.
#[derive(Debug, Default)]
pub struct LogStats {
    appended_bytes: Cell<u64>,
    appended_entries: Cell<u64>,
}

impl LogStats {
    /// Encoded entry bytes written to `raft_log` (values only; each entry
    /// also has an 8-byte key).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes.get()
    }

    /// Entries written to `raft_log`.
    pub fn appended_entries(&self) -> u64 {
        self.appended_entries.get()
    }

    fn record(&self, entries: u64, bytes: u64) {
        self.appended_entries
            .set(self.appended_entries.get() + entries);
        self.appended_bytes.set(self.appended_bytes.get() + bytes);
    }
}

/// openraft's log storage (and log reader) over the metadata store.
#[derive(Clone)]
pub struct LogStore {
    store: MetaStore,
    stats: Rc<LogStats>,
    _release: ReleaseToken,
}

impl LogStore {
    pub(crate) fn new(store: MetaStore, stats: Rc<LogStats>, release: ReleaseToken) -> LogStore {
        LogStore {
            store,
            stats,
            _release: release,
        }
    }
}

/// What the log holds after a restart; logged at start so an operator sees
/// what a shard recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredLog {
    pub vote: Option<Vote>,
    pub last_purged: Option<LogId>,
    pub last_log: Option<LogId>,
}

/// Reads the persisted vote and log bounds without starting raft.
pub(crate) async fn read_recovered_log(store: &MetaStore) -> Result<RecoveredLog, MetaError> {
    store
        .blocking("read_recovered_log", |db| {
            let (last_purged, last_log) = read_log_bounds(db)?;
            let vote = read_record(db, Cf::RaftState, RAFT_STATE_VOTE_KEY)?;
            Ok(RecoveredLog {
                vote,
                last_purged,
                last_log,
            })
        })
        .await
}

/// Reads one bincode record.
pub(crate) fn read_record<T: serde::de::DeserializeOwned>(
    db: &DB,
    family: Cf,
    key: &[u8],
) -> Result<Option<T>, MetaError> {
    let value = db
        .get_pinned_cf(cf(db, family), key)
        .map_err(MetaError::rocks("get"))?;
    value.map(|v| decode(family, key, &v)).transpose()
}

/// `(last purged, last present or else last purged)`.
fn read_log_bounds(db: &DB) -> Result<(Option<LogId>, Option<LogId>), MetaError> {
    let last_purged: Option<LogId> = read_record(db, Cf::RaftState, RAFT_STATE_LAST_PURGED_KEY)?;
    let mut iter = db.raw_iterator_cf(cf(db, Cf::RaftLog));
    iter.seek_to_last();
    let last_present = match iter.item() {
        Some((key, value)) => Some(decode_entry(key, value)?.log_id),
        None => None,
    };
    iter.status().map_err(MetaError::rocks("read_log_bounds"))?;
    Ok((last_purged, last_present.or(last_purged)))
}

/// Decodes a log entry and checks it sits under its own index.
fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, MetaError> {
    let entry: Entry = decode(Cf::RaftLog, key, value)?;
    if keys::log_index(key) != Some(entry.log_id.index) {
        return Err(MetaError::decode(
            Cf::RaftLog.name(),
            key,
            format!("entry has index {}", entry.log_id.index),
        ));
    }
    Ok(entry)
}

/// `[start, end)` of a range of log indexes; `end` is `None` when unbounded.
fn index_range<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        self.store
            .blocking("read_log", move |db| {
                let mut read_opts = ReadOptions::default();
                if let Some(end) = end {
                    read_opts.set_iterate_upper_bound(keys::log_key(end));
                }
                let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::RaftLog), read_opts);
                iter.seek(keys::log_key(start));
                let mut entries = Vec::new();
                while let Some((key, value)) = iter.item() {
                    entries.push(decode_entry(key, value)?);
                    iter.next();
                }
                iter.status().map_err(MetaError::rocks("read_log"))?;
                Ok(entries)
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let (last_purged_log_id, last_log_id) = self
            .store
            .blocking("get_log_state", read_log_bounds)
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let value = encode(vote);
        self.store
            .write_when_space("save_vote", move |db| {
                let mut batch = WriteBatch::default();
                batch.put_cf(cf(db, Cf::RaftState), RAFT_STATE_VOTE_KEY, &value);
                db.write_opt(batch, &synced())
                    .map_err(MetaError::rocks("save_vote"))
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.store
            .blocking("read_vote", |db| {
                read_record(db, Cf::RaftState, RAFT_STATE_VOTE_KEY)
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.store
            .write_when_space("save_committed", move |db| {
                let family = cf(db, Cf::RaftState);
                let result = match committed {
                    Some(log_id) => db.put_cf(family, RAFT_STATE_COMMITTED_KEY, encode(&log_id)),
                    None => db.delete_cf(family, RAFT_STATE_COMMITTED_KEY),
                };
                result.map_err(MetaError::rocks("save_committed"))
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.store
            .blocking("read_committed", |db| {
                read_record(db, Cf::RaftState, RAFT_STATE_COMMITTED_KEY)
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Encode here (cheap, and the counters live on this thread); the
        // blocking pool only writes.
        let mut records: Vec<([u8; 8], Vec<u8>)> = Vec::new();
        let mut appended_bytes = 0u64;
        let mut last_log_id = None;
        for entry in entries {
            let index = entry.log_id.index;
            // `truncate` and `purge` use `index + 1` as an exclusive end.
            assert!(index < u64::MAX, "raft log index {index} out of range");
            if let Some(prev) = records.last() {
                assert_eq!(
                    keys::log_index(&prev.0).map(|i| i + 1),
                    Some(index),
                    "openraft appended non-consecutive entries"
                );
            }
            let value = encode(&entry);
            appended_bytes += value.len() as u64;
            records.push((keys::log_key(index), value));
            last_log_id = Some(entry.log_id);
        }
        let Some(last_log_id) = last_log_id else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let entry_count = records.len() as u64;

        let written = self
            .store
            .write_when_space("append", move |db| {
                let family = cf(db, Cf::RaftLog);
                let mut batch = WriteBatch::default();
                for (key, value) in &records {
                    batch.put_cf(family, key, value);
                }
                db.write_opt(batch, &synced())
                    .map_err(MetaError::rocks("append"))
            })
            .await;
        match written {
            Ok(()) => {
                // In the log, synced; not yet known to raft (not committed).
                crate::crash_point::crash_point("crash::raft_log_synced");
                self.stats.record(entry_count, appended_bytes);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(storage_error(
                    ErrorSubject::Log(last_log_id),
                    ErrorVerb::Write,
                    e,
                ))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.store
            .write_when_space("truncate", move |db| {
                let mut batch = WriteBatch::default();
                // Index u64::MAX is never reached, so the exclusive end
                // covers every entry from `log_id` on.
                batch.delete_range_cf(
                    cf(db, Cf::RaftLog),
                    keys::log_key(log_id.index),
                    keys::log_key(u64::MAX),
                );
                db.write_opt(batch, &synced())
                    .map_err(MetaError::rocks("truncate"))
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let purged = encode(&log_id);
        self.store
            .write_when_space("purge", move |db| {
                let mut batch = WriteBatch::default();
                batch.delete_range_cf(
                    cf(db, Cf::RaftLog),
                    keys::log_key(0),
                    keys::log_key(log_id.index + 1),
                );
                batch.put_cf(cf(db, Cf::RaftState), RAFT_STATE_LAST_PURGED_KEY, &purged);
                db.write(batch).map_err(MetaError::rocks("purge"))
            })
            .await
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use super::index_range;

    #[test]
    fn index_ranges() {
        assert_eq!(index_range(&(3..7)), (3, Some(7)));
        assert_eq!(index_range(&(3..=7)), (3, Some(8)));
        assert_eq!(index_range(&(3..)), (3, None));
        assert_eq!(index_range(&(..)), (0, None));
        assert_eq!(index_range(&(..=u64::MAX)), (0, None));
    }
}
