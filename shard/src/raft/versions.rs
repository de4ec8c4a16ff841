//! What writes and deletes do to a key's versions, when their entry
//! applies.
//!
//! The layout keeps one invariant: `objects` holds a key's newest version
//! unless that is a delete marker; `versions` holds every other version,
//! newest first. So reading or listing current objects never sees an old
//! version, and the newest noncurrent version is the first one a seek
//! finds. A key has at most one `null` version (an id-less one: written
//! while versioning was never enabled or suspended): writing another
//! replaces it, as S3 does.
//!
//! The bucket's versioning comes in the command (the proposer's directory
//! read it), so every member decides alike. A command that says
//! "unversioned" for a key whose current version has an id (a proposer
//! that had not yet seen versioning enabled) keeps that version, as a
//! suspended bucket would: no write ever drops a version it was not told
//! to.

use prost::Message;
use rocksdb::{ReadOptions, WriteBatch, DB};
use shoal_proto::meta::{
    DefaultRetention, DeleteCondition, DeleteObject, LockMode, ObjectManifest, Versioning,
};

use super::pending::{object_record, version_record, Pending};
use super::types::ApplyOutcome;
use crate::meta::keys::{self, Cf};
use crate::meta::{cf, decode, MetaError};
use crate::object_lock::{default_retention, is_locked};
use crate::version_id::{stored_position, VersionStamp, NULL_VERSION_ID};

/// How the bucket wants its writes kept, as the command carries it.
pub(super) struct WriteRules<'a> {
    pub versioning: Versioning,
    pub default_retention: Option<&'a DefaultRetention>,
}

/// Makes `manifest` the key's current version: with versioning enabled
/// the current one becomes noncurrent; otherwise the new version is the
/// null one and replaces the earlier null version (unless Object Lock
/// keeps that). A version written without retention of its own gets the
/// bucket's default, counted from the entry's proposal time.
pub(super) fn write_version(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    mut manifest: ObjectManifest,
    rules: WriteRules<'_>,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let (bucket, key) = (manifest.bucket.clone(), manifest.key.clone());
    let enabled = rules.versioning == Versioning::Enabled;
    let object_key = keys::object_key(&bucket, key.as_bytes());
    let current = object_record(db, pending, &object_key)?;
    let null = match enabled {
        true => None,
        false => find_null(db, pending, &bucket, &key, current.as_ref())?,
    };
    if null
        .as_ref()
        .is_some_and(|n| is_locked(&n.manifest, stamp.unix_ms, false))
    {
        return Ok(ApplyOutcome::ObjectLocked);
    }
    manifest.version_position = stamp.position().to_vec();
    manifest.delete_marker = false;
    manifest.version_id = if enabled { stamp.id() } else { String::new() };
    if manifest.retention_mode() == LockMode::None {
        let default = rules.default_retention;
        if let Some((mode, until)) = default.and_then(|r| default_retention(r, stamp.unix_ms)) {
            manifest.set_retention_mode(mode);
            manifest.retain_until_unix_ms = until;
        }
    }
    keep_current(db, batch, pending, current, null);
    pending.ref_deltas.add(&manifest.chunks);
    batch.put_cf(cf(db, Cf::Objects), &object_key, manifest.encode_to_vec());
    pending.objects.insert(object_key, Some(manifest));
    Ok(if enabled {
        ApplyOutcome::Versioned(stamp)
    } else {
        ApplyOutcome::Applied
    })
}

/// A DELETE: of one version when it names one, else as the bucket's
/// versioning says (remove the object, or write a delete marker).
pub(super) fn delete_object(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    delete: DeleteObject,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let versioning = delete.versioning();
    let bypass = delete.bypass_governance;
    if let Some(condition) = &delete.condition {
        let named = (delete.bucket.as_str(), delete.key.as_str());
        match delete_target(db, pending, named, delete.version_id.as_deref())? {
            // Nothing there: nothing to delete, and no error.
            None => return Ok(ApplyOutcome::Applied),
            Some(target) if !condition_holds(condition, &target) => {
                return Ok(ApplyOutcome::PreconditionFailed)
            }
            Some(_) => {}
        }
    }
    let (bucket, key) = (delete.bucket, delete.key);
    if let Some(version_id) = delete.version_id {
        let now = (stamp.unix_ms, bypass);
        return delete_version(db, batch, pending, (&bucket, &key), &version_id, now);
    }
    let object_key = keys::object_key(&bucket, key.as_bytes());
    let current = object_record(db, pending, &object_key)?;
    let enabled = versioning == Versioning::Enabled;
    let null = match enabled {
        true => None,
        false => find_null(db, pending, &bucket, &key, current.as_ref())?,
    };
    if null
        .as_ref()
        .is_some_and(|n| is_locked(&n.manifest, stamp.unix_ms, bypass))
    {
        return Ok(ApplyOutcome::ObjectLocked);
    }
    // "Unversioned" from a proposer that has not seen versioning enabled
    // yet: where the key has versions, it is treated as suspended.
    let keeps_versions = versioning != Versioning::Unversioned
        || current.as_ref().is_some_and(|c| !c.version_id.is_empty())
        || noncurrent_versions(db, pending, &bucket, &key, |_| true)?.is_some();
    if !keeps_versions {
        // A bucket that never had versions: the object simply goes.
        if let Some(current) = current {
            pending.ref_deltas.remove(&current.chunks);
        }
        batch.delete_cf(cf(db, Cf::Objects), &object_key);
        pending.objects.insert(object_key, None);
        return Ok(ApplyOutcome::Applied);
    }
    keep_current(db, batch, pending, current, null);
    batch.delete_cf(cf(db, Cf::Objects), &object_key);
    pending.objects.insert(object_key, None);
    let marker = ObjectManifest {
        bucket,
        key,
        last_modified_unix_ms: stamp.unix_ms,
        version_id: if enabled { stamp.id() } else { String::new() },
        version_position: stamp.position().to_vec(),
        delete_marker: true,
        ..Default::default()
    };
    store_noncurrent(db, batch, pending, marker);
    Ok(ApplyOutcome::DeleteMarkerWritten(enabled.then_some(stamp)))
}

/// The version a conditional DELETE is judged on: the one it names, else
/// the current one, else the delete marker that hides the key.
fn delete_target(
    db: &DB,
    pending: &Pending,
    (bucket, key): (&str, &str),
    version_id: Option<&str>,
) -> Result<Option<ObjectManifest>, MetaError> {
    if let Some(version_id) = version_id {
        return Ok(find_version(db, pending, bucket, key, version_id)?.map(|f| f.manifest));
    }
    let object_key = keys::object_key(bucket, key.as_bytes());
    if let Some(current) = object_record(db, pending, &object_key)? {
        return Ok(Some(current));
    }
    let newest = noncurrent_versions(db, pending, bucket, key, |_| true)?;
    Ok(newest.map(|(_, v)| v).filter(|v| v.delete_marker))
}

/// Whether `target` is what the DELETE's condition asks of it.
fn condition_holds(condition: &DeleteCondition, target: &ObjectManifest) -> bool {
    // An ETag that did not parse is sent as no MD5: it matches nothing,
    // a delete marker (which has no MD5) included.
    let etag = !condition.if_match
        || condition.match_any
        || (!condition.match_md5.is_empty()
            && condition.match_md5 == target.md5
            && condition.match_part_count == target.part_count);
    let modified = condition
        .last_modified_unix_s
        .is_none_or(|s| s == target.last_modified_unix_ms / 1000);
    let size = condition
        .size_bytes
        .is_none_or(|size| size == target.size_bytes);
    etag && modified && size
}

/// Removes the version `version_id` names, if the key has it and Object
/// Lock allows at `now` (`(time, may bypass governance)`); when that was
/// the current one, the newest remaining version (unless a delete marker)
/// becomes current.
fn delete_version(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    (bucket, key): (&str, &str),
    version_id: &str,
    (now_ms, bypass_governance): (u64, bool),
) -> Result<ApplyOutcome, MetaError> {
    let Some(found) = find_version(db, pending, bucket, key, version_id)? else {
        // Deleting what is not there succeeds, as S3's DELETE does.
        return Ok(ApplyOutcome::Applied);
    };
    if is_locked(&found.manifest, now_ms, bypass_governance) {
        return Ok(ApplyOutcome::ObjectLocked);
    }
    let marker = found.manifest.delete_marker;
    remove_version(db, batch, pending, found);
    promote_newest(db, batch, pending, bucket, key)?;
    Ok(if marker {
        ApplyOutcome::DeleteMarkerRemoved
    } else {
        ApplyOutcome::Applied
    })
}

/// Deletes a version from where it was found, dropping its refs.
fn remove_version(db: &DB, batch: &mut WriteBatch, pending: &mut Pending, found: FoundVersion) {
    pending.ref_deltas.remove(&found.manifest.chunks);
    match found.place {
        Place::Current => {
            let m = &found.manifest;
            let object_key = keys::object_key(&m.bucket, m.key.as_bytes());
            batch.delete_cf(cf(db, Cf::Objects), &object_key);
            pending.objects.insert(object_key, None);
        }
        Place::Noncurrent(version_key) => {
            batch.delete_cf(cf(db, Cf::Versions), &version_key);
            pending.versions.insert(version_key, None);
        }
    }
}

/// Writes a version back where it was found, changed in what it says of
/// itself (its ACL, retention, legal hold) but not in its body: its chunk
/// refs stay as counted.
pub(super) fn rewrite_version(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    place: Place,
    manifest: ObjectManifest,
) {
    match place {
        Place::Current => {
            let key = keys::object_key(&manifest.bucket, manifest.key.as_bytes());
            batch.put_cf(cf(db, Cf::Objects), &key, manifest.encode_to_vec());
            pending.objects.insert(key, Some(manifest));
        }
        Place::Noncurrent(key) => {
            batch.put_cf(cf(db, Cf::Versions), &key, manifest.encode_to_vec());
            pending.versions.insert(key, Some(manifest));
        }
    }
}

/// Where a version was found.
pub(super) enum Place {
    /// In `objects`: the current version.
    Current,
    /// In `versions`, at this key.
    Noncurrent(Vec<u8>),
}

pub(super) struct FoundVersion {
    pub place: Place,
    pub manifest: ObjectManifest,
}

/// The version `version_id` names ("null" for the null version), as
/// earlier entries of the batch left things; `None` if the key has no such
/// version or the id is malformed.
pub(super) fn find_version(
    db: &DB,
    pending: &Pending,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<FoundVersion>, MetaError> {
    let wanted = if version_id == NULL_VERSION_ID {
        ""
    } else {
        version_id
    };
    let object_key = keys::object_key(bucket, key.as_bytes());
    if let Some(current) = object_record(db, pending, &object_key)? {
        if current.version_id == wanted {
            return Ok(Some(FoundVersion {
                place: Place::Current,
                manifest: current,
            }));
        }
    }
    let found = if wanted.is_empty() {
        noncurrent_versions(db, pending, bucket, key, |v| v.version_id.is_empty())?
    } else {
        let Some(stamp) = VersionStamp::parse(wanted) else {
            return Ok(None);
        };
        let version_key = keys::version_key(bucket, key.as_bytes(), &stamp.position());
        version_record(db, pending, &version_key)?
            .filter(|v| v.version_id == wanted)
            .map(|v| (version_key, v))
    };
    Ok(found.map(|(version_key, manifest)| FoundVersion {
        place: Place::Noncurrent(version_key),
        manifest,
    }))
}

/// The version an op on one version names (the current one without an
/// id), or the outcome that refuses it: no such version or object, or a
/// delete marker (which has no ACL or lock of its own).
pub(super) fn named_version(
    db: &DB,
    pending: &Pending,
    (bucket, key, version_id): (&str, &str, Option<&str>),
) -> Result<Result<FoundVersion, ApplyOutcome>, MetaError> {
    let found = match version_id {
        Some(id) => find_version(db, pending, bucket, key, id)?,
        None => {
            let object_key = keys::object_key(bucket, key.as_bytes());
            object_record(db, pending, &object_key)?.map(|manifest| FoundVersion {
                place: Place::Current,
                manifest,
            })
        }
    };
    Ok(match found {
        Some(found) if !found.manifest.delete_marker => Ok(found),
        _ if version_id.is_some() => Err(ApplyOutcome::NoSuchVersion),
        _ => Err(ApplyOutcome::NoSuchResource),
    })
}

/// Makes room for a new newest version (or delete marker): the key's
/// `null` version (found by [`find_null`] when versioning is not enabled)
/// goes, and the current version, unless that was it, becomes noncurrent.
fn keep_current(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    current: Option<ObjectManifest>,
    null: Option<FoundVersion>,
) {
    let replaced_current = matches!(
        null,
        Some(FoundVersion {
            place: Place::Current,
            ..
        })
    );
    if let Some(null) = null {
        remove_version(db, batch, pending, null);
    }
    if let Some(current) = current.filter(|_| !replaced_current) {
        store_noncurrent(db, batch, pending, current);
    }
}

/// The key's null version: the current one, or else among the others
/// (searched only then: a key has at most one).
fn find_null(
    db: &DB,
    pending: &Pending,
    bucket: &str,
    key: &str,
    current: Option<&ObjectManifest>,
) -> Result<Option<FoundVersion>, MetaError> {
    if let Some(current) = current.filter(|c| c.version_id.is_empty()) {
        return Ok(Some(FoundVersion {
            place: Place::Current,
            manifest: current.clone(),
        }));
    }
    let found = noncurrent_versions(db, pending, bucket, key, |v| v.version_id.is_empty())?;
    Ok(found.map(|(version_key, manifest)| FoundVersion {
        place: Place::Noncurrent(version_key),
        manifest,
    }))
}

/// Puts a version among the noncurrent ones, at its position.
fn store_noncurrent(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    manifest: ObjectManifest,
) {
    let position = stored_position(&manifest.version_position);
    let version_key = keys::version_key(&manifest.bucket, manifest.key.as_bytes(), &position);
    batch.put_cf(cf(db, Cf::Versions), &version_key, manifest.encode_to_vec());
    pending.versions.insert(version_key, Some(manifest));
}

/// With no current version left, makes the newest noncurrent one current
/// (unless it is a delete marker, which stays where it is).
fn promote_newest(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    bucket: &str,
    key: &str,
) -> Result<(), MetaError> {
    let object_key = keys::object_key(bucket, key.as_bytes());
    if object_record(db, pending, &object_key)?.is_some() {
        return Ok(());
    }
    let Some((version_key, newest)) = noncurrent_versions(db, pending, bucket, key, |_| true)?
    else {
        return Ok(());
    };
    if newest.delete_marker {
        return Ok(());
    }
    batch.delete_cf(cf(db, Cf::Versions), &version_key);
    pending.versions.insert(version_key, None);
    batch.put_cf(cf(db, Cf::Objects), &object_key, newest.encode_to_vec());
    pending.objects.insert(object_key, Some(newest));
    Ok(())
}

/// The newest noncurrent version of the key that `matches`, as earlier
/// entries of the batch left them: the store's versions and the batch's
/// merged in position order. Reads versions until one matches, so a
/// search for the null version reads them all when there is none.
pub(super) fn noncurrent_versions(
    db: &DB,
    pending: &Pending,
    bucket: &str,
    key: &str,
    matches: impl Fn(&ObjectManifest) -> bool,
) -> Result<Option<(Vec<u8>, ObjectManifest)>, MetaError> {
    let (start, end) = keys::versions_range(bucket, key.as_bytes());
    // The batch's own versions of the key (written or deleted), in order.
    let mut batch_versions = pending
        .versions
        .range(start.clone()..end.clone())
        .peekable();
    let mut read_opts = ReadOptions::default();
    read_opts.set_iterate_upper_bound(end);
    let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Versions), read_opts);
    iter.seek(&start);
    loop {
        let stored = iter.item().map(|(k, v)| (k.to_vec(), v.to_vec()));
        let from_batch = batch_versions.peek().map(|(k, _)| (*k).clone());
        let (version_key, version) = match (stored, from_batch) {
            (None, None) => break,
            // The batch's record of a key wins over the store's.
            (Some((k, _)), Some(b)) if b <= k => {
                if b == k {
                    iter.next();
                }
                let (_, v) = batch_versions.next().expect("peeked");
                (b, v.clone())
            }
            (None, Some(b)) => {
                let (_, v) = batch_versions.next().expect("peeked");
                (b, v.clone())
            }
            (Some((k, v)), _) => {
                iter.next();
                let version: ObjectManifest = decode(Cf::Versions, &k, &v)?;
                (k, Some(version))
            }
        };
        if let Some(version) = version.filter(|v| matches(v)) {
            return Ok(Some((version_key, version)));
        }
    }
    iter.status().map_err(MetaError::rocks("apply"))?;
    Ok(None)
}
