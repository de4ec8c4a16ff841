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
use shoal_proto::meta::{
    AddAccessKey, BucketRecord, ChunkRef, CollectChunks, CompleteUpload, MultipartUpload,
    PutObject, UploadRef, UploadedPart, User, Versioning, WriteCondition,
};

use super::expire;
use super::pending::{object_record, Pending};
use super::refs;
use super::types::ApplyOutcome;
use super::uploads::{abort_upload, forget_upload, upload_exists};
use super::version_meta;
use super::versions::{self, WriteRules};
use crate::directory::{Change, BOOTSTRAP_USER};
use crate::meta::keys::{self, Cf};
use crate::meta::{cf, decode, get_decoded, MetaError};
use crate::version_id::VersionStamp;

/// Applies one op into `batch`; `stamp` names the version a write or
/// delete marker makes.
pub(super) fn apply_op(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    op: Op,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let outcome = match op {
        Op::CreateBucket(record) => {
            if bucket_exists(db, pending, &record.name)? {
                ApplyOutcome::BucketAlreadyExists
            } else {
                put_bucket(db, batch, pending, record);
                ApplyOutcome::Applied
            }
        }
        Op::DeleteBucket(name) => delete_bucket(db, batch, pending, name)?,
        Op::PutObject(manifest) => {
            let rules = WriteRules {
                versioning: Versioning::Unversioned,
                default_retention: None,
            };
            versions::write_version(db, batch, pending, manifest, rules, stamp)?
        }
        Op::PutObjectIf(put) => put_object_if(db, batch, pending, put, stamp)?,
        Op::DeleteObject(delete) => versions::delete_object(db, batch, pending, delete, stamp)?,
        Op::CreateUpload(upload) => create_upload(db, batch, pending, upload)?,
        Op::PutPart(part) => put_part(db, batch, pending, part)?,
        Op::CompleteUpload(complete) => complete_upload(db, batch, pending, complete, stamp)?,
        Op::CreateUser(user) => create_user(db, batch, pending, user)?,
        Op::DeleteUser(name) => match user_record(db, pending, &name)? {
            None => ApplyOutcome::NoSuchUser,
            Some(_) => delete_user(db, batch, pending, name),
        },
        Op::DeleteUserWithoutBuckets(name) => match user_record(db, pending, &name)? {
            None => ApplyOutcome::NoSuchUser,
            // Its buckets would belong to nobody: no one could reach,
            // empty or delete them. They go to another user first.
            Some(user) if owns_buckets(db, pending, &user)? => ApplyOutcome::UserOwnsBuckets,
            Some(_) => delete_user(db, batch, pending, name),
        },
        Op::SetBucketOwner(set) => match bucket_record(db, pending, &set.bucket)? {
            None => ApplyOutcome::NoSuchBucket,
            Some(_) if user_with_id(db, pending, &set.owner_id)?.is_none() => {
                ApplyOutcome::NoSuchUser
            }
            Some(mut record) => {
                record.owner_id = set.owner_id;
                put_bucket(db, batch, pending, record);
                ApplyOutcome::Applied
            }
        },
        Op::AddAccessKey(add) => add_access_key(db, batch, pending, add)?,
        Op::SetUserEnabled(set) => match user_record(db, pending, &set.name)? {
            None => ApplyOutcome::NoSuchUser,
            Some(mut user) => {
                user.disabled = !set.enabled;
                put_user(db, batch, pending, user);
                ApplyOutcome::Applied
            }
        },
        Op::SetKeyEnabled(set) => match key_holder(db, pending, &set.name)? {
            None => ApplyOutcome::NoSuchAccessKey,
            Some(mut user) => {
                for key in user.keys.iter_mut().filter(|k| k.access_key == set.name) {
                    key.disabled = !set.enabled;
                }
                put_user(db, batch, pending, user);
                ApplyOutcome::Applied
            }
        },
        Op::DeleteAccessKey(access_key) => match key_holder(db, pending, &access_key)? {
            None => ApplyOutcome::NoSuchAccessKey,
            Some(mut user) => {
                user.keys.retain(|k| k.access_key != access_key);
                put_user(db, batch, pending, user);
                ApplyOutcome::Applied
            }
        },
        Op::PutBucketAcl(put) => match bucket_record(db, pending, &put.bucket)? {
            None => ApplyOutcome::NoSuchResource,
            Some(mut record) => {
                record.acl = put.acl;
                put_bucket(db, batch, pending, record);
                ApplyOutcome::Applied
            }
        },
        op @ (Op::PutBucketVersioning(_)
        | Op::PutBucketObjectLock(_)
        | Op::PutBucketTagging(_)
        | Op::PutBucketLifecycle(_)
        | Op::PutBucketCors(_)
        | Op::PutBucketPolicy(_)
        | Op::PutBucketEncryption(_)
        | Op::PutBucketOwnership(_)) => bucket_settings(db, batch, pending, op)?,
        Op::LifecycleExpire(expire) => expire::apply(db, batch, pending, expire, stamp)?,
        op @ (Op::PutObjectAcl(_)
        | Op::PutObjectTagging(_)
        | Op::PutObjectLegalHold(_)
        | Op::PutObjectRetention(_)) => version_meta::apply(db, batch, pending, op, stamp)?
            .expect("version_meta applies these ops"),
        Op::AbortUpload(upload) => abort_upload(db, batch, pending, upload)?,
        Op::CollectChunks(collect) => collect_chunks(db, batch, pending, collect)?,
        // The state machine stores inline chunks and applies a batch's ops
        // itself (`state_machine.rs`): one that reaches here is misplaced.
        Op::StoreChunks(_) => return Err(malformed("store_chunks")),
        Op::Batch(_) => return Err(malformed("batch")),
    };
    Ok(outcome)
}

/// Ops that change one of a bucket's settings in its record.
fn bucket_settings(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    op: Op,
) -> Result<ApplyOutcome, MetaError> {
    Ok(match op {
        Op::PutBucketVersioning(put) => {
            update_bucket(db, batch, pending, &put.bucket, |record| {
                // Object Lock needs every write to keep its versions.
                let lock = record.object_lock_enabled;
                if lock && put.versioning() != Versioning::Enabled {
                    return Err(ApplyOutcome::InvalidBucketState);
                }
                record.versioning = put.versioning;
                Ok(())
            })?
        }
        Op::PutBucketObjectLock(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            if record.versioning() != Versioning::Enabled {
                return Err(ApplyOutcome::InvalidBucketState);
            }
            record.object_lock_enabled = true;
            record.default_retention = put.default_retention;
            Ok(())
        })?,
        Op::PutBucketTagging(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.tags = put.tags;
            Ok(())
        })?,
        Op::PutBucketLifecycle(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.lifecycle = put.lifecycle;
            Ok(())
        })?,
        Op::PutBucketCors(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.cors = put.cors;
            Ok(())
        })?,
        Op::PutBucketPolicy(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.policy = put.policy;
            Ok(())
        })?,
        Op::PutBucketEncryption(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.encryption = put.encryption;
            Ok(())
        })?,
        Op::PutBucketOwnership(put) => update_bucket(db, batch, pending, &put.bucket, |record| {
            record.object_ownership = put.object_ownership;
            Ok(())
        })?,
        _ => unreachable!("apply_op hands only bucket settings here"),
    })
}

/// The collector's entry: forgets the named chunks still at zero.
fn collect_chunks(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    collect: CollectChunks,
) -> Result<ApplyOutcome, MetaError> {
    let collected = refs::collect(&mut pending.count_table(db, batch), &collect.chunks)?;
    tracing::debug!(
        named = collect.chunks.len(),
        collected = collected.len(),
        "collected unreferenced chunks"
    );
    Ok(ApplyOutcome::Applied)
}

/// Changes a bucket's record as `change` says, or answers why not
/// (`NoSuchBucket`, or what `change` refused).
fn update_bucket(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    name: &str,
    change: impl FnOnce(&mut BucketRecord) -> Result<(), ApplyOutcome>,
) -> Result<ApplyOutcome, MetaError> {
    let Some(mut record) = bucket_record(db, pending, name)? else {
        return Ok(ApplyOutcome::NoSuchBucket);
    };
    Ok(match change(&mut record) {
        Ok(()) => {
            put_bucket(db, batch, pending, record);
            ApplyOutcome::Applied
        }
        Err(refused) => refused,
    })
}

fn delete_bucket(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    name: String,
) -> Result<ApplyOutcome, MetaError> {
    if !bucket_exists(db, pending, &name)? {
        return Ok(ApplyOutcome::NoSuchBucket);
    }
    batch.delete_cf(cf(db, Cf::Buckets), name.as_bytes());
    pending.buckets.insert(name.clone(), None);
    pending.changes.push(Change::BucketDeleted(name));
    Ok(ApplyOutcome::Applied)
}

fn put_object_if(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    put: PutObject,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let rules = WriteRules {
        versioning: put.versioning(),
        default_retention: put.default_retention.as_ref(),
    };
    let manifest = put
        .manifest
        .clone()
        .ok_or_else(|| malformed("put_object_if"))?;
    let key = keys::object_key(&manifest.bucket, manifest.key.as_bytes());
    if let Some(refused) = check(db, pending, &key, put.condition.as_ref())? {
        return Ok(refused);
    }
    versions::write_version(db, batch, pending, manifest, rules, stamp)
}

fn create_upload(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    upload: MultipartUpload,
) -> Result<ApplyOutcome, MetaError> {
    if !keys::is_upload_id(&upload.upload_id) {
        return Err(malformed("create_upload"));
    }
    let key = keys::upload_key(&upload.bucket, upload.key.as_bytes(), &upload.upload_id);
    batch.put_cf(cf(db, Cf::Uploads), &key, upload.encode_to_vec());
    pending.uploads.insert(key, true);
    Ok(ApplyOutcome::Applied)
}

/// Records a part of an upload in progress (replacing one with the same
/// number).
fn put_part(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    part: UploadedPart,
) -> Result<ApplyOutcome, MetaError> {
    let upload = UploadRef {
        bucket: part.bucket.clone(),
        key: part.key.clone(),
        upload_id: part.upload_id.clone(),
    };
    if !upload_exists(db, pending, &upload)? {
        return Ok(ApplyOutcome::NoSuchUpload);
    }
    let key = keys::part_key(&part.upload_id, part.part_number);
    let replaced = match pending.parts.get(&key) {
        Some(earlier) => Some(earlier.clone()),
        None => get_decoded::<UploadedPart>(db, Cf::Parts, &key)?,
    };
    if let Some(replaced) = replaced {
        pending.ref_deltas.remove(&replaced.chunks);
    }
    pending.ref_deltas.add(&part.chunks);
    batch.put_cf(cf(db, Cf::Parts), &key, part.encode_to_vec());
    pending.parts.insert(key, part);
    Ok(ApplyOutcome::Applied)
}

/// Makes an upload's chosen parts one object, if every chosen part is
/// still the one the client listed (same MD5), and forgets the upload.
fn complete_upload(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    complete: CompleteUpload,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let versioning = complete.versioning();
    let default_retention = complete.default_retention;
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
    let rules = WriteRules {
        versioning,
        default_retention: default_retention.as_ref(),
    };
    let outcome = versions::write_version(db, batch, pending, manifest, rules, stamp)?;
    forget_upload(db, batch, pending, &upload)?;
    Ok(outcome)
}

/// A new user, unless the name or one of its access keys is taken.
fn create_user(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    user: User,
) -> Result<ApplyOutcome, MetaError> {
    if user_record(db, pending, &user.name)?.is_some() {
        return Ok(ApplyOutcome::UserExists);
    }
    let taken_key = user
        .keys
        .iter()
        .find(|k| key_holder(db, pending, &k.access_key).is_ok_and(|h| h.is_some()));
    if let Some(key) = taken_key {
        tracing::debug!(access_key = %key.access_key, "access key already in use");
        return Ok(ApplyOutcome::AccessKeyExists);
    }
    put_user(db, batch, pending, user);
    Ok(ApplyOutcome::Applied)
}

fn add_access_key(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    add: AddAccessKey,
) -> Result<ApplyOutcome, MetaError> {
    let key = add.key.ok_or_else(|| malformed("add_access_key"))?;
    match user_record(db, pending, &add.user)? {
        None => Ok(ApplyOutcome::NoSuchUser),
        Some(_) if key_holder(db, pending, &key.access_key)?.is_some() => {
            Ok(ApplyOutcome::AccessKeyExists)
        }
        Some(mut user) => {
            user.keys.push(key);
            put_user(db, batch, pending, user);
            Ok(ApplyOutcome::Applied)
        }
    }
}

/// The chunk refs an op carries (a manifest's or a part's); `None` for
/// ops without any.
pub(crate) fn op_chunks_mut(op: &mut Op) -> Option<&mut Vec<ChunkRef>> {
    match op {
        Op::PutObject(manifest) => Some(&mut manifest.chunks),
        Op::PutObjectIf(put) => put.manifest.as_mut().map(|m| &mut m.chunks),
        Op::PutPart(part) => Some(&mut part.chunks),
        _ => None,
    }
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

fn put_bucket(db: &DB, batch: &mut WriteBatch, pending: &mut Pending, record: BucketRecord) {
    batch.put_cf(
        cf(db, Cf::Buckets),
        record.name.as_bytes(),
        record.encode_to_vec(),
    );
    pending
        .buckets
        .insert(record.name.clone(), Some(record.clone()));
    pending.changes.push(Change::BucketPut(record));
}

fn put_user(db: &DB, batch: &mut WriteBatch, pending: &mut Pending, user: User) {
    batch.put_cf(
        cf(db, Cf::Users),
        user.name.as_bytes(),
        user.encode_to_vec(),
    );
    pending.users.insert(user.name.clone(), Some(user.clone()));
    pending.changes.push(Change::UserPut(user));
}

/// The user as earlier entries of the batch left it.
fn user_record(db: &DB, pending: &Pending, name: &str) -> Result<Option<User>, MetaError> {
    match pending.users.get(name) {
        Some(user) => Ok(user.clone()),
        None => get_decoded(db, Cf::Users, name.as_bytes()),
    }
}

fn delete_user(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    name: String,
) -> ApplyOutcome {
    batch.delete_cf(cf(db, Cf::Users), name.as_bytes());
    pending.users.insert(name.clone(), None);
    pending.changes.push(Change::UserDeleted(name));
    ApplyOutcome::Applied
}

/// Whether a bucket (as earlier entries of the batch left them) belongs to
/// `user`; buckets made before users existed belong to the bootstrap user.
/// Scans the buckets: deleting a user is rare.
fn owns_buckets(db: &DB, pending: &Pending, user: &User) -> Result<bool, MetaError> {
    let owned = find(
        db,
        Cf::Buckets,
        &pending.buckets,
        |record: &BucketRecord| {
            record.owner_id == user.id
                || (record.owner_id.is_empty() && user.name == BOOTSTRAP_USER)
        },
    )?;
    Ok(owned.is_some())
}

/// The user whose id is `user_id`, as earlier entries of the batch left
/// things. Scans the users: there are few.
fn user_with_id(db: &DB, pending: &Pending, user_id: &str) -> Result<Option<User>, MetaError> {
    find(db, Cf::Users, &pending.users, |user: &User| {
        user.id == user_id
    })
}

/// The user holding `access_key`, as earlier entries of the batch left
/// things. Scans the users: there are few, and key changes are rare.
fn key_holder(db: &DB, pending: &Pending, access_key: &str) -> Result<Option<User>, MetaError> {
    find(db, Cf::Users, &pending.users, |user: &User| {
        user.keys.iter().any(|k| k.access_key == access_key)
    })
}

/// The first record of column family `family` (keyed by name) that
/// matches, as earlier entries of the batch (`pending`) left them.
fn find<T: Message + Default + Clone>(
    db: &DB,
    family: Cf,
    pending: &HashMap<String, Option<T>>,
    matches: impl Fn(&T) -> bool,
) -> Result<Option<T>, MetaError> {
    if let Some(record) = pending.values().flatten().find(|record| matches(record)) {
        return Ok(Some(record.clone()));
    }
    let mut iter = db.raw_iterator_cf(cf(db, family));
    iter.seek_to_first();
    while let Some((key, value)) = iter.item() {
        let name = String::from_utf8_lossy(key);
        if !pending.contains_key(name.as_ref()) {
            let record: T = decode(family, key, value)?;
            if matches(&record) {
                return Ok(Some(record));
            }
        }
        iter.next();
    }
    iter.status().map_err(MetaError::rocks("apply"))?;
    Ok(None)
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
    let current = object_record(db, pending, object_key)?.map(|m| (m.md5, m.part_count));
    if condition.if_none_exists && current.is_some() {
        return Ok(Some(ApplyOutcome::PreconditionFailed));
    }
    if condition.if_exists && current.is_none() {
        return Ok(Some(ApplyOutcome::NoSuchKey));
    }
    let none_match = (&condition.none_match_md5, condition.none_match_part_count);
    if condition.if_none_match
        && current
            .as_ref()
            .is_some_and(|(md5, parts)| (md5, *parts) == none_match)
    {
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
    Ok(bucket_record(db, pending, name)?.is_some())
}

/// The bucket as earlier entries of the batch left it.
fn bucket_record(
    db: &DB,
    pending: &Pending,
    name: &str,
) -> Result<Option<BucketRecord>, MetaError> {
    match pending.buckets.get(name) {
        Some(record) => Ok(record.clone()),
        None => get_decoded(db, Cf::Buckets, name.as_bytes()),
    }
}
