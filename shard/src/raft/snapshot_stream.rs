//! A shard's raft snapshot as a file, built and installed as a stream of
//! records: memory stays bounded by one install batch whatever the shard
//! holds (10 million objects are ~2 GB of records).
//!
//! **Format** (version [`SNAPSHOT_FORMAT_VERSION`]), all integers
//! little-endian:
//!
//! ```text
//! "SHOALSNP" | version u32 | header length u32 | header (bincode)
//! record*    : family tag u8 (1..=6) | key length u32 | value length u32 | key | value
//! end        : tag 0 | record count u64 | CRC32C u32 of every byte before it
//! ```
//!
//! Records are the raw column family records (prost values) of the six
//! replicated families, so building and installing never re-encode a
//! manifest. Counts (`chunk_refs`) are not in the file: they follow from its
//! manifests and parts, and the installer counts them as it goes.
//!
//! **Building** iterates one rocksdb snapshot view into `*.tmp`, syncs it
//! and renames it to `<snapshot id>.snap`; the latest file is the group's
//! current snapshot, also after a restart.
//!
//! **Installing** checks the whole file's CRC before it touches the store,
//! then writes in batches of at most [`SNAPSHOT_INSTALL_BATCH_BYTES`]:
//!
//! 1. one synced batch clears the replicated families and the counts,
//!    forgets the last applied log id and records which file is being
//!    installed (`SM_STATE_INSTALLING_KEY`);
//! 2. record batches, each with the counts of the refs it adds;
//! 3. one synced batch writes the last applied log id and membership and
//!    drops the mark.
//!
//! A crash between 1 and 3 leaves the mark: the next start installs the
//! same (synced, renamed) file again from step 1 before the group starts,
//! so nobody ever reads a half-installed state.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use rocksdb::{WriteBatch, DB};
use serde::{Deserialize, Serialize};
use shoal_proto::meta::ChunkRefCount;

use super::codec::{decode, encode};
use super::types::{LogId, StoredMembership};
use crate::chunk_hash::ChunkHash;
use crate::limits::{CATCHUP_QUEUE_MAX, SNAPSHOT_INSTALL_BATCH_BYTES, SNAPSHOT_RECORD_BYTES_MAX};
use crate::meta::keys::{
    self, Cf, SM_STATE_INSTALLING_KEY, SM_STATE_LAST_APPLIED_KEY, SM_STATE_MEMBERSHIP_KEY,
    SM_STATE_REFS_COUNTED_KEY,
};
use crate::meta::{cf, get_decoded, hashed_refs, record_chunks, write_synced, MetaError};

/// Version of the snapshot file format. Bump it when the format changes;
/// an install refuses versions it does not know.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 6;

const MAGIC: &[u8; 8] = b"SHOALSNP";
/// Tag of the end record.
const END_TAG: u8 = 0;
/// The replicated families and their tags in the file.
const FAMILIES: [(u8, Cf); 6] = [
    (1, Cf::Buckets),
    (2, Cf::Objects),
    (3, Cf::Uploads),
    (4, Cf::Parts),
    (5, Cf::Users),
    (6, Cf::Versions),
];
/// Name of the file a snapshot is received into, before it is checked.
const RECEIVING_NAME: &str = "receiving.tmp";
/// Suffix of a finished snapshot file.
const SNAPSHOT_SUFFIX: &str = ".snap";

/// What the file says about the state it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// A finished snapshot file.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotOnDisk {
    pub header: SnapshotHeader,
    pub snapshot_id: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What an install did.
#[derive(Debug, Default)]
pub(crate) struct Installed {
    pub records: u64,
    /// Distinct chunks the installed refs name, at most
    /// [`CATCHUP_QUEUE_MAX`] (the catch-up queue takes no more).
    pub chunks: Vec<ChunkHash>,
    /// Whether more chunks were named than `chunks` holds: a full audit
    /// must find the rest.
    pub chunks_left_out: bool,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MetaError + 'a {
    move |source| MetaError::SnapshotFile {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn damaged(path: &Path, reason: impl Into<String>) -> MetaError {
    MetaError::SnapshotFile {
        op: "check",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, reason.into()),
    }
}

/// Where the snapshot files of the store at `meta_dir` live.
pub(crate) fn snapshot_dir(meta_dir: &Path) -> PathBuf {
    meta_dir.join("raft-snapshots")
}

/// Where a snapshot being received goes.
pub(crate) fn receiving_path(dir: &Path) -> PathBuf {
    dir.join(RECEIVING_NAME)
}

/// The file name for a snapshot id. Ids are `term-index-millis`, made by
/// [`snapshot_id`] on whichever member built it; anything else (a peer is
/// trusted, but a path is not the place to find out) is refused.
fn file_for(dir: &Path, snapshot_id: &str) -> Option<PathBuf> {
    let plain = !snapshot_id.is_empty()
        && snapshot_id.len() <= 64
        && snapshot_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then(|| dir.join(format!("{snapshot_id}{SNAPSHOT_SUFFIX}")))
}

/// A fresh snapshot id: the log id it was taken at and the build time.
pub(crate) fn snapshot_id(last_applied: Option<LogId>, built_unix_ms: u128) -> String {
    match last_applied {
        Some(log_id) => format!(
            "{}-{}-{}",
            log_id.leader_id.term, log_id.index, built_unix_ms
        ),
        None => format!("0-0-{built_unix_ms}"),
    }
}

/// A writer that keeps the CRC32C of everything written.
struct Checksummed<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_record(out: &mut impl Write, tag: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
    // Keys and values come out of rocksdb, far below 4 GiB each.
    let key_len = u32::try_from(key.len()).expect("record key below 4 GiB");
    let value_len = u32::try_from(value.len()).expect("record value below 4 GiB");
    out.write_all(&[tag])?;
    out.write_all(&key_len.to_le_bytes())?;
    out.write_all(&value_len.to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(value)
}

/// Writes a snapshot of the applied state into `dir` and returns it (the
/// older files stay until it is current: see [`retire_others`]).
/// Blocking: runs on the blocking pool.
pub(crate) fn build(db: &DB, dir: &Path, built_unix_ms: u128) -> Result<SnapshotOnDisk, MetaError> {
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let view = db.snapshot();
    let sm_state = cf(db, Cf::SmState);
    let read = |key: &[u8]| {
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
    let header = SnapshotHeader {
        last_applied,
        membership,
    };
    let snapshot_id = snapshot_id(last_applied, built_unix_ms);
    let path = file_for(dir, &snapshot_id).expect("our own ids are plain");
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).map_err(io_error("create", &tmp))?;
    let mut out = Checksummed {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: 0,
    };
    let write_failed = io_error("write", &tmp);
    let mut records = 0u64;
    let written: io::Result<()> = (|| {
        let encoded = encode(&header);
        out.write_all(MAGIC)?;
        out.write_all(&SNAPSHOT_FORMAT_VERSION.to_le_bytes())?;
        out.write_all(
            &u32::try_from(encoded.len())
                .expect("small header")
                .to_le_bytes(),
        )?;
        out.write_all(&encoded)?;
        for (tag, family) in FAMILIES {
            let mut iter = view.raw_iterator_cf(cf(db, family));
            iter.seek_to_first();
            while let Some((key, value)) = iter.item() {
                write_record(&mut out, tag, key, value)?;
                records += 1;
                iter.next();
            }
            iter.status().map_err(io::Error::other)?;
        }
        out.write_all(&[END_TAG])?;
        out.write_all(&records.to_le_bytes())?;
        let crc = out.crc;
        out.inner.write_all(&crc.to_le_bytes())?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_failed(e));
    }
    std::fs::rename(&tmp, &path).map_err(io_error("rename", &path))?;
    sync_dir(dir)?;
    let bytes = std::fs::metadata(&path)
        .map_err(io_error("stat", &path))?
        .len();
    Ok(SnapshotOnDisk {
        header,
        snapshot_id,
        path,
        bytes,
    })
}

fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync", dir))
}

/// Removes every file in `dir` but `keep` and a snapshot being received.
/// At start only: nothing else is writing there yet. Best effort.
fn remove_all_but(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path != keep && path.file_name() != Some(RECEIVING_NAME.as_ref()) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Removes the finished snapshot files in `dir` other than `keep`, the
/// new current one, and returns its size. Spares the file an install is
/// reading (a crash must find it again), and every `.tmp` (a build or
/// receive may be writing it). Blocking.
pub(crate) fn retire_others(db: &DB, dir: &Path, keep: &Path) -> Result<u64, MetaError> {
    let installing = interrupted_install(db, dir)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let finished = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SNAPSHOT_SUFFIX));
            if finished && path != keep && Some(&path) != installing.as_ref() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(std::fs::metadata(keep)
        .map_err(io_error("stat", keep))?
        .len())
}

/// Reads a snapshot file: its header after the magic and version.
fn read_header(path: &Path) -> Result<(BufReader<File>, SnapshotHeader), MetaError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut fixed = [0u8; 16];
    input
        .read_exact(&mut fixed)
        .map_err(|_| damaged(path, "shorter than a snapshot header"))?;
    if &fixed[..8] != MAGIC {
        return Err(damaged(path, "not a snapshot file"));
    }
    let version = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(MetaError::SnapshotVersion {
            found: version,
            supported: SNAPSHOT_FORMAT_VERSION,
        });
    }
    let header_len = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes")) as usize;
    if header_len > SNAPSHOT_RECORD_BYTES_MAX {
        return Err(damaged(path, format!("a header of {header_len} bytes")));
    }
    let mut encoded = vec![0; header_len];
    input
        .read_exact(&mut encoded)
        .map_err(|_| damaged(path, "cut short in its header"))?;
    let header = decode(Cf::SmState, b"snapshot", &encoded)?;
    Ok((input, header))
}

/// Checks the file's CRC32C (every byte but the last four, against them).
fn verify(path: &Path) -> Result<(), MetaError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    let body = len
        .checked_sub(4)
        .ok_or_else(|| damaged(path, "shorter than its checksum"))?;
    let mut crc = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = body;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut buf[..want])
            .map_err(io_error("read", path))?;
        crc = crc32c::crc32c_append(crc, &buf[..want]);
        left -= want as u64;
    }
    let mut stored = [0u8; 4];
    file.read_exact(&mut stored)
        .map_err(io_error("read", path))?;
    if u32::from_le_bytes(stored) != crc {
        return Err(damaged(path, "checksum mismatch"));
    }
    Ok(())
}

/// One record read back, or the end.
enum Next {
    Record(Cf, Vec<u8>, Vec<u8>),
    End(u64),
}

fn read_next(input: &mut impl Read, path: &Path) -> Result<Next, MetaError> {
    let cut = |_| damaged(path, "cut short");
    let mut tag = [0u8; 1];
    input.read_exact(&mut tag).map_err(cut)?;
    if tag[0] == END_TAG {
        let mut count = [0u8; 8];
        input.read_exact(&mut count).map_err(cut)?;
        return Ok(Next::End(u64::from_le_bytes(count)));
    }
    let family = FAMILIES
        .iter()
        .find(|(t, _)| *t == tag[0])
        .map(|(_, family)| *family)
        .ok_or_else(|| damaged(path, format!("unknown record tag {}", tag[0])))?;
    let mut lens = [0u8; 8];
    input.read_exact(&mut lens).map_err(cut)?;
    let key_len = u32::from_le_bytes(lens[..4].try_into().expect("4 bytes")) as usize;
    let value_len = u32::from_le_bytes(lens[4..].try_into().expect("4 bytes")) as usize;
    if key_len + value_len > SNAPSHOT_RECORD_BYTES_MAX {
        return Err(damaged(
            path,
            format!("a record of {} bytes", key_len + value_len),
        ));
    }
    let mut key = vec![0; key_len];
    input.read_exact(&mut key).map_err(cut)?;
    let mut value = vec![0; value_len];
    input.read_exact(&mut value).map_err(cut)?;
    Ok(Next::Record(family, key, value))
}

/// The finished snapshot in `dir` with the highest log id at or below
/// `applied`, if any; every other file there is removed: older snapshots,
/// one half built or half received when the node stopped, and one
/// received whole but never installed (its state is not this store's, so
/// it must not be offered as this node's snapshot). Blocking.
pub(crate) fn latest(
    dir: &Path,
    applied: Option<LogId>,
) -> Result<Option<SnapshotOnDisk>, MetaError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("list", dir)(e)),
    };
    let mut best: Option<SnapshotOnDisk> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(snapshot_id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
        else {
            continue;
        };
        // A file this build cannot read is no use as the current one.
        let Ok((_, header)) = read_header(&path) else {
            continue;
        };
        if header.last_applied > applied {
            continue;
        }
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let newer = best
            .as_ref()
            .is_none_or(|b| header.last_applied > b.header.last_applied);
        if newer {
            best = Some(SnapshotOnDisk {
                header,
                snapshot_id: snapshot_id.to_string(),
                path: path.clone(),
                bytes,
            });
        }
    }
    match &best {
        Some(best) => remove_all_but(dir, &best.path),
        None => remove_all_but(dir, Path::new("")),
    }
    Ok(best)
}

/// Moves a received snapshot to its own name, once its bytes are synced
/// (openraft shut the file down), so a restart finds it. Blocking.
pub(crate) fn keep_received(
    dir: &Path,
    received: &Path,
    snapshot_id: &str,
) -> Result<PathBuf, MetaError> {
    let path = file_for(dir, snapshot_id)
        .ok_or_else(|| damaged(received, format!("snapshot id {snapshot_id:?}")))?;
    std::fs::rename(received, &path).map_err(io_error("rename", &path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// An install under way: the open file past its header and what the
/// batches written so far counted. Moves between blocking jobs, one batch
/// per job, so a long install never holds the blocking pool for long.
pub(crate) struct Installing {
    path: PathBuf,
    input: BufReader<File>,
    header: SnapshotHeader,
    installed: Installed,
    done: bool,
}

/// Step 1: checks the file and its header against `expected`, then
/// clears the store and marks the install as begun (synced). Blocking.
pub(crate) fn begin_install(
    db: &DB,
    path: &Path,
    expected: Option<&SnapshotHeader>,
) -> Result<Installing, MetaError> {
    // The header first, so a newer format is refused as such.
    let (input, header) = read_header(path)?;
    verify(path)?;
    if let Some(expected) = expected {
        if expected.last_applied != header.last_applied {
            return Err(damaged(
                path,
                format!(
                    "taken at {:?} but its meta says {:?}",
                    header.last_applied, expected.last_applied
                ),
            ));
        }
    }
    let mut batch = WriteBatch::default();
    for family in FAMILIES
        .iter()
        .map(|(_, family)| *family)
        .chain([Cf::ChunkRefs, Cf::ZeroRefs])
    {
        clear_family(db, &mut batch, family)?;
    }
    let sm_state = cf(db, Cf::SmState);
    batch.delete_cf(sm_state, SM_STATE_LAST_APPLIED_KEY);
    let name = path.file_name().expect("a snapshot file has a name");
    batch.put_cf(sm_state, SM_STATE_INSTALLING_KEY, name.as_encoded_bytes());
    write_synced(db, batch, "install_snapshot")?;
    Ok(Installing {
        path: path.to_path_buf(),
        input,
        header,
        installed: Installed::default(),
        done: false,
    })
}

/// Adds to `batch` the deletion of every record of `family`.
pub(crate) fn clear_family(db: &DB, batch: &mut WriteBatch, family: Cf) -> Result<(), MetaError> {
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

impl Installing {
    /// Whether the end record was reached (and step 3 written).
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Step 2 (one batch of records with their counts) or, at the end of
    /// the file, step 3. Blocking.
    pub fn step(&mut self, db: &DB) -> Result<(), MetaError> {
        assert!(!self.done, "an install steps past its end");
        let mut batch = WriteBatch::default();
        let mut deltas: HashMap<ChunkHash, u64> = HashMap::new();
        let mut batch_bytes = 0usize;
        let mut end = None;
        while batch_bytes < SNAPSHOT_INSTALL_BATCH_BYTES {
            match read_next(&mut self.input, &self.path)? {
                Next::End(count) => {
                    end = Some(count);
                    break;
                }
                Next::Record(family, key, value) => {
                    if matches!(family, Cf::Objects | Cf::Versions | Cf::Parts) {
                        let chunks = record_chunks(family, &key, &value)?;
                        for (sha256, _) in hashed_refs(&chunks) {
                            *deltas.entry(sha256).or_default() += 1;
                        }
                    }
                    batch_bytes += key.len() + value.len();
                    batch.put_cf(cf(db, family), key, value);
                    self.installed.records += 1;
                }
            }
        }
        self.count_into(db, &mut batch, deltas)?;
        match end {
            None => db
                .write(batch)
                .map_err(MetaError::rocks("install_snapshot")),
            Some(count) => {
                if count != self.installed.records {
                    return Err(damaged(
                        &self.path,
                        format!(
                            "ends after {count} records, holds {}",
                            self.installed.records
                        ),
                    ));
                }
                self.finish(db, batch)
            }
        }
    }

    /// Adds the counts of `deltas` to those earlier batches wrote.
    fn count_into(
        &mut self,
        db: &DB,
        batch: &mut WriteBatch,
        deltas: HashMap<ChunkHash, u64>,
    ) -> Result<(), MetaError> {
        let refs = cf(db, Cf::ChunkRefs);
        for (sha256, added) in deltas {
            let before: Option<ChunkRefCount> = get_decoded(db, Cf::ChunkRefs, sha256.as_bytes())?;
            let record = ChunkRefCount {
                count: before.map_or(0, |b| b.count) + added,
                ..Default::default()
            };
            if before.is_none() {
                if self.installed.chunks.len() < CATCHUP_QUEUE_MAX {
                    self.installed.chunks.push(sha256);
                } else {
                    self.installed.chunks_left_out = true;
                }
            }
            batch.put_cf(refs, sha256.as_bytes(), record.encode_to_vec());
        }
        Ok(())
    }

    /// Step 3: the applied log id and membership, the counts marked
    /// complete, the mark dropped; synced.
    fn finish(&mut self, db: &DB, mut batch: WriteBatch) -> Result<(), MetaError> {
        let sm_state = cf(db, Cf::SmState);
        match self.header.last_applied {
            Some(last) => batch.put_cf(sm_state, SM_STATE_LAST_APPLIED_KEY, encode(&last)),
            None => batch.delete_cf(sm_state, SM_STATE_LAST_APPLIED_KEY),
        }
        batch.put_cf(
            sm_state,
            SM_STATE_MEMBERSHIP_KEY,
            encode(&self.header.membership),
        );
        batch.put_cf(sm_state, SM_STATE_REFS_COUNTED_KEY, []);
        batch.delete_cf(sm_state, SM_STATE_INSTALLING_KEY);
        write_synced(db, batch, "install_snapshot")?;
        self.done = true;
        Ok(())
    }

    pub fn into_installed(self) -> Installed {
        self.installed
    }
}

/// The file of an install a crash interrupted, if the store was in the
/// middle of one. Blocking.
pub(crate) fn interrupted_install(db: &DB, dir: &Path) -> Result<Option<PathBuf>, MetaError> {
    let name = db
        .get_cf(cf(db, Cf::SmState), SM_STATE_INSTALLING_KEY)
        .map_err(MetaError::rocks("interrupted_install"))?;
    Ok(name.map(|name| dir.join(String::from_utf8_lossy(&name).as_ref())))
}

/// Installs the whole file at once (start-up, before the group runs).
/// Blocking.
pub(crate) fn install_all(db: &DB, path: &Path) -> Result<Installed, MetaError> {
    let mut installing = begin_install(db, path, None)?;
    while !installing.is_done() {
        installing.step(db)?;
    }
    Ok(installing.into_installed())
}
