//! Every access decision, in one place: who the caller is ([`identify`]),
//! what the request needs of its bucket ([`authorize`], run by the
//! dispatcher before any handler reads a body), and, for requests that act
//! on an existing object's data or ACL, what the object's ACL allows
//! ([`authorize_object`], run by those handlers right after they load the
//! manifest and before they send or change anything).
//!
//! The model is S3's ACLs: a bucket belongs to the user who created it and
//! an object to the user who wrote it; the owner has full control, and
//! grants give users or the AllUsers / AuthenticatedUsers groups READ,
//! WRITE, READ_ACP, WRITE_ACP or FULL_CONTROL. The bucket owner also has
//! full control of every object in the bucket (S3's "bucket owner
//! enforced" ownership, without its ban on object ACLs). Anonymous
//! requests get only what AllUsers is granted.

use std::time::SystemTime;

use shoal_proto::meta::{Acl, BucketRecord, Grant, ObjectManifest, ObjectOwnership};

use super::auth::{self, AuthError, PayloadMode};
use super::error::S3Error;
use super::op::S3Op;
use super::policy::Verdict;
use super::policy_check;
use super::request::{S3Request, Target};
use super::S3Context;
use crate::users::BOOTSTRAP_USER;

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User {
        id: String,
        name: String,
    },
    /// A caller the bucket's policy allowed this request's operation on
    /// one object: its handler's object check (`authorize_object`) passes
    /// for that object and permission only, never for another object the
    /// request touches (a copy's source).
    PolicyAllowed {
        caller: Box<Caller>,
        bucket: String,
        key: String,
        permission: Permission,
    },
}

impl Caller {
    /// Who the caller is, whatever a policy allowed it.
    pub fn identity(&self) -> &Caller {
        match self {
            Caller::PolicyAllowed { caller, .. } => caller.identity(),
            other => other,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self.identity() {
            Caller::User { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The caller's user name, `None` when anonymous.
    pub fn user_name(&self) -> Option<&str> {
        match self.identity() {
            Caller::User { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The caller as a bucket policy names it: user id and name, `None`
    /// when anonymous.
    pub fn policy_user(&self) -> Option<(&str, &str)> {
        self.user_id().zip(self.user_name())
    }

    /// The node's bootstrap user administers every bucket and object, as
    /// a root account does: an operator must be able to reach (and empty,
    /// and delete) a bucket whose owner is gone.
    pub fn is_admin(&self) -> bool {
        self.user_name() == Some(BOOTSTRAP_USER)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
        Permission::FullControl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    pub fn from_name(name: &str) -> Option<Permission> {
        Self::ALL.into_iter().find(|p| p.name() == name.trim())
    }
}

/// Checks the signature against the key's secret and names the caller. An
/// unsigned request is anonymous; a disabled key or user is as unknown as
/// a key that never existed.
pub fn identify(ctx: &S3Context, request: &S3Request) -> Result<(Caller, PayloadMode), S3Error> {
    let directory = &ctx.directory;
    let secret_for = |access_key: &str| {
        directory
            .key_owner(access_key)
            .filter(|owner| owner.enabled)
            .map(|owner| owner.secret_key)
    };
    match auth::authenticate(
        &request.auth_parts(),
        &ctx.config.region,
        ctx.config.sigv2,
        &secret_for,
        SystemTime::now(),
    ) {
        Ok(authenticated) => {
            let owner = directory
                .key_owner(&authenticated.access_key)
                .filter(|owner| owner.enabled)
                .ok_or_else(|| AuthError::UnknownAccessKey {
                    access_key: authenticated.access_key.clone(),
                })?;
            let caller = Caller::User {
                id: owner.user_id,
                name: owner.user_name,
            };
            Ok((caller, authenticated.payload))
        }
        Err(AuthError::Missing) => Ok((Caller::Anonymous, PayloadMode::Unsigned)),
        Err(e) => Err(e.into()),
    }
}

/// What a request needs of its bucket before its handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Any signed-in user (ListBuckets, CreateBucket).
    User,
    /// The bucket's owner (DeleteBucket, operations Shoal does not know).
    Owner,
    /// This permission on the bucket.
    Bucket(Permission),
    /// Nothing of the bucket: the handler checks the object
    /// ([`authorize_object`]).
    ObjectChecked,
}

/// What operation `op` on `target` needs. An operation Shoal does not
/// serve needs what the owner has (a signed-in user on the service), so
/// the 501 or 405 goes only to someone who could use the answer.
fn need(op: S3Op, target: &Target) -> Need {
    match op {
        S3Op::ListBuckets | S3Op::CreateBucket => Need::User,
        S3Op::HeadBucket
        | S3Op::GetBucketLocation
        | S3Op::GetBucketVersioning
        | S3Op::ListObjects
        | S3Op::ListObjectsV2
        | S3Op::ListObjectVersions
        | S3Op::ListMultipartUploads => Need::Bucket(Permission::Read),
        S3Op::GetBucketAcl => Need::Bucket(Permission::ReadAcp),
        S3Op::PutBucketAcl => Need::Bucket(Permission::WriteAcp),
        S3Op::GetObject | S3Op::HeadObject | S3Op::GetObjectAcl | S3Op::PutObjectAcl => {
            Need::ObjectChecked
        }
        S3Op::PutObject
        | S3Op::CopyObject
        | S3Op::DeleteObject
        | S3Op::DeleteObjects
        | S3Op::CreateMultipartUpload
        | S3Op::UploadPart
        | S3Op::UploadPartCopy
        | S3Op::CompleteMultipartUpload
        | S3Op::AbortMultipartUpload
        | S3Op::ListParts => Need::Bucket(Permission::Write),
        S3Op::DeleteBucket
        | S3Op::PutBucketVersioning
        | S3Op::GetObjectLockConfiguration
        | S3Op::PutObjectLockConfiguration
        | S3Op::GetBucketTagging
        | S3Op::PutBucketTagging
        | S3Op::DeleteBucketTagging
        | S3Op::GetBucketLifecycleConfiguration
        | S3Op::PutBucketLifecycleConfiguration
        | S3Op::DeleteBucketLifecycle
        | S3Op::GetBucketCors
        | S3Op::PutBucketCors
        | S3Op::DeleteBucketCors
        | S3Op::GetBucketPolicy
        | S3Op::PutBucketPolicy
        | S3Op::DeleteBucketPolicy
        | S3Op::GetBucketPolicyStatus
        | S3Op::GetBucketEncryption
        | S3Op::PutBucketEncryption
        | S3Op::DeleteBucketEncryption
        | S3Op::GetBucketOwnershipControls
        | S3Op::PutBucketOwnershipControls
        | S3Op::DeleteBucketOwnershipControls => Need::Owner,
        S3Op::GetObjectRetention
        | S3Op::GetObjectLegalHold
        | S3Op::GetObjectTagging
        | S3Op::GetObjectAttributes => Need::ObjectChecked,
        S3Op::PutObjectRetention
        | S3Op::PutObjectLegalHold
        | S3Op::PutObjectTagging
        | S3Op::DeleteObjectTagging => Need::Bucket(Permission::Write),
        // Answered before anyone is identified (`s3/mod.rs`); asked
        // anyway, it needs the most.
        S3Op::CorsPreflight => Need::Owner,
        // The form says who signed it: the handler checks the bucket.
        S3Op::PostObject => Need::ObjectChecked,
        S3Op::NotImplemented(_) | S3Op::MethodNotAllowed => match target {
            Target::Service => Need::User,
            Target::Bucket(_) | Target::Object(..) => Need::Owner,
        },
    }
}

/// Decides what can be decided before the handler runs: the caller must
/// be signed in, own the bucket, or hold the permission the operation
/// needs on it, unless the bucket's policy denies it (which nothing
/// overrides, but its owner may always manage the policy) or allows it.
/// A missing bucket is NoSuchBucket (CreateBucket excepted). Returns the
/// caller as the handler sees it: [`Caller::PolicyAllowed`] for an object
/// operation the policy allowed.
pub fn authorize(
    ctx: &S3Context,
    caller: Caller,
    op: S3Op,
    request: &S3Request,
) -> Result<Caller, S3Error> {
    let need = need(op, request.target());
    let bucket = match request.target() {
        Target::Service => None,
        Target::Bucket(name) | Target::Object(name, _) => Some(name),
    };
    let record = match bucket {
        Some(name) => match ctx.directory.bucket(name) {
            Some(record) => Some(record),
            None if need == Need::User => None,
            None => {
                return Err(S3Error::NoSuchBucket {
                    bucket: name.clone(),
                })
            }
        },
        None => None,
    };
    if let (Some(expected), Some(record)) = (request.header("x-amz-expected-bucket-owner"), &record)
    {
        if expected != bucket_owner(ctx, record) {
            return Err(S3Error::AccessDenied {
                message: "The bucket is owned by someone other than x-amz-expected-bucket-owner"
                    .into(),
            });
        }
    }
    let verdict = match (&record, policy_check::action(op, request)) {
        (Some(record), Some(action)) => {
            policy_check::verdict(ctx, caller.policy_user(), record, action, request)
        }
        _ => Verdict::Silent,
    };
    let manages_policy = matches!(
        op,
        S3Op::GetBucketPolicy | S3Op::PutBucketPolicy | S3Op::DeleteBucketPolicy
    );
    let owns = |record: &BucketRecord| {
        caller.is_admin() || caller.user_id() == Some(&bucket_owner(ctx, record))
    };
    if verdict == Verdict::Deny && !(manages_policy && record.as_ref().is_some_and(owns)) {
        return Err(denied(&caller));
    }
    let allowed = match (need, &record) {
        (Need::User, _) => caller.user_id().is_some(),
        (_, Some(_)) if caller.is_admin() => true,
        (Need::ObjectChecked, _) => true,
        (_, Some(_)) if verdict == Verdict::Allow => true,
        (Need::Owner, Some(record)) => owns(record),
        (Need::Bucket(wanted), Some(record)) => grants(
            &bucket_owner(ctx, record),
            bucket_acl(record),
            &caller,
            wanted,
        ),
        (_, None) => false,
    };
    if !allowed {
        return Err(denied(&caller));
    }
    Ok(match (verdict, object_permission(op), request.target()) {
        (Verdict::Allow, Some(permission), Target::Object(bucket, key)) => Caller::PolicyAllowed {
            caller: Box::new(caller),
            bucket: bucket.clone(),
            key: key.clone(),
            permission,
        },
        _ => caller,
    })
}

/// Refuses one key of a DeleteObjects request when the bucket's policy
/// denies deleting it (the request itself was checked against the whole
/// bucket, `arn:aws:s3:::bucket/*`).
pub fn refuse_denied_key(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<(), S3Error> {
    let Some(record) = ctx.directory.bucket(bucket) else {
        return Ok(());
    };
    let resource = format!("arn:aws:s3:::{bucket}/{key}");
    let user = caller.policy_user();
    match policy_check::verdict_on(ctx, user, &record, "s3:DeleteObject", &resource, request) {
        Verdict::Deny => Err(denied(caller)),
        _ => Ok(()),
    }
}

/// Who reads a copy's source (`bucket`/`key`): the caller, allowed by the
/// source bucket's policy (`s3:GetObject` on the source) where it allows,
/// refused where it denies, else judged by ownership and ACLs as any read.
pub fn source_reader(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Caller, S3Error> {
    let identity = caller.identity().clone();
    let Some(record) = ctx.directory.bucket(bucket) else {
        return Ok(identity);
    };
    let resource = format!("arn:aws:s3:::{bucket}/{key}");
    let user = caller.policy_user();
    match policy_check::verdict_on(ctx, user, &record, "s3:GetObject", &resource, request) {
        Verdict::Deny => Err(denied(caller)),
        Verdict::Allow => Ok(Caller::PolicyAllowed {
            caller: Box::new(identity),
            bucket: bucket.to_string(),
            key: key.to_string(),
            permission: Permission::Read,
        }),
        _ => Ok(identity),
    }
}

/// The permission an object operation's handler checks on the object
/// (`authorize_object`), for those that check one.
fn object_permission(op: S3Op) -> Option<Permission> {
    match op {
        S3Op::GetObject
        | S3Op::HeadObject
        | S3Op::GetObjectTagging
        | S3Op::GetObjectAttributes
        | S3Op::GetObjectRetention
        | S3Op::GetObjectLegalHold => Some(Permission::Read),
        S3Op::GetObjectAcl => Some(Permission::ReadAcp),
        S3Op::PutObjectAcl => Some(Permission::WriteAcp),
        _ => None,
    }
}

/// Decides whether `caller` holds `wanted` on an existing bucket (its
/// owner and admins hold everything): for a handler that learns who the
/// caller is from the request's body (a browser upload form).
pub fn authorize_bucket(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    wanted: Permission,
) -> Result<(), S3Error> {
    let record = ctx.bucket_record(bucket)?;
    let owner = bucket_owner(ctx, &record);
    match caller.is_admin() || grants(&owner, bucket_acl(&record), caller, wanted) {
        true => Ok(()),
        false => Err(denied(caller)),
    }
}

/// Decides access to an existing object's data or ACL: its owner and the
/// bucket's owner may do anything; anyone else needs a grant.
pub fn authorize_object(
    ctx: &S3Context,
    caller: &Caller,
    manifest: &ObjectManifest,
    wanted: Permission,
) -> Result<(), S3Error> {
    let record = ctx.directory.bucket(&manifest.bucket);
    let bucket_owner = record.as_ref().map(|record| bucket_owner(ctx, record));
    // With ACLs off the bucket's owner owns every object, whatever an
    // object written before says.
    let acls_off = record.as_ref().is_some_and(acls_disabled);
    let object_acl = manifest.acl.as_ref().filter(|_| !acls_off);
    let object_owner = match acls_off {
        true => bucket_owner.clone().unwrap_or_default(),
        false => object_owner(manifest, bucket_owner.as_deref()),
    };
    let policy_allowed = matches!(caller, Caller::PolicyAllowed { bucket, key, permission, .. }
        if *bucket == manifest.bucket && *key == manifest.key && *permission == wanted);
    let allowed = policy_allowed
        || caller.is_admin()
        || caller
            .user_id()
            .is_some_and(|id| Some(id) == bucket_owner.as_deref())
        || grants(&object_owner, object_acl, caller, wanted);
    if allowed {
        Ok(())
    } else {
        Err(denied(caller))
    }
}

/// The error for an object that does not exist: NoSuchKey for callers who
/// may list the bucket, AccessDenied for others (as S3 answers, so a
/// missing key and a forbidden one look alike to someone who may not list).
pub fn missing_object(ctx: &S3Context, caller: &Caller, bucket: &str, key: &str) -> S3Error {
    let may_list = ctx.directory.bucket(bucket).is_some_and(|record| {
        caller.is_admin()
            || grants(
                &bucket_owner(ctx, &record),
                bucket_acl(&record),
                caller,
                Permission::Read,
            )
    });
    if may_list {
        S3Error::NoSuchKey {
            key: key.to_string(),
        }
    } else {
        denied(caller)
    }
}

/// The bucket's owner id. Buckets created before users existed belong to
/// the bootstrap user.
pub fn bucket_owner(ctx: &S3Context, record: &BucketRecord) -> String {
    if record.owner_id.is_empty() {
        ctx.directory
            .user(BOOTSTRAP_USER)
            .map(|user| user.id)
            .unwrap_or_default()
    } else {
        record.owner_id.clone()
    }
}

/// Whether the bucket's ownership controls turned ACLs off
/// (BucketOwnerEnforced): they then grant nothing.
pub fn acls_disabled(record: &BucketRecord) -> bool {
    record.object_ownership() == ObjectOwnership::BucketOwnerEnforced
}

/// The bucket's ACL as it counts: none while ACLs are off.
fn bucket_acl(record: &BucketRecord) -> Option<&Acl> {
    record.acl.as_ref().filter(|_| !acls_disabled(record))
}

/// The object's owner id (the bucket's owner for objects written before
/// users existed).
pub fn object_owner(manifest: &ObjectManifest, bucket_owner: Option<&str>) -> String {
    if manifest.owner_id.is_empty() {
        bucket_owner.unwrap_or_default().to_string()
    } else {
        manifest.owner_id.clone()
    }
}

/// The display name of a user id (the id itself when the user is gone).
pub fn display_name(ctx: &S3Context, user_id: &str) -> String {
    ctx.directory
        .users()
        .into_iter()
        .find(|u| u.id == user_id)
        .map_or_else(|| user_id.to_string(), |u| u.name)
}

/// Whether the owner `owner_id` with `acl` lets `caller` do `wanted`.
fn grants(owner_id: &str, acl: Option<&Acl>, caller: &Caller, wanted: Permission) -> bool {
    if caller
        .user_id()
        .is_some_and(|id| id == owner_id && !id.is_empty())
    {
        return true;
    }
    let Some(acl) = acl else {
        return false;
    };
    acl.grants.iter().any(|grant| {
        let permission = Permission::from_name(&grant.permission);
        let covers = permission == Some(wanted) || permission == Some(Permission::FullControl);
        covers && grantee_matches(&grant.grantee, caller)
    })
}

fn grantee_matches(grantee: &str, caller: &Caller) -> bool {
    match caller.user_id() {
        None => grantee == ALL_USERS,
        Some(id) => grantee == ALL_USERS || grantee == AUTHENTICATED_USERS || grantee == id,
    }
}

fn denied(caller: &Caller) -> S3Error {
    match caller.user_id() {
        None => S3Error::AccessDenied {
            message: "Anonymous access is not allowed to this resource".into(),
        },
        Some(_) => S3Error::AccessDenied {
            message: "Access Denied".into(),
        },
    }
}

/// The ACL a write asks for with `x-amz-acl` (canned) or `x-amz-grant-*`
/// headers; `None` when it names none (private). Grantee ids must be
/// users of this node.
pub fn requested_acl(ctx: &S3Context, request: &S3Request) -> Result<Option<Acl>, S3Error> {
    let canned = request.header("x-amz-acl");
    let mut grants = Vec::new();
    for permission in Permission::ALL {
        let header = format!(
            "x-amz-grant-{}",
            permission.name().to_ascii_lowercase().replace('_', "-")
        );
        if let Some(value) = request.header(&header) {
            for grantee in parse_grant_header(value)? {
                grants.push(Grant {
                    grantee,
                    permission: permission.name().to_string(),
                });
            }
        }
    }
    match (canned, grants.is_empty()) {
        (None, true) => Ok(None),
        (Some(_), false) => Err(S3Error::InvalidRequest {
            message: "Specifying both Canned ACLs and Header Grants is not allowed".into(),
        }),
        (Some(name), true) => canned_acl(name).map(Some),
        (None, false) => {
            check_grantees(ctx, &grants)?;
            Ok(Some(Acl { grants }))
        }
    }
}

/// The grants of a canned ACL (the owner's full control is implied).
pub fn canned_acl(name: &str) -> Result<Acl, S3Error> {
    let grant = |grantee: &str, permission: Permission| Grant {
        grantee: grantee.to_string(),
        permission: permission.name().to_string(),
    };
    let grants = match name.trim() {
        // The bucket owner has full control of every object anyway.
        "private" | "bucket-owner-read" | "bucket-owner-full-control" => vec![],
        "public-read" => vec![grant(ALL_USERS, Permission::Read)],
        "public-read-write" => vec![
            grant(ALL_USERS, Permission::Read),
            grant(ALL_USERS, Permission::Write),
        ],
        "authenticated-read" => vec![grant(AUTHENTICATED_USERS, Permission::Read)],
        other => {
            return Err(S3Error::InvalidArgument {
                message: format!("Canned ACL {other:?} is not supported"),
            })
        }
    };
    Ok(Acl { grants })
}

/// `id="…", uri="…"` grantees of an `x-amz-grant-*` header.
fn parse_grant_header(value: &str) -> Result<Vec<String>, S3Error> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (kind, quoted) = part.split_once('=').ok_or_else(|| bad_grantee(part))?;
            let grantee = quoted.trim().trim_matches('"').to_string();
            match kind.trim() {
                "id" | "uri" if !grantee.is_empty() => Ok(grantee),
                _ => Err(bad_grantee(part)),
            }
        })
        .collect()
}

fn bad_grantee(text: &str) -> S3Error {
    S3Error::InvalidArgument {
        message: format!("Grantee {text:?} is not id=\"…\" or uri=\"…\""),
    }
}

/// Every grantee must be a user of this node or one of the two groups.
pub fn check_grantees(ctx: &S3Context, grants: &[Grant]) -> Result<(), S3Error> {
    let users = ctx.directory.users();
    for grant in grants {
        let known = grant.grantee == ALL_USERS
            || grant.grantee == AUTHENTICATED_USERS
            || users.iter().any(|u| u.id == grant.grantee);
        if !known {
            return Err(S3Error::InvalidArgument {
                message: format!("Invalid id or group {:?}", grant.grantee),
            });
        }
        if Permission::from_name(&grant.permission).is_none() {
            return Err(S3Error::MalformedAclError);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Caller {
        Caller::User {
            id: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn owners_and_grants() {
        let public_read = canned_acl("public-read").unwrap();
        let private = canned_acl("private").unwrap();
        // The owner may do anything; others only what is granted.
        assert!(grants(
            "o",
            Some(&private),
            &user("o"),
            Permission::WriteAcp
        ));
        assert!(!grants("o", Some(&private), &user("x"), Permission::Read));
        assert!(!grants("o", None, &Caller::Anonymous, Permission::Read));
        assert!(grants(
            "o",
            Some(&public_read),
            &Caller::Anonymous,
            Permission::Read
        ));
        assert!(grants(
            "o",
            Some(&public_read),
            &user("x"),
            Permission::Read
        ));
        assert!(!grants(
            "o",
            Some(&public_read),
            &user("x"),
            Permission::Write
        ));
        let authenticated = canned_acl("authenticated-read").unwrap();
        assert!(grants(
            "o",
            Some(&authenticated),
            &user("x"),
            Permission::Read
        ));
        assert!(!grants(
            "o",
            Some(&authenticated),
            &Caller::Anonymous,
            Permission::Read
        ));
        let rw = canned_acl("public-read-write").unwrap();
        assert!(grants(
            "o",
            Some(&rw),
            &Caller::Anonymous,
            Permission::Write
        ));
        assert!(!grants(
            "o",
            Some(&rw),
            &Caller::Anonymous,
            Permission::ReadAcp
        ));
        // FULL_CONTROL covers every permission; a grant is per user id.
        let full = Acl {
            grants: vec![Grant {
                grantee: "x".into(),
                permission: "FULL_CONTROL".into(),
            }],
        };
        assert!(grants("o", Some(&full), &user("x"), Permission::WriteAcp));
        assert!(!grants("o", Some(&full), &user("y"), Permission::Read));
        // An empty owner id (no such user) is nobody.
        assert!(!grants("", None, &user(""), Permission::Read));
        assert!(canned_acl("aws-exec-read").is_err());
    }

    #[test]
    fn grant_headers() {
        assert_eq!(
            parse_grant_header(
                r#"id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers""#
            )
            .unwrap(),
            vec!["abc".to_string(), ALL_USERS.to_string()]
        );
        assert!(parse_grant_header(r#"emailAddress="a@b""#).is_err());
        assert!(parse_grant_header("nonsense").is_err());
    }
}
