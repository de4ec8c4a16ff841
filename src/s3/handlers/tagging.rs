//! Put/Get/DeleteObjectTagging (of a version too) and
//! Put/Get/DeleteBucketTagging. An object's tags live in its version's
//! manifest and change through the key's shard; a bucket's in its record
//! on the metadata shard.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{PutBucketTagging, PutObjectTagging};

use super::header_value;
use super::receive::receive_small_body;
use super::versioning::{requested_version, version_id_of};
use super::{existing_version, load_requested, put_bucket_setting, version_change_result};
use crate::limits::{BUCKET_TAGS_MAX, OBJECT_TAGS_MAX, TAGGING_BODY_BYTES_MAX};
use crate::s3::access::{Caller, Permission};
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::tags::{self, Tags};
use crate::s3::xml::XmlWriter;
use crate::s3::{empty_response, xml_response, Body, S3Context};

/// The tags a PUT, copy (with `x-amz-tagging-directive: REPLACE`) or
/// CreateMultipartUpload gives its object: its `x-amz-tagging` header.
pub(super) fn requested_tags(request: &S3Request) -> Result<Tags, S3Error> {
    match request.header("x-amz-tagging") {
        None => Ok(Tags::new()),
        Some(header) => tags::parse_header(header, OBJECT_TAGS_MAX),
    }
}

pub async fn get_object_tagging(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    let manifest = load_requested(ctx, caller, bucket, key, request, Permission::Read).await?;
    let mut out = XmlWriter::new();
    tags::write_tagging(&mut out, &manifest.tags);
    let mut response = xml_response(StatusCode::OK, out.finish());
    response
        .headers_mut()
        .insert("x-amz-version-id", header_value(version_id_of(&manifest))?);
    Ok(response)
}

/// PutObjectTagging, and DeleteObjectTagging (`delete`: no tags).
pub async fn put_object_tagging(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let version_id = requested_version(&request)?;
    // Access is the bucket's WRITE (checked before this handler); reading
    // the version first answers NoSuchKey and NoSuchVersion before any
    // body is read, and names the version in the response.
    let current = existing_version(ctx, caller, bucket, key, version_id.as_deref()).await?;
    let tags = match delete {
        true => Tags::new(),
        false => {
            let body = receive_small_body(ctx, &mut request, payload, TAGGING_BODY_BYTES_MAX, true)
                .await?;
            tags::parse_tagging(&body, OBJECT_TAGS_MAX)?
        }
    };
    let put = PutObjectTagging {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version_id.clone(),
        tags,
    };
    let owner = ctx.router.owner(bucket, key);
    let outcome = ctx.router.propose(owner, Op::PutObjectTagging(put)).await?;
    version_change_result(outcome, key, version_id, "object tagging")?;
    let status = if delete {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = empty_response(status);
    response
        .headers_mut()
        .insert("x-amz-version-id", header_value(version_id_of(&current))?);
    Ok(response)
}

pub fn get_bucket_tagging(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    if record.tags.is_empty() {
        return Err(S3Error::NoSuchTagSet {
            bucket: bucket.to_string(),
        });
    }
    let mut out = XmlWriter::new();
    tags::write_tagging(&mut out, &record.tags);
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// PutBucketTagging, and DeleteBucketTagging (`delete`: no tags).
pub async fn put_bucket_tagging(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (TAGGING_BODY_BYTES_MAX, false);
    let parse = |body: &[u8]| tags::parse_tagging(body, BUCKET_TAGS_MAX);
    put_bucket_setting(
        ctx,
        bucket,
        (request, payload),
        delete,
        limits,
        parse,
        |tags| {
            Ok(Op::PutBucketTagging(PutBucketTagging {
                bucket: bucket.to_string(),
                tags: tags.unwrap_or_default(),
            }))
        },
    )
    .await
}
