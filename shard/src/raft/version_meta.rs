//! Ops that change what one version says of itself (its ACL, tags,
//! retention, legal hold), never its body: the version is rewritten where
//! it is, and its chunk refs stay as counted. Retention changes follow the
//! rules of [`crate::object_lock`], with the entry's proposal time as
//! "now".

use rocksdb::{WriteBatch, DB};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::ObjectManifest;

use super::pending::Pending;
use super::types::ApplyOutcome;
use super::versions::{named_version, rewrite_version};
use crate::meta::MetaError;
use crate::object_lock::retention_change_allowed;
use crate::version_id::VersionStamp;

/// Applies one of the ops above; `None` for any other op.
pub(super) fn apply(
    db: &DB,
    batch: &mut WriteBatch,
    pending: &mut Pending,
    op: Op,
    stamp: VersionStamp,
) -> Result<Option<ApplyOutcome>, MetaError> {
    let (version, change): (VersionName, Change) = match op {
        Op::PutObjectAcl(put) => (
            VersionName::of(put.bucket, put.key, put.version_id),
            Box::new(move |m| {
                m.acl = put.acl;
                Ok(())
            }),
        ),
        Op::PutObjectTagging(put) => (
            VersionName::of(put.bucket, put.key, put.version_id),
            Box::new(move |m| {
                m.tags = put.tags;
                Ok(())
            }),
        ),
        Op::PutObjectLegalHold(put) => (
            VersionName::of(put.bucket, put.key, put.version_id),
            Box::new(move |m| {
                m.legal_hold = put.on;
                Ok(())
            }),
        ),
        Op::PutObjectRetention(put) => {
            let (mode, until) = (put.mode(), put.retain_until_unix_ms);
            let bypass = put.bypass_governance;
            (
                VersionName::of(put.bucket, put.key, put.version_id),
                Box::new(move |m| {
                    if !retention_change_allowed(m, mode, until, stamp.unix_ms, bypass) {
                        return Err(ApplyOutcome::ObjectLocked);
                    }
                    m.set_retention_mode(mode);
                    m.retain_until_unix_ms = until;
                    Ok(())
                }),
            )
        }
        _ => return Ok(None),
    };
    let named = (&version.bucket[..], &version.key[..], version.id.as_deref());
    let found = match named_version(db, pending, named)? {
        Ok(found) => found,
        Err(refused) => return Ok(Some(refused)),
    };
    let mut manifest = found.manifest;
    if let Err(refused) = change(&mut manifest) {
        return Ok(Some(refused));
    }
    rewrite_version(db, batch, pending, found.place, manifest);
    Ok(Some(ApplyOutcome::Applied))
}

/// What a change to a version did: nothing (`Err`, with the outcome that
/// refused it) or what it said.
type Changed = Result<(), ApplyOutcome>;

/// A change to one version's manifest.
type Change = Box<dyn FnOnce(&mut ObjectManifest) -> Changed>;

/// The version an op names.
struct VersionName {
    bucket: String,
    key: String,
    id: Option<String>,
}

impl VersionName {
    fn of(bucket: String, key: String, id: Option<String>) -> VersionName {
        VersionName { bucket, key, id }
    }
}
