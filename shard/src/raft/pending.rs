//! What earlier entries of a batch being applied left behind, and reads
//! that see it: rocksdb sees the batch only once it is written, so every
//! read during apply looks here first.

use std::collections::{BTreeMap, HashMap};

use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{BucketRecord, ObjectManifest, UploadedPart, User};

use super::refs::{self, PendingRefs, RefDeltas};
use crate::directory::Change;
use crate::meta::keys::Cf;
use crate::meta::{get_decoded, MetaError};

/// What earlier entries of the batch being built left behind.
#[derive(Default)]
pub(super) struct Pending {
    /// Bucket name → the bucket, or `None` once deleted.
    pub(super) buckets: HashMap<String, Option<BucketRecord>>,
    /// `objects` key → the object's manifest, or `None` once deleted.
    pub(super) objects: HashMap<Vec<u8>, Option<ObjectManifest>>,
    /// `versions` key → the noncurrent version, or `None` once deleted;
    /// ordered, because a key's versions are searched in order.
    pub(super) versions: BTreeMap<Vec<u8>, Option<ObjectManifest>>,
    /// `uploads` key → whether the upload is in progress.
    pub(super) uploads: HashMap<Vec<u8>, bool>,
    /// `parts` key → the part written by an earlier entry.
    pub(super) parts: HashMap<Vec<u8>, UploadedPart>,
    /// User name → the user, or `None` once deleted.
    pub(super) users: HashMap<String, Option<User>>,
    /// Bucket and user changes, for the [`Directory`](crate::directory)
    /// once the batch is written.
    pub(super) changes: Vec<Change>,
    /// Chunk ref changes of the entry being applied; the caller settles
    /// them into the counts after each entry (see [`super::refs`]).
    pub(super) ref_deltas: RefDeltas,
    /// Chunk counts as earlier entries of the batch left them.
    pub(super) counts: PendingRefs,
}

impl Pending {
    /// The counts as this batch leaves them, for `refs::settle` and
    /// `refs::collect`.
    pub(super) fn count_table<'a>(
        &'a mut self,
        db: &'a DB,
        batch: &'a mut WriteBatch,
    ) -> refs::BatchCounts<'a> {
        refs::BatchCounts {
            db,
            batch,
            pending: &mut self.counts,
        }
    }
}

/// The object as earlier entries of the batch left it.
pub(super) fn object_record(
    db: &DB,
    pending: &Pending,
    object_key: &[u8],
) -> Result<Option<ObjectManifest>, MetaError> {
    match pending.objects.get(object_key) {
        Some(manifest) => Ok(manifest.clone()),
        None => get_decoded(db, Cf::Objects, object_key),
    }
}

/// A noncurrent version as earlier entries of the batch left it.
pub(super) fn version_record(
    db: &DB,
    pending: &Pending,
    version_key: &[u8],
) -> Result<Option<ObjectManifest>, MetaError> {
    match pending.versions.get(version_key) {
        Some(version) => Ok(version.clone()),
        None => get_decoded(db, Cf::Versions, version_key),
    }
}
