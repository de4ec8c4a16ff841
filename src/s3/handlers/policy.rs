//! Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. The policy is
//! checked when put (`MalformedPolicy` with the reason) and kept as sent
//! in the bucket's record on the metadata shard; every request to the
//! bucket is decided against it before its body is read (`access.rs`).

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::PutBucketPolicy;

use super::{commit_bucket_setting, setting_document};
use crate::limits::POLICY_BODY_BYTES_MAX;
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::policy::BucketPolicy;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{full_body, xml_response, Body, S3Context};

/// The bucket's policy text, or NoSuchBucketPolicy.
fn stored_policy(ctx: &S3Context, bucket: &str) -> Result<String, S3Error> {
    let policy = ctx.read_existing_bucket(bucket, |record| record.policy.clone())?;
    match policy.is_empty() {
        true => Err(S3Error::NoSuchBucketPolicy {
            bucket: bucket.to_string(),
        }),
        false => Ok(policy),
    }
}

pub fn get_bucket_policy(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let policy = stored_policy(ctx, bucket)?;
    let mut response = Response::new(full_body(policy));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

pub fn get_bucket_policy_status(
    ctx: &Rc<S3Context>,
    bucket: &str,
) -> Result<Response<Body>, S3Error> {
    let policy = stored_policy(ctx, bucket)?;
    let public = BucketPolicy::parse(&policy, bucket).is_ok_and(|p| p.is_public());
    let mut out = XmlWriter::new();
    out.open_root("PolicyStatus");
    out.leaf("IsPublic", if public { "true" } else { "false" });
    out.close("PolicyStatus");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// PutBucketPolicy, and DeleteBucketPolicy (`delete`).
pub async fn put_bucket_policy(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (POLICY_BODY_BYTES_MAX, false);
    let policy = setting_document(ctx, &mut request, payload, delete, limits, |body| {
        let text = String::from_utf8(body.to_vec()).map_err(|_| S3Error::MalformedPolicy {
            reason: "Policies must be UTF-8 JSON".into(),
        })?;
        BucketPolicy::parse(&text, bucket).map_err(|reason| S3Error::MalformedPolicy { reason })?;
        Ok(text)
    })
    .await?
    .unwrap_or_default();
    let put = PutBucketPolicy {
        bucket: bucket.to_string(),
        policy,
    };
    commit_bucket_setting(
        ctx,
        bucket,
        Op::PutBucketPolicy(put),
        StatusCode::NO_CONTENT,
        |other| S3Error::internal(format!("bucket policy applied as {other:?}")),
    )
    .await
}
