//! Reading a key's versions: one by id, the newest, and listings of every
//! version in key order, newest first (ListObjectVersions).
//!
//! The layout (`objects` holds the current version unless that is a
//! delete marker, `versions` every other, newest first) is written by the
//! state machine (`raft/versions.rs`); this side only reads it.

use rocksdb::{ReadOptions, DB};
use shoal_proto::meta::{ObjectManifest, VersionListed};

use super::keys::{self, Cf};
use super::{cf, decode, get_decoded, MetaError, MetaStore};
use crate::version_id::{stored_position, VersionStamp, NULL_VERSION_ID, POSITION_LEN};

/// One entry of a versions listing.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSummary {
    /// What a listing shows of the version (delete markers included).
    pub listed: VersionListed,
    /// Whether it is the key's newest version.
    pub is_latest: bool,
    /// Where it sorts among the key's versions: a listing continues after
    /// `(key, position)`.
    pub position: [u8; POSITION_LEN],
}

/// Where a versions listing continues: after every version of `key`, or
/// with `position`, after that version of it.
pub type VersionCursor = (Vec<u8>, Option<[u8; POSITION_LEN]>);

impl MetaStore {
    /// A version of the object: the one `version_id` names ("null" for
    /// the null version), or without one the current version or, when the
    /// newest version is a delete marker, that marker. `None`: the key has
    /// no such version (or none at all).
    pub async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
    ) -> Result<Option<ObjectManifest>, MetaError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking("get_version", move |db| match version_id {
            None => match get_decoded(db, Cf::Objects, &keys::object_key(&bucket, key.as_bytes()))?
            {
                Some(current) => Ok(Some(current)),
                None => Ok(newest_noncurrent(db, &bucket, &key)?.filter(|v| v.delete_marker)),
            },
            Some(id) => version_by_id(db, &bucket, &key, &id),
        })
        .await
    }

    /// Up to `limit` versions of `bucket`'s keys that start with `prefix`,
    /// after `after`: keys in byte order, each key's versions newest
    /// first. Merges the current versions (`objects`) with the others
    /// (`versions`); decodes only what a listing shows.
    pub async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<VersionCursor>,
        limit: usize,
    ) -> Result<Vec<VersionSummary>, MetaError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let bucket = bucket.to_owned();
        let prefix = prefix.as_bytes().to_vec();
        self.blocking("list_versions", move |db| {
            list_versions(db, &bucket, &prefix, after.as_ref(), limit)
        })
        .await
    }
}

fn version_by_id(
    db: &DB,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<Option<ObjectManifest>, MetaError> {
    let wanted = if id == NULL_VERSION_ID { "" } else { id };
    let current =
        get_decoded::<ObjectManifest>(db, Cf::Objects, &keys::object_key(bucket, key.as_bytes()))?;
    if let Some(current) = current.filter(|c| c.version_id == wanted) {
        return Ok(Some(current));
    }
    if wanted.is_empty() {
        return null_noncurrent(db, bucket, key);
    }
    let Some(stamp) = VersionStamp::parse(wanted) else {
        return Ok(None);
    };
    let version_key = keys::version_key(bucket, key.as_bytes(), &stamp.position());
    Ok(
        get_decoded::<ObjectManifest>(db, Cf::Versions, &version_key)?
            .filter(|v| v.version_id == wanted),
    )
}

/// The key's newest noncurrent version.
fn newest_noncurrent(
    db: &DB,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectManifest>, MetaError> {
    first_noncurrent(db, bucket, key, |_| true)
}

/// The key's null version among the noncurrent ones (reads them all when
/// there is none: null lookups are rare).
fn null_noncurrent(db: &DB, bucket: &str, key: &str) -> Result<Option<ObjectManifest>, MetaError> {
    first_noncurrent(db, bucket, key, |v| v.version_id.is_empty())
}

fn first_noncurrent(
    db: &DB,
    bucket: &str,
    key: &str,
    matches: impl Fn(&ObjectManifest) -> bool,
) -> Result<Option<ObjectManifest>, MetaError> {
    let (start, end) = keys::versions_range(bucket, key.as_bytes());
    let mut read_opts = ReadOptions::default();
    read_opts.set_iterate_upper_bound(end);
    let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Versions), read_opts);
    iter.seek(&start);
    while let Some((k, v)) = iter.item() {
        let version: ObjectManifest = decode(Cf::Versions, k, v)?;
        if matches(&version) {
            return Ok(Some(version));
        }
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("get_version"))?;
    Ok(None)
}

/// Merges `objects` and `versions` from the cursor on; see
/// [`MetaStore::list_versions`].
fn list_versions(
    db: &DB,
    bucket: &str,
    prefix: &[u8],
    after: Option<&VersionCursor>,
    limit: usize,
) -> Result<Vec<VersionSummary>, MetaError> {
    let full_prefix = keys::object_key(bucket, prefix);
    let end = keys::bucket_objects_end(bucket);
    let iterator = |family: Cf, start: &[u8]| {
        let mut read_opts = ReadOptions::default();
        read_opts.set_iterate_upper_bound(end.clone());
        let mut iter = db.raw_iterator_cf_opt(cf(db, family), read_opts);
        iter.seek(start);
        iter
    };
    // The current version is every key's newest: a cursor inside a key
    // (or past it) has passed it.
    let after_key = after.map(|(key, _)| key.as_slice());
    let mut current = iterator(Cf::Objects, &keys::list_start(bucket, prefix, after_key));
    let versions_after = after.map(|(key, position)| (key.as_slice(), position.as_ref()));
    let mut noncurrent = iterator(
        Cf::Versions,
        &keys::versions_start(bucket, prefix, versions_after),
    );
    // A listing that starts inside a key has shown that key's newest.
    let mut last_key: Option<Vec<u8>> = after
        .filter(|(_, position)| position.is_some())
        .map(|(key, _)| keys::object_key(bucket, key));
    let mut listed = Vec::with_capacity(limit.min(crate::limits::LIST_KEYS_MAX));
    while listed.len() < limit {
        let from_current = current.key().filter(|k| k.starts_with(&full_prefix));
        let from_versions = noncurrent
            .key()
            .filter(|k| k.starts_with(&full_prefix))
            .and_then(|k| keys::versioned_object_key(k).map(|object| (object, k)));
        // Current first when both name the same key: it is the newest.
        let take_current = match (from_current, from_versions) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(c), Some((object, _))) => c <= object,
        };
        let (object_key, summary) = if take_current {
            let (k, v) = current.item().expect("checked above");
            let listed: VersionListed = decode(Cf::Objects, k, v)?;
            let position = stored_position(&listed.version_position);
            let object_key = k.to_vec();
            current.next();
            (object_key, (listed, position))
        } else {
            let (k, v) = noncurrent.item().expect("checked above");
            let listed: VersionListed = decode(Cf::Versions, k, v)?;
            let position = k[k.len() - POSITION_LEN..]
                .try_into()
                .expect("a versions key ends in a position");
            let object_key = keys::versioned_object_key(k)
                .expect("checked above")
                .to_vec();
            noncurrent.next();
            (object_key, (listed, position))
        };
        let is_latest = last_key.as_ref() != Some(&object_key);
        last_key = Some(object_key);
        listed.push(VersionSummary {
            listed: summary.0,
            is_latest,
            position: summary.1,
        });
    }
    current
        .status()
        .map_err(MetaError::rocks("list_versions"))?;
    noncurrent
        .status()
        .map_err(MetaError::rocks("list_versions"))?;
    Ok(listed)
}
