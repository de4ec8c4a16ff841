//! Object version ids, and where a version sorts among its key's versions.
//!
//! A version is named when its entry applies, from what every member
//! reads alike: the entry's log index, the command's place in a batched
//! entry, and the leader's proposal time. The log index orders the
//! versions of one key exactly as they were written (a key lives on one
//! shard, so one raft group orders all its writes), whatever the leaders'
//! clocks did; the time, first in the id, makes ids of one shard sort in
//! time order as text, which is what S3 promises of version ids.
//!
//! Pure code: no I/O.

/// The id S3 gives the version a write makes while versioning is not
/// enabled (and every object of a bucket that never had it).
pub const NULL_VERSION_ID: &str = "null";

/// Bytes of a [`VersionStamp::position`].
pub const POSITION_LEN: usize = 12;

/// Length of a version id: 12 hex digits of time (ms), 16 of log index,
/// 8 of the command's place in its entry.
const ID_LEN: usize = 36;

/// What names one version: the entry that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionStamp {
    /// The leader's clock when it proposed the entry (Unix ms).
    pub unix_ms: u64,
    /// The entry's log index.
    pub index: u64,
    /// The command's place in a batched entry (0 alone).
    pub sub: u32,
}

impl VersionStamp {
    /// The version id S3 clients see: 36 lower-case hex digits.
    pub fn id(&self) -> String {
        format!(
            "{:012x}{:016x}{:08x}",
            self.unix_ms & 0xffff_ffff_ffff,
            self.index,
            self.sub
        )
    }

    /// The stamp an id names; `None` for anything else (`null` included),
    /// which names no position and must not reach a key encoding.
    pub fn parse(id: &str) -> Option<VersionStamp> {
        if id.len() != ID_LEN || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        Some(VersionStamp {
            unix_ms: u64::from_str_radix(&id[..12], 16).ok()?,
            index: u64::from_str_radix(&id[12..28], 16).ok()?,
            sub: u32::from_str_radix(&id[28..], 16).ok()?,
        })
    }

    /// Where the version sorts among its key's versions, as bytes: newer
    /// versions sort first, so a key's newest version is the first one a
    /// seek finds. Only index and place count: two versions of one key
    /// never share both.
    pub fn position(&self) -> [u8; POSITION_LEN] {
        let mut position = [0u8; POSITION_LEN];
        position[..8].copy_from_slice(&(!self.index).to_be_bytes());
        position[8..].copy_from_slice(&(!self.sub).to_be_bytes());
        position
    }
}

/// The position of a version stored with `stored` (a manifest's
/// `version_position`): an object written before versions existed has
/// none and sorts after every other, as the oldest.
pub fn stored_position(stored: &[u8]) -> [u8; POSITION_LEN] {
    stored.try_into().unwrap_or([0xff; POSITION_LEN])
}

/// Whether `id` can name a version: the null version or a stamp's id.
/// S3 answers anything else with `InvalidArgument`.
pub fn is_version_id(id: &str) -> bool {
    id == NULL_VERSION_ID || VersionStamp::parse(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(unix_ms: u64, index: u64, sub: u32) -> VersionStamp {
        VersionStamp {
            unix_ms,
            index,
            sub,
        }
    }

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = stamp(1_765_000_000_000, 7, 0);
        let b = stamp(1_765_000_000_001, 8, 3);
        assert_eq!(VersionStamp::parse(&a.id()), Some(a));
        assert_eq!(VersionStamp::parse(&b.id()), Some(b));
        assert_eq!(a.id().len(), ID_LEN);
        assert!(a.id() < b.id());
        assert!(is_version_id(&a.id()));
        assert!(is_version_id(NULL_VERSION_ID));
        for bad in ["", "NULL", "../x", &a.id()[1..], &a.id().to_uppercase()] {
            assert!(!is_version_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn newer_entries_sort_first_whatever_the_clock() {
        // A later leader with a clock behind: the log index decides.
        let older = stamp(2_000, 10, 0);
        let newer = stamp(1_000, 11, 0);
        assert!(newer.position() < older.position());
        // Within one batched entry, the later command is newer.
        assert!(stamp(5, 10, 1).position() < stamp(5, 10, 0).position());
        // A pre-versions object sorts after every stamped version.
        assert!(stored_position(&[]) > stamp(0, 1, 0).position());
        assert_eq!(stored_position(&older.position()), older.position());
    }
}
