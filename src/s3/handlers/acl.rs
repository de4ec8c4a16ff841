//! GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.
//!
//! An ACL is stored as its grants; the owner's FULL_CONTROL is implied and
//! shown first. A new ACL comes from `x-amz-acl` (canned), `x-amz-grant-*`
//! headers, or an `AccessControlPolicy` document. Bucket ACLs change
//! through the metadata shard (every core's directory sees the change when
//! it is applied), object ACLs through the object's shard. Who may read or
//! change them is decided in `access`.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{Acl, Grant, PutBucketAcl, PutObjectAcl};
use shoal_shard::raft::ApplyOutcome;

use super::ownership::refuse_acl_change;
use super::receive::receive_small_body;
use super::{load_object, load_requested, version_change_result, versioning};
use crate::limits::ACL_BODY_BYTES_MAX;
use crate::limits::GRANTS_MAX;
use crate::route::METADATA_SHARD;
use crate::s3::access::{self, Caller, Permission, ALL_USERS, AUTHENTICATED_USERS};
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{empty_response, xml_response, Body, S3Context};

pub fn get_bucket_acl(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    let owner = access::bucket_owner(ctx, &record);
    Ok(render(ctx, &owner, record.acl.as_ref()))
}

pub async fn put_bucket_acl(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    refuse_acl_change(ctx, bucket)?;
    let acl = new_acl(ctx, &mut request, payload).await?;
    let change = Op::PutBucketAcl(PutBucketAcl {
        bucket: bucket.to_string(),
        acl: Some(acl),
    });
    let outcome = ctx.router.propose(METADATA_SHARD, change).await?;
    match outcome {
        ApplyOutcome::Applied => Ok(empty_response(StatusCode::OK)),
        ApplyOutcome::NoSuchResource => Err(S3Error::NoSuchBucket {
            bucket: bucket.to_string(),
        }),
        other => Err(S3Error::internal(format!(
            "put_bucket_acl applied as {other:?}"
        ))),
    }
}

pub async fn get_object_acl(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    let manifest = load_requested(ctx, caller, bucket, key, request, Permission::ReadAcp).await?;
    let bucket_owner = ctx
        .directory
        .bucket(bucket)
        .map(|record| access::bucket_owner(ctx, &record));
    let owner = access::object_owner(&manifest, bucket_owner.as_deref());
    Ok(render(ctx, &owner, manifest.acl.as_ref()))
}

pub async fn put_object_acl(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    refuse_acl_change(ctx, bucket)?;
    let version_id = versioning::requested_version(&request)?;
    load_object(
        ctx,
        caller,
        bucket,
        key,
        version_id.as_deref(),
        Permission::WriteAcp,
    )
    .await?;
    let acl = new_acl(ctx, &mut request, payload).await?;
    let owner = ctx.router.owner(bucket, key);
    let put = PutObjectAcl {
        bucket: bucket.to_string(),
        key: key.to_string(),
        acl: Some(acl),
        version_id: version_id.clone(),
    };
    let outcome = ctx.router.propose(owner, Op::PutObjectAcl(put)).await?;
    version_change_result(outcome, key, version_id, "put_object_acl")?;
    Ok(empty_response(StatusCode::OK))
}

/// The ACL a Put*Acl request sets: from its headers, else from its body.
async fn new_acl(
    ctx: &Rc<S3Context>,
    request: &mut S3Request,
    payload: PayloadMode,
) -> Result<Acl, S3Error> {
    if let Some(acl) = access::requested_acl(ctx, request)? {
        return Ok(acl);
    }
    let body = receive_small_body(ctx, request, payload, ACL_BODY_BYTES_MAX, true).await?;
    let acl = parse_policy(&body)?;
    access::check_grantees(ctx, &acl.grants)?;
    Ok(acl)
}

/// Grants of an `AccessControlPolicy` document. The owner element is
/// ignored (the owner cannot be changed), as is a grant that repeats the
/// owner's implied full control.
pub(crate) fn parse_policy(body: &[u8]) -> Result<Acl, S3Error> {
    const ROOT: &[u8] = b"AccessControlPolicy";
    const GRANT: [&[u8]; 3] = [ROOT, b"AccessControlList", b"Grant"];
    #[derive(Default)]
    struct Parsed {
        grantee: Option<String>,
        permission: Option<String>,
    }
    let mut parsed: Vec<Parsed> = Vec::new();
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &GRANT) => parsed.push(Parsed::default()),
            XmlEvent::Text(path, text) if path.len() > 3 && xml::path_is(&path[..3], &GRANT) => {
                let grant = parsed.last_mut().ok_or(xml::MalformedXml)?;
                match (
                    path.get(3).map(Vec::as_slice),
                    path.get(4).map(Vec::as_slice),
                ) {
                    (Some(b"Grantee"), Some(b"ID" | b"URI")) => {
                        grant.grantee = Some(text.trim().to_string())
                    }
                    (Some(b"Permission"), None) => grant.permission = Some(text.trim().to_string()),
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedAclError)?;
    if parsed.len() > GRANTS_MAX {
        return Err(S3Error::MalformedAclError);
    }
    let grants = parsed
        .into_iter()
        .map(|p| match (p.grantee, p.permission) {
            (Some(grantee), Some(permission)) if Permission::from_name(&permission).is_some() => {
                Ok(Grant {
                    grantee,
                    permission,
                })
            }
            _ => Err(S3Error::MalformedAclError),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Acl { grants })
}

/// `AccessControlPolicy`: the owner, its full control, then the grants.
fn render(ctx: &S3Context, owner_id: &str, acl: Option<&Acl>) -> Response<Body> {
    let mut out = XmlWriter::new();
    out.open_root("AccessControlPolicy");
    write_owner(ctx, &mut out, "Owner", owner_id);
    out.open("AccessControlList");
    // The grants that were set, then the owner's full control, which it
    // always keeps (grants are a set: their order means nothing; this is
    // the order Ceph lists them in, and s3-tests' ACL checks expect).
    for grant in acl.map(|a| a.grants.as_slice()).unwrap_or_default() {
        let repeats_owner = grant.grantee == owner_id && grant.permission == "FULL_CONTROL";
        if !repeats_owner {
            write_grant(ctx, &mut out, &grant.grantee, &grant.permission);
        }
    }
    write_grant(ctx, &mut out, owner_id, Permission::FullControl.name());
    out.close("AccessControlList");
    out.close("AccessControlPolicy");
    xml_response(StatusCode::OK, out.finish())
}

fn write_grant(ctx: &S3Context, out: &mut XmlWriter, grantee: &str, permission: &str) {
    out.open("Grant");
    let group = grantee == ALL_USERS || grantee == AUTHENTICATED_USERS;
    let kind = if group { "Group" } else { "CanonicalUser" };
    out.open_with_attrs(
        "Grantee",
        &[
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xsi:type", kind),
        ],
    );
    if group {
        out.leaf("URI", grantee);
    } else {
        out.leaf("ID", grantee);
        out.leaf("DisplayName", &access::display_name(ctx, grantee));
    }
    out.close("Grantee");
    out.leaf("Permission", permission);
    out.close("Grant");
}

/// `<element><ID>…</ID><DisplayName>…</DisplayName></element>`.
pub(super) fn write_owner(ctx: &S3Context, out: &mut XmlWriter, element: &str, user_id: &str) {
    out.open(element);
    out.leaf("ID", user_id);
    out.leaf("DisplayName", &access::display_name(ctx, user_id));
    out.close(element);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_control_policies() {
        let body = br#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Owner><ID>owner</ID></Owner>
          <AccessControlList>
            <Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>u2</ID></Grantee><Permission>READ</Permission></Grant>
            <Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>WRITE</Permission></Grant>
          </AccessControlList></AccessControlPolicy>"#;
        let acl = parse_policy(body).unwrap();
        let grants: Vec<(&str, &str)> = acl
            .grants
            .iter()
            .map(|g| (g.grantee.as_str(), g.permission.as_str()))
            .collect();
        assert_eq!(grants, [("u2", "READ"), (ALL_USERS, "WRITE")]);
        for bad in [
            &b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"[..],
            b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID></Grantee><Permission>ALL</Permission></Grant></AccessControlList></AccessControlPolicy>",
            b"<Other/>",
        ] {
            assert!(parse_policy(bad).is_err());
        }
    }
}
