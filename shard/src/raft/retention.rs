//! Object Lock ops on one version: its retention and its legal hold,
//! changed when their entry applies, under the rules of
//! [`crate::object_lock`] with the entry's proposal time as "now".

use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::{ObjectManifest, PutObjectLegalHold, PutObjectRetention};

use super::pending::Pending;
use super::types::ApplyOutcome;
use super::versions::{named_version, rewrite_version};
use crate::meta::MetaError;
use crate::object_lock::retention_change_allowed;
use crate::version_id::VersionStamp;

pub(super) fn put_retention(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    put: PutObjectRetention,
    stamp: VersionStamp,
) -> Result<ApplyOutcome, MetaError> {
    let version = (&put.bucket[..], &put.key[..], put.version_id.as_deref());
    let found = match named_version(db, pending, version)? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let mode = put.mode();
    let until = put.retain_until_unix_ms;
    if !retention_change_allowed(
        &found.manifest,
        mode,
        until,
        stamp.unix_ms,
        put.bypass_governance,
    ) {
        return Ok(ApplyOutcome::ObjectLocked);
    }
    let mut manifest = found.manifest;
    manifest.set_retention_mode(mode);
    manifest.retain_until_unix_ms = until;
    rewrite_version(db, batch, pending, found.place, manifest);
    Ok(ApplyOutcome::Applied)
}

pub(super) fn put_legal_hold(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    put: PutObjectLegalHold,
) -> Result<ApplyOutcome, MetaError> {
    let version = (&put.bucket[..], &put.key[..], put.version_id.as_deref());
    let found = match named_version(db, pending, version)? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let mut manifest: ObjectManifest = found.manifest;
    manifest.legal_hold = put.on;
    rewrite_version(db, batch, pending, found.place, manifest);
    Ok(ApplyOutcome::Applied)
}
