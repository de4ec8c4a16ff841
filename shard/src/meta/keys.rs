//! Column family names and key encodings of the metadata store.
//!
//! Pure code: no I/O. These encodings are a storage format, so they only
//! ever gain new column families or keys; existing ones never change.

use crate::version_id::POSITION_LEN;

/// The column families of one shard's rocksdb instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cf {
    /// Raft log: big-endian `u64` index → bincode-encoded entry.
    RaftLog,
    /// Raft's own state: vote, committed log id, last purged log id.
    RaftState,
    /// State machine bookkeeping: last applied log id, last membership.
    SmState,
    /// Bucket name → prost `BucketRecord`.
    Buckets,
    /// `bucket ++ 0x00 ++ key` → prost `ObjectManifest`.
    Objects,
    /// SHA-256 → prost `BlobLocation`. Local to a node, never replicated.
    Blobs,
    /// `bucket ++ 0x00 ++ key ++ 0x00 ++ upload id` → prost
    /// `MultipartUpload`: key order, then initiation order (upload ids
    /// start with their initiation time).
    Uploads,
    /// `upload id ++ part number (big-endian u32)` → prost `UploadedPart`.
    Parts,
    /// User name → prost `User` (metadata shard only).
    Users,
    /// Chunk hash → prost `ChunkRefCount`: how many committed manifests and
    /// parts refer to the chunk. Part of the applied state, changed in the
    /// same batch as the refs themselves.
    ChunkRefs,
    /// `zero_unix_ms (big-endian u64) ++ chunk hash` → `zero_index`
    /// (big-endian u64): chunks whose count dropped to zero, oldest first,
    /// for the collector.
    ZeroRefs,
    /// `segment ++ offset` (both big-endian u64) → `sha256 ++ payload
    /// bytes` (big-endian u32): which record of this node's blob log each
    /// `blobs` entry pointed at when it was written. Local, like `blobs`.
    /// An entry whose hash no longer points back at it is stale: the
    /// reclaimer checks every entry against `blobs` and removes the stale
    /// ones as it frees their records.
    BlobRecords,
    /// Chunk hash → nothing: chunks this node's group collected (written
    /// by the collect entry's apply) that this node has not forgotten yet.
    /// Local, like `blobs`: such a chunk already waited out its grace, so
    /// the sweeper forgets it at once rather than after a grace of its own
    /// (which an unreferenced chunk without this mark, an orphan, gets).
    Collected,
    /// `bucket ++ 0x00 ++ key ++ 0x00 ++ position` (12 bytes, see
    /// [`crate::version_id`]) → prost `ObjectManifest`: every version of a
    /// key but the current one (delete markers included), newest first.
    /// The current version stays in `objects`, so reading an object is one
    /// seek and listing current objects never steps over old versions.
    Versions,
}

impl Cf {
    pub(crate) const ALL: [Cf; 14] = [
        Cf::RaftLog,
        Cf::RaftState,
        Cf::SmState,
        Cf::Buckets,
        Cf::Objects,
        Cf::Blobs,
        Cf::Uploads,
        Cf::Parts,
        Cf::Users,
        Cf::ChunkRefs,
        Cf::ZeroRefs,
        Cf::BlobRecords,
        Cf::Collected,
        Cf::Versions,
    ];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
            Cf::SmState => "sm_state",
            Cf::Buckets => "buckets",
            Cf::Objects => "objects",
            Cf::Blobs => "blobs",
            Cf::Uploads => "uploads",
            Cf::Parts => "parts",
            Cf::Users => "users",
            Cf::ChunkRefs => "chunk_refs",
            Cf::ZeroRefs => "zero_refs",
            Cf::BlobRecords => "blob_records",
            Cf::Collected => "collected",
            Cf::Versions => "versions",
        }
    }
}

/// `raft_state` key of the last saved vote.
pub(crate) const RAFT_STATE_VOTE_KEY: &[u8] = b"vote";
/// `raft_state` key of the last saved committed log id.
pub(crate) const RAFT_STATE_COMMITTED_KEY: &[u8] = b"committed";
/// `raft_state` key of the last purged log id.
pub(crate) const RAFT_STATE_LAST_PURGED_KEY: &[u8] = b"last_purged";
/// `blob_records` key saying every `blobs` entry has its record entry
/// (stores written before `blob_records` existed get them once, at open).
/// It sorts after every record key (no segment number reaches it).
pub(crate) const BLOB_RECORDS_COMPLETE_KEY: [u8; 16] = [0xff; 16];

/// `blob_records` key of the record at `offset_bytes` of `segment`.
pub(crate) fn blob_record_key(segment: u64, offset_bytes: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&segment.to_be_bytes());
    key[8..].copy_from_slice(&offset_bytes.to_be_bytes());
    key
}

/// `(segment, offset)` of a `blob_records` key.
pub(crate) fn blob_record_place(key: &[u8]) -> Option<(u64, u64)> {
    let key: &[u8; 16] = key.try_into().ok()?;
    let segment = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
    let offset = u64::from_be_bytes(key[8..].try_into().expect("8 bytes"));
    Some((segment, offset))
}

/// `sm_state` key of the last applied log id.
pub(crate) const SM_STATE_LAST_APPLIED_KEY: &[u8] = b"last_applied";
/// `sm_state` key of the last applied membership.
pub(crate) const SM_STATE_MEMBERSHIP_KEY: &[u8] = b"membership";
/// `sm_state` key present once `chunk_refs` counts every ref in `objects`
/// and `parts` (a store written before counting existed is counted once,
/// at start).
pub(crate) const SM_STATE_REFS_COUNTED_KEY: &[u8] = b"refs_counted";
/// `sm_state` key a member writes when it stops in order with every chunk
/// its refs name at hand (its chunk audit done, nothing left to catch up
/// on); taken away at the next start. Without it, that start audits every
/// manifest and part. Local to the node, like all of `sm_state`.
pub(crate) const SM_STATE_CHUNKS_COMPLETE_KEY: &[u8] = b"chunks_complete";
/// `sm_state` key present while a snapshot is being installed: the name
/// of its file (in the snapshot directory), so a start after a crash
/// installs it again before anything reads the half-written state.
pub(crate) const SM_STATE_INSTALLING_KEY: &[u8] = b"installing_snapshot";

/// `zero_refs` key of a chunk whose count dropped to zero at `unix_ms`.
pub(crate) fn zero_ref_key(unix_ms: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&unix_ms.to_be_bytes());
    key[8..].copy_from_slice(hash);
    key
}

/// Separates the bucket from the object key in `objects` keys. Bucket names
/// never contain it (S3 bucket names are lower-case letters, digits, `.`
/// and `-`), so every bucket's keys form one contiguous range.
pub(crate) const BUCKET_KEY_SEPARATOR: u8 = 0x00;

/// Key of a raft log entry: its index, big-endian so byte order is index
/// order.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Inverse of [`log_key`]; `None` if the key is not 8 bytes long.
pub(crate) fn log_index(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// `bucket ++ 0x00`: every key of `bucket` starts with this.
pub(crate) fn bucket_objects_prefix(bucket: &str) -> Vec<u8> {
    assert!(
        !bucket.as_bytes().contains(&BUCKET_KEY_SEPARATOR),
        "bucket name contains a NUL byte: {bucket:?}"
    );
    let mut prefix = Vec::with_capacity(bucket.len() + 1);
    prefix.extend_from_slice(bucket.as_bytes());
    prefix.push(BUCKET_KEY_SEPARATOR);
    prefix
}

/// First key past every key of `bucket` (`bucket ++ 0x01`): the exclusive
/// upper bound of the bucket's range.
pub(crate) fn bucket_objects_end(bucket: &str) -> Vec<u8> {
    let mut end = bucket_objects_prefix(bucket);
    *end.last_mut().expect("prefix ends with the separator") = BUCKET_KEY_SEPARATOR + 1;
    end
}

/// `objects` key of one object.
pub(crate) fn object_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut full = bucket_objects_prefix(bucket);
    full.extend_from_slice(key);
    full
}

/// `bucket/key` of an `objects` key, for logs and reports (the key's bytes
/// lossily as UTF-8).
pub(crate) fn object_name(object_key: &[u8]) -> String {
    let split = object_key
        .iter()
        .position(|&b| b == BUCKET_KEY_SEPARATOR)
        .unwrap_or(object_key.len());
    let (bucket, key) = object_key.split_at(split);
    let key = key.get(1..).unwrap_or_default();
    format!(
        "{}/{}",
        String::from_utf8_lossy(bucket),
        String::from_utf8_lossy(key)
    )
}

/// Where a listing of `bucket` starts: the first `objects` key that both
/// starts with `prefix` and sorts strictly after `after` (when given).
pub(crate) fn list_start(bucket: &str, prefix: &[u8], after: Option<&[u8]>) -> Vec<u8> {
    let from_prefix = object_key(bucket, prefix);
    match after {
        None => from_prefix,
        Some(after) => {
            // The smallest key strictly greater than `after` is `after ++ 0x00`.
            let mut from_after = object_key(bucket, after);
            from_after.push(0);
            from_after.max(from_prefix)
        }
    }
}

/// `versions` key of the version at `position` of `key`.
pub(crate) fn version_key(bucket: &str, key: &[u8], position: &[u8; POSITION_LEN]) -> Vec<u8> {
    let mut full = versions_of(bucket, key);
    full.extend_from_slice(position);
    full
}

/// `bucket ++ 0x00 ++ key ++ 0x00`: every `versions` key of one object key
/// starts with this, and no other key does (object keys hold no NUL).
pub(crate) fn versions_of(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut full = object_key(bucket, key);
    full.push(BUCKET_KEY_SEPARATOR);
    full
}

/// The `versions` key range `[start, end)` of one object key.
pub(crate) fn versions_range(bucket: &str, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = versions_of(bucket, key);
    let mut end = start.clone();
    *end.last_mut().expect("ends with the separator") = BUCKET_KEY_SEPARATOR + 1;
    (start, end)
}

/// The `objects` key a `versions` key belongs to (its position and the
/// separator before it cut off); `None` for a key too short to be one.
pub(crate) fn versioned_object_key(version_key: &[u8]) -> Option<&[u8]> {
    version_key
        .len()
        .checked_sub(POSITION_LEN + 1)
        .map(|end| &version_key[..end])
}

/// Where a listing of versions starts in `versions`: like [`list_start`],
/// with a key marker passing every version of that key, or, with a
/// position too, only the versions up to and including it.
pub(crate) fn versions_start(
    bucket: &str,
    prefix: &[u8],
    after: Option<(&[u8], Option<&[u8; POSITION_LEN]>)>,
) -> Vec<u8> {
    let from_prefix = object_key(bucket, prefix);
    match after {
        None => from_prefix,
        Some((key, None)) => {
            // Past `key ++ 0x00 ++ <any position>`: `key ++ 0x01`.
            let mut past = object_key(bucket, key);
            past.push(BUCKET_KEY_SEPARATOR + 1);
            past.max(from_prefix)
        }
        Some((key, Some(position))) => {
            let mut past = version_key(bucket, key, position);
            past.push(0);
            past.max(from_prefix)
        }
    }
}

/// Length of an upload id: 12 hex digits of initiation time (ms) and 20
/// of randomness.
pub const UPLOAD_ID_LEN: usize = 32;

/// Whether `id` has the form of an upload id (anything else names no
/// upload, and must not reach a key encoding).
pub fn is_upload_id(id: &str) -> bool {
    id.len() == UPLOAD_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `uploads` key of one multipart upload.
pub(crate) fn upload_key(bucket: &str, key: &[u8], upload_id: &str) -> Vec<u8> {
    debug_assert!(is_upload_id(upload_id));
    let mut full = object_key(bucket, key);
    full.push(BUCKET_KEY_SEPARATOR);
    full.extend_from_slice(upload_id.as_bytes());
    full
}

/// Where a listing of `bucket`'s uploads starts: the first `uploads` key
/// at or after `prefix` that sorts after the marker. With only a key
/// marker, every upload of that key is skipped; with an upload id too,
/// only those up to and including it.
pub(crate) fn uploads_start(
    bucket: &str,
    prefix: &[u8],
    after: Option<(&[u8], Option<&str>)>,
) -> Vec<u8> {
    let from_prefix = object_key(bucket, prefix);
    match after {
        None => from_prefix,
        Some((key, None)) => {
            // Past `key ++ 0x00 ++ <any id>`: `key ++ 0x01`.
            let mut past = object_key(bucket, key);
            past.push(BUCKET_KEY_SEPARATOR + 1);
            past.max(from_prefix)
        }
        Some((key, Some(upload_id))) => {
            let mut past = object_key(bucket, key);
            past.push(BUCKET_KEY_SEPARATOR);
            past.extend_from_slice(upload_id.as_bytes());
            past.push(0);
            past.max(from_prefix)
        }
    }
}

/// `parts` key of one part.
pub(crate) fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut full = Vec::with_capacity(UPLOAD_ID_LEN + 4);
    full.extend_from_slice(upload_id.as_bytes());
    full.extend_from_slice(&part_number.to_be_bytes());
    full
}

/// The `parts` key range `[start, end)` holding every part of an upload.
pub(crate) fn parts_range(upload_id: &str) -> (Vec<u8>, Vec<u8>) {
    (
        part_key(upload_id, 0),
        successor(&part_key(upload_id, u32::MAX)),
    )
}

/// The smallest key greater than every key in `[.., last]`: `last ++ 0x00`.
/// Used as the exclusive end of a range deletion that must cover `last`.
pub(crate) fn successor(last: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(last.len() + 1);
    next.extend_from_slice(last);
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_index() {
        let indexes = [0u64, 1, 255, 256, 65_535, 1 << 40, u64::MAX];
        for pair in indexes.windows(2) {
            assert!(log_key(pair[0]) < log_key(pair[1]));
        }
        for index in indexes {
            assert_eq!(log_index(&log_key(index)), Some(index));
        }
        assert_eq!(log_index(b"short"), None);
    }

    #[test]
    fn bucket_ranges_do_not_overlap() {
        // "a" and "a-b": every key of "a" sorts before every key of "a-b"
        // and of "a\x01..." style names, because the separator is 0x00.
        let end_a = bucket_objects_end("a");
        assert!(object_key("a", &[0xFF; 16]) < end_a);
        assert!(end_a <= bucket_objects_prefix("a-b"));
        assert!(object_key("a", b"") >= bucket_objects_prefix("a"));
    }

    #[test]
    fn list_start_takes_the_later_bound() {
        assert_eq!(list_start("b", b"p/", None), b"b\0p/".to_vec());
        // `after` below the prefix: the prefix wins.
        assert_eq!(list_start("b", b"p/", Some(b"a")), b"b\0p/".to_vec());
        // `after` inside the prefix: strictly after it.
        assert_eq!(list_start("b", b"p/", Some(b"p/x")), b"b\0p/x\0".to_vec());
        // `after` is exactly the prefix: the prefix itself is excluded.
        assert_eq!(list_start("b", b"p/", Some(b"p/")), b"b\0p/\0".to_vec());
    }

    #[test]
    #[should_panic(expected = "NUL")]
    fn bucket_with_nul_is_a_bug() {
        bucket_objects_prefix("a\0b");
    }

    #[test]
    fn upload_keys_sort_by_key_then_id() {
        let id_a = "000000000001aaaaaaaaaaaaaaaaaaaa";
        let id_b = "000000000002aaaaaaaaaaaaaaaaaaaa";
        assert!(upload_key("b", b"k", id_a) < upload_key("b", b"k", id_b));
        // A key sorts before the keys it prefixes, whatever the id.
        assert!(upload_key("b", b"k", id_b) < upload_key("b", b"k/x", id_a));
        assert!(upload_key("b", b"k", id_b) < upload_key("b", b"kk", id_a));
        // Key marker alone skips every upload of the key.
        let start = uploads_start("b", b"", Some((b"k", None)));
        assert!(start > upload_key("b", b"k", id_b));
        assert!(start < upload_key("b", b"k/x", id_a));
        // Key and id marker: strictly after that upload.
        let start = uploads_start("b", b"", Some((b"k", Some(id_a))));
        assert!(start > upload_key("b", b"k", id_a));
        assert!(start < upload_key("b", b"k", id_b));
    }

    #[test]
    fn part_keys_cover_exactly_one_upload() {
        let id = "000000000001aaaaaaaaaaaaaaaaaaaa";
        let other = "000000000001aaaaaaaaaaaaaaaaaaab";
        let (start, end) = parts_range(id);
        for n in [1, 2, 10_000, u32::MAX] {
            let key = part_key(id, n);
            assert!(start <= key && key < end);
            assert!(!(start <= part_key(other, n) && part_key(other, n) < end));
        }
        assert!(part_key(id, 2) < part_key(id, 10));
        assert!(is_upload_id(id));
        assert!(!is_upload_id("../../etc"));
        assert!(!is_upload_id(&id[1..]));
    }

    #[test]
    fn versions_follow_their_key_newest_first() {
        let new = [0x00; POSITION_LEN];
        let old = [0x10; POSITION_LEN];
        assert!(version_key("b", b"k", &new) < version_key("b", b"k", &old));
        // Every version of `k` sorts before any of `k/x` or `kk`.
        assert!(version_key("b", b"k", &[0xff; POSITION_LEN]) < version_key("b", b"k/x", &new));
        assert!(version_key("b", b"k", &[0xff; POSITION_LEN]) < version_key("b", b"kk", &new));
        assert_eq!(
            versioned_object_key(&version_key("b", b"k/x", &old)),
            Some(&object_key("b", b"k/x")[..])
        );
        let start = versions_start("b", b"", Some((b"k", None)));
        assert!(start > version_key("b", b"k", &[0xff; POSITION_LEN]));
        assert!(start < version_key("b", b"k/x", &new));
        let start = versions_start("b", b"", Some((b"k", Some(&new))));
        assert!(start > version_key("b", b"k", &new));
        assert!(start < version_key("b", b"k", &old));
    }

    #[test]
    fn column_family_names_are_distinct() {
        for (i, a) in Cf::ALL.iter().enumerate() {
            for b in &Cf::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
