//! What each [`MetaCommand`](shoal_proto::meta::MetaCommand) op does to the
//! metadata store when its entry is applied.
//!
//! Deterministic: the outcome depends only on the store and the entries
//! applied before, so every replica computes the same one. Effects go
//! into the caller's `WriteBatch`; [`Pending`] remembers what earlier
//! entries of the same batch did, because rocksdb sees the batch only once
//! it is written. Conditions (bucket exists, upload in progress, object
//! ETag) are checked here, at apply time, so racing proposals cannot both
//! pass a check that only one of them may pass.

use std::collections::HashMap;

use prost::Message;
use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{ObjectManifest, UploadRef, UploadedPart, WriteCondition};

use super::types::ApplyOutcome;
use crate::meta::keys::{self, Cf};
use crate::meta::{cf, get_decoded, MetaError};

/// What earlier entries of the batch being built left behind.
#[derive(Default)]
pub(super) struct Pending {
    /// Bucket name → whether it exists.
    buckets: HashMap<String, bool>,
    /// `objects` key → the object's ETag parts (MD5, part count), or
    /// `None` once deleted.
    objects: HashMap<Vec<u8>, Option<(Vec<u8>, u32)>>,
    /// `uploads` key → whether the upload is in progress.
    uploads: HashMap<Vec<u8>, bool>,
    /// `parts` key → the part written by an earlier entry.
    parts: HashMap<Vec<u8>, UploadedPart>,
}

/// Applies one op into `batch`.
pub(super) fn apply_op(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    op: Op,
) -> Result<ApplyOutcome, MetaError> {
    let outcome = match op {
        Op::CreateBucket(record) => {
            if bucket_exists(db, pending, &record.name)? {
                ApplyOutcome::BucketAlreadyExists
            } else {
                batch.put_cf(
                    cf(db, Cf::Buckets),
                    record.name.as_bytes(),
                    record.encode_to_vec(),
                );
                pending.buckets.insert(record.name, true);
                ApplyOutcome::Applied
            }
        }
        Op::DeleteBucket(name) => {
            if bucket_exists(db, pending, &name)? {
                batch.delete_cf(cf(db, Cf::Buckets), name.as_bytes());
                pending.buckets.insert(name, false);
                ApplyOutcome::Applied
            } else {
                ApplyOutcome::NoSuchBucket
            }
        }
        Op::PutObject(manifest) => {
            put_object(db, batch, pending, manifest);
            ApplyOutcome::Applied
        }
        Op::PutObjectIf(put) => {
            let manifest = put.manifest.ok_or_else(|| malformed("put_object_if"))?;
            let key = keys::object_key(&manifest.bucket, manifest.key.as_bytes());
            match check(db, pending, &key, put.condition.as_ref())? {
                Some(refused) => refused,
                None => {
                    put_object(db, batch, pending, manifest);
                    ApplyOutcome::Applied
                }
            }
        }
        Op::DeleteObject(delete) => {
            let key = keys::object_key(&delete.bucket, delete.key.as_bytes());
            batch.delete_cf(cf(db, Cf::Objects), &key);
            pending.objects.insert(key, None);
            ApplyOutcome::Applied
        }
        Op::CreateUpload(upload) => {
            if !keys::is_upload_id(&upload.upload_id) {
                return Err(malformed("create_upload"));
            }
            let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
            batch.put_cf(cf(db, Cf::Uploads), &key, upload.encode_to_vec());
            pending.uploads.insert(key, true);
            ApplyOutcome::Applied
        }
        Op::PutPart(part) => {
            let upload = UploadRef {
                bucket: part.bucket.clone(),
                key: part.key.clone(),
                upload_id: part.upload_id.clone(),
            };
            if upload_exists(db, pending, &upload)? {
                let key = keys::part_key(&part.upload_id, part.part_number);
                batch.put_cf(cf(db, Cf::Parts), &key, part.encode_to_vec());
                pending.parts.insert(key, part);
                ApplyOutcome::Applied
            } else {
                ApplyOutcome::NoSuchUpload
            }
        }
        Op::CompleteUpload(complete) => {
            let upload = complete
                .upload
                .ok_or_else(|| malformed("complete_upload"))?;
            let mut manifest = complete
                .manifest
                .ok_or_else(|| malformed("complete_upload"))?;
            if !upload_exists(db, pending, &upload)? {
                return Ok(ApplyOutcome::NoSuchUpload);
            }
            let key = keys::object_key(&manifest.bucket, manifest.key.as_bytes());
            if let Some(refused) = check(db, pending, &key, complete.condition.as_ref())? {
                return Ok(refused);
            }
            for chosen in &complete.parts {
                let part_key = keys::part_key(&upload.upload_id, chosen.part_number);
                let part = match pending.parts.get(&part_key) {
                    Some(part) => Some(part.clone()),
                    None => get_decoded::<UploadedPart>(db, Cf::Parts, &part_key)?,
                };
                match part {
                    Some(part) if part.md5 == chosen.md5 => manifest.chunks.extend(part.chunks),
                    _ => return Ok(ApplyOutcome::InvalidPart),
                }
            }
            put_object(db, batch, pending, manifest);
            forget_upload(db, batch, pending, &upload);
            ApplyOutcome::Applied
        }
        Op::AbortUpload(upload) => {
            if upload_exists(db, pending, &upload)? {
                forget_upload(db, batch, pending, &upload);
                ApplyOutcome::Applied
            } else {
                ApplyOutcome::NoSuchUpload
            }
        }
    };
    Ok(outcome)
}

/// A command whose required field is missing: no replica can apply it, so
/// the group stops rather than guess.
fn malformed(op: &str) -> MetaError {
    MetaError::decode(
        Cf::RaftLog.name(),
        op.as_bytes(),
        "MetaCommand lacks a required field",
    )
}

fn put_object(db: &DB, batch: &mut WriteBatch, pending: &mut Pending, manifest: ObjectManifest) {
    let key = keys::object_key(&manifest.bucket, manifest.key.as_bytes());
    batch.put_cf(cf(db, Cf::Objects), &key, manifest.encode_to_vec());
    pending
        .objects
        .insert(key, Some((manifest.md5, manifest.part_count)));
}

/// Deletes the upload and every part of it.
fn forget_upload(db: &DB, batch: &mut WriteBatch, pending: &mut Pending, upload: &UploadRef) {
    let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
    batch.delete_cf(cf(db, Cf::Uploads), &key);
    let (start, end) = keys::parts_range(&upload.upload_id);
    batch.delete_range_cf(cf(db, Cf::Parts), start, end);
    pending.uploads.insert(key, false);
}

/// `None` when the write may go ahead, or the outcome that refuses it.
fn check(
    db: &DB,
    pending: &Pending,
    object_key: &[u8],
    condition: Option<&WriteCondition>,
) -> Result<Option<ApplyOutcome>, MetaError> {
    let Some(condition) = condition else {
        return Ok(None);
    };
    let current = match pending.objects.get(object_key) {
        Some(state) => state.clone(),
        None => get_decoded::<ObjectManifest>(db, Cf::Objects, object_key)?
            .map(|m| (m.md5, m.part_count)),
    };
    if condition.if_none_exists && current.is_some() {
        return Ok(Some(ApplyOutcome::PreconditionFailed));
    }
    if condition.if_match {
        return Ok(match current {
            None => Some(ApplyOutcome::NoSuchKey),
            Some((md5, parts))
                if md5 == condition.match_md5 && parts == condition.match_part_count =>
            {
                None
            }
            Some(_) => Some(ApplyOutcome::PreconditionFailed),
        });
    }
    Ok(None)
}

/// Whether `name` exists once the batch's earlier entries are applied.
fn bucket_exists(db: &DB, pending: &Pending, name: &str) -> Result<bool, MetaError> {
    if let Some(&exists) = pending.buckets.get(name) {
        return Ok(exists);
    }
    let stored = db
        .get_pinned_cf(cf(db, Cf::Buckets), name.as_bytes())
        .map_err(MetaError::rocks("apply"))?;
    Ok(stored.is_some())
}

/// Whether the upload is in progress once the batch's earlier entries are
/// applied. A malformed id names no upload.
fn upload_exists(db: &DB, pending: &Pending, upload: &UploadRef) -> Result<bool, MetaError> {
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
