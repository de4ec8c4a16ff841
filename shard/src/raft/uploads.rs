//! Multipart uploads in the state machine: whether one is in progress,
//! its parts, and forgetting it (completed, aborted, reaped or expired).

use std::collections::BTreeMap;

use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{MultipartUpload, UploadRef, UploadedPart};

use super::pending::Pending;
use super::types::ApplyOutcome;
use crate::meta::keys::{self, Cf};
use crate::meta::{cf, decode, get_decoded, MetaError};

/// Aborts an upload in progress, forgetting it and its parts.
pub(super) fn abort_upload(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    upload: UploadRef,
) -> Result<ApplyOutcome, MetaError> {
    if !upload_exists(db, pending, &upload)? {
        return Ok(ApplyOutcome::NoSuchUpload);
    }
    forget_upload(db, batch, pending, &upload)?;
    Ok(ApplyOutcome::Applied)
}

/// Deletes the upload and every part of it, dropping the parts' refs (a
/// completed upload's manifest has taken its own refs to the chosen ones).
pub(super) fn forget_upload(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    upload: &UploadRef,
) -> Result<(), MetaError> {
    for part in upload_parts(db, pending, &upload.upload_id)? {
        pending.ref_deltas.remove(&part.chunks);
    }
    let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
    batch.delete_cf(cf(db, Cf::Uploads), &key);
    let (start, end) = keys::parts_range(&upload.upload_id);
    batch.delete_range_cf(cf(db, Cf::Parts), &start, &end);
    pending
        .parts
        .retain(|part_key, _| part_key < &start || part_key >= &end);
    pending.uploads.insert(key, false);
    Ok(())
}

/// Every part of an upload, as earlier entries of the batch left them.
fn upload_parts(
    db: &DB,
    pending: &Pending,
    upload_id: &str,
) -> Result<Vec<UploadedPart>, MetaError> {
    let (start, end) = keys::parts_range(upload_id);
    let mut parts: BTreeMap<Vec<u8>, UploadedPart> = pending
        .parts
        .iter()
        .filter(|(key, _)| **key >= start && **key < end)
        .map(|(key, part)| (key.clone(), part.clone()))
        .collect();
    let mut iter = db.raw_iterator_cf(cf(db, Cf::Parts));
    iter.seek(&start);
    while let Some((key, value)) = iter.item() {
        if key >= &end[..] {
            break;
        }
        if !parts.contains_key(key) {
            parts.insert(key.to_vec(), decode(Cf::Parts, key, value)?);
        }
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("apply"))?;
    Ok(parts.into_values().collect())
}

/// Whether the upload is in progress once the batch's earlier entries are
/// applied. A malformed id names no upload.
pub(super) fn upload_exists(
    db: &DB,
    pending: &Pending,
    upload: &UploadRef,
) -> Result<bool, MetaError> {
    if !keys::is_upload_id(&upload.upload_id) {
        return Ok(false);
    }
    let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
    if let Some(&exists) = pending.uploads.get(&key) {
        return Ok(exists);
    }
    let stored = db
        .get_pinned_cf(cf(db, Cf::Uploads), &key)
        .map_err(MetaError::rocks("apply"))?;
    Ok(stored.is_some())
}

/// The upload's record, if it is in progress and was not started by an
/// earlier entry of this batch (whose record only the batch holds).
pub(super) fn upload_record(
    db: &DB,
    pending: &Pending,
    upload: &UploadRef,
) -> Result<Option<MultipartUpload>, MetaError> {
    if !keys::is_upload_id(&upload.upload_id) {
        return Ok(None);
    }
    let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
    match pending.uploads.get(&key) {
        Some(_) => Ok(None),
        None => get_decoded(db, Cf::Uploads, &key),
    }
}
