//! Put/Get/DeleteBucketOwnershipControls, and what they decide for every
//! write into the bucket: who owns a new object (its writer, or the
//! bucket's owner) and whether ACLs count at all (BucketOwnerEnforced turns
//! them off, as new AWS buckets have it). Kept in the bucket's record on
//! the metadata shard.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{Acl, ObjectOwnership, PutBucketOwnership};

use super::put_bucket_setting;
use crate::limits::OWNERSHIP_BODY_BYTES_MAX;
use crate::s3::access::{self, Caller};
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{xml_response, Body, S3Context};

/// The canned ACL that hands an object to the bucket's owner.
const BUCKET_OWNER_FULL_CONTROL: &str = "bucket-owner-full-control";

pub fn get_bucket_ownership_controls(
    ctx: &Rc<S3Context>,
    bucket: &str,
) -> Result<Response<Body>, S3Error> {
    let ownership = ctx.read_existing_bucket(bucket, |record| record.object_ownership())?;
    let name = name(ownership).ok_or_else(|| S3Error::OwnershipControlsNotFound {
        bucket: bucket.to_string(),
    })?;
    let mut out = XmlWriter::new();
    out.open_root("OwnershipControls");
    out.open("Rule");
    out.leaf("ObjectOwnership", name);
    out.close("Rule");
    out.close("OwnershipControls");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// PutBucketOwnershipControls, and DeleteBucketOwnershipControls
/// (`delete`). ACLs go off only on a bucket whose own ACL grants nothing
/// beyond its owner, as S3 requires.
pub async fn put_bucket_ownership_controls(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (OWNERSHIP_BODY_BYTES_MAX, false);
    let sent = (request, payload);
    put_bucket_setting(
        ctx,
        bucket,
        sent,
        delete,
        limits,
        parse_controls,
        |ownership| {
            let ownership = ownership.unwrap_or(ObjectOwnership::Unset);
            if ownership == ObjectOwnership::BucketOwnerEnforced {
                let acl = ctx.read_existing_bucket(bucket, |record| record.acl.clone())?;
                refuse_public_bucket_acl(acl.as_ref())?;
            }
            Ok(Op::PutBucketOwnership(PutBucketOwnership {
                bucket: bucket.to_string(),
                object_ownership: ownership.into(),
            }))
        },
    )
    .await
}

/// `BucketOwnerEnforced` needs a bucket ACL that grants nothing.
pub(super) fn refuse_public_bucket_acl(acl: Option<&Acl>) -> Result<(), S3Error> {
    match acl.is_some_and(|acl| !acl.grants.is_empty()) {
        true => Err(S3Error::InvalidBucketAclWithObjectOwnership),
        false => Ok(()),
    }
}

/// `<OwnershipControls><Rule><ObjectOwnership>…</ObjectOwnership></Rule>
/// </OwnershipControls>`, exactly one rule.
fn parse_controls(body: &[u8]) -> Result<ObjectOwnership, S3Error> {
    const ROOT: &[u8] = b"OwnershipControls";
    let mut rules = 0;
    let mut named = None;
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &[ROOT, b"Rule"]) => rules += 1,
            XmlEvent::Text(path, text)
                if xml::path_is(path, &[ROOT, b"Rule", b"ObjectOwnership"]) =>
            {
                named = Some(text.trim().to_string())
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    match (rules, named) {
        (1, Some(name)) => parse_ownership(&name),
        _ => Err(S3Error::MalformedXml),
    }
}

/// An `ObjectOwnership` value by its S3 name.
pub(super) fn parse_ownership(name: &str) -> Result<ObjectOwnership, S3Error> {
    match name.trim() {
        "ObjectWriter" => Ok(ObjectOwnership::ObjectWriter),
        "BucketOwnerPreferred" => Ok(ObjectOwnership::BucketOwnerPreferred),
        "BucketOwnerEnforced" => Ok(ObjectOwnership::BucketOwnerEnforced),
        other => Err(S3Error::InvalidArgument {
            message: format!("Invalid object ownership {other:?}"),
        }),
    }
}

fn name(ownership: ObjectOwnership) -> Option<&'static str> {
    match ownership {
        ObjectOwnership::Unset => None,
        ObjectOwnership::ObjectWriter => Some("ObjectWriter"),
        ObjectOwnership::BucketOwnerPreferred => Some("BucketOwnerPreferred"),
        ObjectOwnership::BucketOwnerEnforced => Some("BucketOwnerEnforced"),
    }
}

/// Who owns an object `caller` writes into `bucket` asking for the ACL
/// `acl` (`canned`: its `x-amz-acl` name), and the ACL it keeps: with ACLs
/// off, the bucket's owner and none (an ACL other than
/// bucket-owner-full-control is refused); with BucketOwnerPreferred, the
/// bucket's owner when the writer hands it over with
/// bucket-owner-full-control; else the writer.
pub(super) fn new_object_owner(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    canned: Option<&str>,
    acl: Option<Acl>,
) -> Result<(String, Option<Acl>), S3Error> {
    // One borrowed read of the bucket's record: this runs on every write.
    let (ownership, bucket_owner) = ctx.read_existing_bucket(bucket, |record| {
        (record.object_ownership(), access::bucket_owner(ctx, record))
    })?;
    let hands_over = canned.is_some_and(|c| c.trim() == BUCKET_OWNER_FULL_CONTROL);
    match ownership {
        ObjectOwnership::BucketOwnerEnforced => {
            if acl.is_some() && !hands_over {
                return Err(S3Error::AccessControlListNotSupported);
            }
            Ok((bucket_owner, None))
        }
        ObjectOwnership::BucketOwnerPreferred if hands_over => Ok((bucket_owner, acl)),
        // The writer owns it; an anonymous write (a public-read-write
        // bucket) belongs to the bucket's owner.
        _ => Ok((caller.user_id().map_or(bucket_owner, str::to_string), acl)),
    }
}

/// [`new_object_owner`] for a request's `x-amz-acl` or `x-amz-grant-*`.
pub(super) fn requested_owner(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    request: &S3Request,
) -> Result<(String, Option<Acl>), S3Error> {
    let acl = access::requested_acl(ctx, request)?;
    new_object_owner(ctx, caller, bucket, request.header("x-amz-acl"), acl)
}

/// PutBucketAcl and PutObjectAcl are refused while ACLs are off.
pub(super) fn refuse_acl_change(ctx: &S3Context, bucket: &str) -> Result<(), S3Error> {
    let ownership = ctx.read_existing_bucket(bucket, |record| record.object_ownership())?;
    match ownership {
        ObjectOwnership::BucketOwnerEnforced => Err(S3Error::AccessControlListNotSupported),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_of_a_known_setting() {
        let doc = |inner: &str| format!("<OwnershipControls>{inner}</OwnershipControls>");
        let rule = |name: &str| format!("<Rule><ObjectOwnership>{name}</ObjectOwnership></Rule>");
        assert_eq!(
            parse_controls(doc(&rule("BucketOwnerEnforced")).as_bytes()).unwrap(),
            ObjectOwnership::BucketOwnerEnforced
        );
        assert_eq!(
            parse_controls(doc(&rule("ObjectWriter")).as_bytes()).unwrap(),
            ObjectOwnership::ObjectWriter
        );
        let two = doc(&format!("{}{}", rule("ObjectWriter"), rule("ObjectWriter")));
        assert_eq!(
            parse_controls(two.as_bytes()).unwrap_err().code(),
            "MalformedXML"
        );
        assert_eq!(
            parse_controls(doc("").as_bytes()).unwrap_err().code(),
            "MalformedXML"
        );
        let unknown = parse_controls(doc(&rule("Everyone")).as_bytes()).unwrap_err();
        assert_eq!(unknown.code(), "InvalidArgument");
    }
}
