//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket.
//!
//! Bucket records are committed by the metadata shard's raft group, which
//! publishes each change to the node's directory as it applies it, so the
//! client's next request sees it on any core.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{BucketRecord, ObjectOwnership, Versioning};
use shoal_shard::raft::ApplyOutcome;

use super::ownership::{parse_ownership, refuse_public_bucket_acl};
use super::{header_value, iso8601, now_unix_ms, read_xml_body, require_bucket};
use crate::limits::CREATE_BUCKET_BODY_BYTES_MAX;
use crate::route::METADATA_SHARD;
use crate::s3::access::{self, Caller};
use crate::s3::error::S3Error;
use crate::s3::request::{validate_bucket_name, S3Request};
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{empty_response, xml_response, Body, S3Context};

/// The caller's buckets only.
pub fn list_buckets(ctx: &Rc<S3Context>, caller: &Caller) -> Result<Response<Body>, S3Error> {
    let Caller::User { id, name } = caller.identity() else {
        return Err(S3Error::internal("ListBuckets reached without a user"));
    };
    let mut out = XmlWriter::new();
    out.open_root("ListAllMyBucketsResult");
    out.open("Owner");
    out.leaf("ID", id);
    out.leaf("DisplayName", name);
    out.close("Owner");
    out.open("Buckets");
    let own = ctx
        .directory
        .buckets()
        .into_iter()
        .filter(|record| access::bucket_owner(ctx, record) == *id);
    for bucket in own {
        out.open("Bucket");
        out.leaf("Name", &bucket.name);
        out.leaf("CreationDate", &iso8601(bucket.created_unix_ms));
        out.close("Bucket");
    }
    out.close("Buckets");
    out.close("ListAllMyBucketsResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

pub async fn create_bucket(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    mut request: S3Request,
) -> Result<Response<Body>, S3Error> {
    let owner_id = caller
        .user_id()
        .ok_or_else(|| S3Error::internal("CreateBucket reached without a user"))?
        .to_string();
    validate_bucket_name(bucket).map_err(|reason| S3Error::InvalidBucketName {
        bucket: bucket.to_string(),
        reason,
    })?;
    if let Some(existing) = ctx.directory.bucket(bucket) {
        return Err(already_exists(ctx, &existing, &owner_id));
    }
    let acl = access::requested_acl(ctx, &request)?;
    let ownership = match request.header("x-amz-object-ownership") {
        Some(name) => parse_ownership(name)?,
        None => ObjectOwnership::Unset,
    };
    if ownership == ObjectOwnership::BucketOwnerEnforced {
        refuse_public_bucket_acl(acl.as_ref())?;
    }
    let object_lock = match request.header("x-amz-bucket-object-lock-enabled") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(S3Error::InvalidArgument {
                message: "x-amz-bucket-object-lock-enabled must be true or false".into(),
            })
        }
    };
    let body = read_xml_body(ctx, &mut request, CREATE_BUCKET_BODY_BYTES_MAX).await?;
    if let Some(given) = xml::location_constraint(&body).map_err(|_| S3Error::MalformedXml)? {
        if !given.is_empty() && given != ctx.config.region {
            return Err(S3Error::IllegalLocationConstraint {
                given,
                region: ctx.config.region.clone(),
            });
        }
    }
    let record = BucketRecord {
        name: bucket.to_string(),
        created_unix_ms: now_unix_ms(),
        region: ctx.config.region.clone(),
        owner_id: owner_id.clone(),
        acl,
        // Object Lock needs every write to keep its versions, so a bucket
        // made with it has versioning enabled from the start.
        versioning: match object_lock {
            true => Versioning::Enabled.into(),
            false => Versioning::Unversioned.into(),
        },
        object_lock_enabled: object_lock,
        object_ownership: ownership.into(),
        ..Default::default()
    };
    let outcome = ctx
        .router
        .propose(METADATA_SHARD, Op::CreateBucket(record.clone()))
        .await?;
    match outcome {
        ApplyOutcome::Applied => {}
        ApplyOutcome::BucketAlreadyExists => {
            // Another request created it first; whose is it?
            return Err(match ctx.directory.bucket(bucket) {
                Some(existing) => already_exists(ctx, &existing, &owner_id),
                None => S3Error::BucketAlreadyExists {
                    bucket: bucket.to_string(),
                },
            });
        }
        other => {
            return Err(S3Error::internal(format!(
                "create bucket applied as {other:?}"
            )))
        }
    }
    let mut response = empty_response(StatusCode::OK);
    response
        .headers_mut()
        .insert(http::header::LOCATION, header_value(&format!("/{bucket}"))?);
    Ok(response)
}

/// 409 either way; the code says whether the caller owns the bucket.
fn already_exists(ctx: &S3Context, existing: &BucketRecord, caller_id: &str) -> S3Error {
    let bucket = existing.name.clone();
    if access::bucket_owner(ctx, existing) == caller_id {
        S3Error::BucketAlreadyOwnedByYou { bucket }
    } else {
        S3Error::BucketAlreadyExists { bucket }
    }
}

pub fn head_bucket(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let mut response = empty_response(StatusCode::OK);
    response
        .headers_mut()
        .insert("x-amz-bucket-region", header_value(&ctx.config.region)?);
    Ok(response)
}

pub async fn delete_bucket(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    if ctx.router.bucket_has_objects(bucket).await? {
        return Err(S3Error::BucketNotEmpty {
            bucket: bucket.to_string(),
        });
    }
    let outcome = ctx
        .router
        .propose(METADATA_SHARD, Op::DeleteBucket(bucket.to_string()))
        .await?;
    match outcome {
        ApplyOutcome::Applied => Ok(empty_response(StatusCode::NO_CONTENT)),
        ApplyOutcome::NoSuchBucket => Err(S3Error::NoSuchBucket {
            bucket: bucket.to_string(),
        }),
        other => Err(S3Error::internal(format!(
            "delete bucket applied as {other:?}"
        ))),
    }
}
