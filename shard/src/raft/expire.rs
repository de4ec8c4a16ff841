//! Applying what the lifecycle worker found due. Each action is checked
//! again here, against the key's versions as they are now and with the
//! entry's proposal time as "now" ([`crate::lifecycle`]): a version
//! written again, a rule changed or Object Lock since the worker looked
//! make it [`ApplyOutcome::NotDue`], and nothing changes.

use std::cell::RefCell;

use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{
    DeleteObject, LifecycleAction, LifecycleExpire, ObjectManifest, UploadRef,
};

use super::pending::{object_record, Pending};
use super::types::ApplyOutcome;
use super::uploads::{abort_upload, upload_record};
use super::versions::{self, noncurrent_versions};
use crate::lifecycle::{current_due, lone_marker_due, noncurrent_due, upload_due};
use crate::meta::keys;
use crate::meta::MetaError;
use crate::object_lock::is_locked;
use crate::version_id::{VersionStamp, NULL_VERSION_ID};

pub(super) fn apply(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    expire: LifecycleExpire,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let rule = expire.rule.clone().unwrap_or_default();
    let (now, day_ms) = (stamp.unix_ms, expire.day_ms.max(1));
    let (bucket, key) = (expire.bucket.as_str(), expire.key.as_str());
    match expire.action() {
        LifecycleAction::ExpireCurrent => {
            let current = object_record(db, pending, &keys::object_key(bucket, key.as_bytes()))?;
            if !current.is_some_and(|c| current_due(&rule, &c, now, day_ms)) {
                return Ok(ApplyOutcome::NotDue);
            }
            // What a DELETE does: a delete marker under versioning.
            let delete = DeleteObject {
                bucket: expire.bucket.clone(),
                key: expire.key.clone(),
                versioning: expire.versioning,
                version_id: None,
                bypass_governance: false,
                condition: None,
            };
            versions::delete_object(db, batch, pending, delete, stamp)
        }
        LifecycleAction::ExpireNoncurrent | LifecycleAction::RemoveDeleteMarker => {
            let all = versions_newest_first(db, pending, bucket, key)?;
            let wanted = match expire.version_id.as_str() {
                NULL_VERSION_ID => "",
                id => id,
            };
            let Some(at) = all.iter().position(|v| v.version_id == wanted) else {
                return Ok(ApplyOutcome::NotDue);
            };
            let version = &all[at];
            let due = match expire.action() {
                LifecycleAction::RemoveDeleteMarker => {
                    all.len() == 1 && version.delete_marker && lone_marker_due(&rule, key)
                }
                // Noncurrent since its successor was written; the versions
                // between the current one and it are the newer noncurrent.
                _ => {
                    at > 0
                        && noncurrent_due(
                            &rule,
                            version,
                            all[at - 1].last_modified_unix_ms,
                            at - 1,
                            now,
                            day_ms,
                        )
                }
            };
            if !due || is_locked(version, now, false) {
                return Ok(ApplyOutcome::NotDue);
            }
            let delete = DeleteObject {
                bucket: expire.bucket.clone(),
                key: expire.key.clone(),
                versioning: expire.versioning,
                version_id: Some(expire.version_id.clone()),
                bypass_governance: false,
                condition: None,
            };
            versions::delete_object(db, batch, pending, delete, stamp)
        }
        LifecycleAction::AbortUpload => {
            let upload = UploadRef {
                bucket: expire.bucket.clone(),
                key: expire.key.clone(),
                upload_id: expire.upload_id.clone(),
            };
            match upload_record(db, pending, &upload)? {
                Some(record) if upload_due(&rule, &record, now, day_ms) => {
                    abort_upload(db, batch, pending, upload)
                }
                _ => Ok(ApplyOutcome::NotDue),
            }
        }
        LifecycleAction::None => Ok(ApplyOutcome::NotDue),
    }
}

/// Every version of the key, the current one first, as earlier entries of
/// the batch left them. Reads them all: an expiration is rare next to the
/// writes that made the versions.
fn versions_newest_first(
    db: &DB,
    pending: &Pending,
    bucket: &str,
    key: &str,
) -> Result<Vec<ObjectManifest>, MetaError> {
    let current = object_record(db, pending, &keys::object_key(bucket, key.as_bytes()))?;
    let others = RefCell::new(Vec::new());
    noncurrent_versions(db, pending, bucket, key, |version| {
        others.borrow_mut().push(version.clone());
        false
    })?;
    Ok(current.into_iter().chain(others.into_inner()).collect())
}
