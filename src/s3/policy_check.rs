//! What a bucket's policy says of one S3 request: the request's IAM
//! action, its resource, and the condition keys it carries, handed to the
//! policy's evaluation (`policy.rs`). `access.rs` combines the verdict
//! with owners and ACLs.

use shoal_proto::meta::BucketRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::op::S3Op;
use super::policy::{BucketPolicy, PolicyRequest, Verdict};
use super::request::{S3Request, Target};
use super::S3Context;

/// The IAM action of `op`; `None` for what no bucket policy governs.
pub fn action(op: S3Op, request: &S3Request) -> Option<&'static str> {
    let versioned = request.has_query("versionId");
    Some(match op {
        S3Op::ListBuckets | S3Op::CreateBucket | S3Op::CorsPreflight => return None,
        S3Op::NotImplemented(_) | S3Op::MethodNotAllowed => return None,
        S3Op::HeadBucket | S3Op::ListObjects | S3Op::ListObjectsV2 => "s3:ListBucket",
        S3Op::ListObjectVersions => "s3:ListBucketVersions",
        S3Op::ListMultipartUploads => "s3:ListBucketMultipartUploads",
        S3Op::DeleteBucket => "s3:DeleteBucket",
        S3Op::GetBucketLocation => "s3:GetBucketLocation",
        S3Op::GetBucketVersioning => "s3:GetBucketVersioning",
        S3Op::PutBucketVersioning => "s3:PutBucketVersioning",
        S3Op::GetObjectLockConfiguration => "s3:GetBucketObjectLockConfiguration",
        S3Op::PutObjectLockConfiguration => "s3:PutBucketObjectLockConfiguration",
        S3Op::GetBucketTagging => "s3:GetBucketTagging",
        S3Op::PutBucketTagging | S3Op::DeleteBucketTagging => "s3:PutBucketTagging",
        S3Op::GetBucketLifecycleConfiguration => "s3:GetLifecycleConfiguration",
        S3Op::PutBucketLifecycleConfiguration | S3Op::DeleteBucketLifecycle => {
            "s3:PutLifecycleConfiguration"
        }
        S3Op::GetBucketCors => "s3:GetBucketCORS",
        S3Op::PutBucketCors | S3Op::DeleteBucketCors => "s3:PutBucketCORS",
        S3Op::GetBucketPolicy => "s3:GetBucketPolicy",
        S3Op::PutBucketPolicy => "s3:PutBucketPolicy",
        S3Op::DeleteBucketPolicy => "s3:DeleteBucketPolicy",
        S3Op::GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
        S3Op::GetBucketEncryption => "s3:GetEncryptionConfiguration",
        S3Op::PutBucketEncryption | S3Op::DeleteBucketEncryption => "s3:PutEncryptionConfiguration",
        S3Op::GetBucketOwnershipControls => "s3:GetBucketOwnershipControls",
        S3Op::PutBucketOwnershipControls | S3Op::DeleteBucketOwnershipControls => {
            "s3:PutBucketOwnershipControls"
        }
        S3Op::GetBucketAcl => "s3:GetBucketAcl",
        S3Op::PutBucketAcl => "s3:PutBucketAcl",
        S3Op::GetObject | S3Op::HeadObject if versioned => "s3:GetObjectVersion",
        S3Op::GetObject | S3Op::HeadObject => "s3:GetObject",
        S3Op::GetObjectAcl if versioned => "s3:GetObjectVersionAcl",
        S3Op::GetObjectAcl => "s3:GetObjectAcl",
        S3Op::PutObjectAcl if versioned => "s3:PutObjectVersionAcl",
        S3Op::PutObjectAcl => "s3:PutObjectAcl",
        S3Op::DeleteObject if versioned => "s3:DeleteObjectVersion",
        S3Op::DeleteObject | S3Op::DeleteObjects => "s3:DeleteObject",
        S3Op::PutObject
        | S3Op::PostObject
        | S3Op::CopyObject
        | S3Op::CreateMultipartUpload
        | S3Op::UploadPart
        | S3Op::UploadPartCopy
        | S3Op::CompleteMultipartUpload => "s3:PutObject",
        S3Op::AbortMultipartUpload => "s3:AbortMultipartUpload",
        S3Op::ListParts => "s3:ListMultipartUploadParts",
        S3Op::GetObjectRetention => "s3:GetObjectRetention",
        S3Op::PutObjectRetention => "s3:PutObjectRetention",
        S3Op::GetObjectLegalHold => "s3:GetObjectLegalHold",
        S3Op::PutObjectLegalHold => "s3:PutObjectLegalHold",
        S3Op::GetObjectTagging if versioned => "s3:GetObjectVersionTagging",
        S3Op::GetObjectTagging => "s3:GetObjectTagging",
        S3Op::GetObjectAttributes if versioned => "s3:GetObjectVersionAttributes",
        S3Op::GetObjectAttributes => "s3:GetObjectAttributes",
        S3Op::PutObjectTagging if versioned => "s3:PutObjectVersionTagging",
        S3Op::PutObjectTagging => "s3:PutObjectTagging",
        S3Op::DeleteObjectTagging if versioned => "s3:DeleteObjectVersionTagging",
        S3Op::DeleteObjectTagging => "s3:DeleteObjectTagging",
    })
}

/// What the bucket's policy (if it has one) says of `user` (id and name;
/// `None` when anonymous) doing
/// `action` on the request's target. A policy that no longer parses (it
/// was checked when put) decides nothing.
pub fn verdict(
    ctx: &S3Context,
    user: Option<(&str, &str)>,
    record: &BucketRecord,
    action: &str,
    request: &S3Request,
) -> Verdict {
    let resource = match request.target() {
        Target::Object(bucket, key) => format!("arn:aws:s3:::{bucket}/{key}"),
        // A batch delete names its keys in the body: checked here against
        // every key, then key by key (`access::refuse_denied_key`).
        _ if action == "s3:DeleteObject" => format!("arn:aws:s3:::{}/*", record.name),
        _ => format!("arn:aws:s3:::{}", record.name),
    };
    verdict_on(ctx, user, record, action, &resource, request)
}

/// [`verdict`] for an explicit `resource`.
pub fn verdict_on(
    ctx: &S3Context,
    user: Option<(&str, &str)>,
    record: &BucketRecord,
    action: &str,
    resource: &str,
    request: &S3Request,
) -> Verdict {
    if record.policy.is_empty() {
        return Verdict::Silent;
    }
    let policy = match BucketPolicy::parse(&record.policy, &record.name) {
        Ok(policy) => policy,
        Err(reason) => {
            tracing::warn!(
                bucket = record.name,
                reason,
                "a stored bucket policy does not parse"
            );
            return Verdict::Silent;
        }
    };
    let context = |key: &str| context_value(ctx, user, request, key);
    policy.evaluate(&PolicyRequest {
        user,
        action,
        resource,
        context: &context,
    })
}

/// A condition key's values for this request (keys lower-case).
fn context_value(
    ctx: &S3Context,
    user: Option<(&str, &str)>,
    request: &S3Request,
    key: &str,
) -> Option<Vec<String>> {
    let header = |name: &str| request.header(name).map(|v| vec![v.to_string()]);
    let query = |name: &str| request.query(name).map(|v| vec![v.to_string()]);
    match key {
        "aws:sourceip" => request.remote_ip().map(|ip| vec![ip.to_string()]),
        "aws:securetransport" => Some(vec![ctx.config.tls.is_some().to_string()]),
        "aws:currenttime" => OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .ok()
            .map(|t| vec![t]),
        "aws:epochtime" => Some(vec![OffsetDateTime::now_utc().unix_timestamp().to_string()]),
        "aws:useragent" => header("user-agent"),
        "aws:referer" => header("referer"),
        "aws:username" => user.map(|(_, name)| vec![name.to_string()]),
        "aws:userid" => user.map(|(id, _)| vec![id.to_string()]),
        "s3:prefix" => query("prefix"),
        "s3:delimiter" => query("delimiter"),
        "s3:max-keys" => query("max-keys"),
        "s3:versionid" => query("versionId"),
        "s3:x-amz-acl" => header("x-amz-acl"),
        "s3:x-amz-copy-source" => header("x-amz-copy-source"),
        "s3:x-amz-metadata-directive" => header("x-amz-metadata-directive"),
        "s3:x-amz-storage-class" => header("x-amz-storage-class"),
        "s3:x-amz-server-side-encryption" => header("x-amz-server-side-encryption"),
        "s3:x-amz-server-side-encryption-aws-kms-key-id" => {
            header("x-amz-server-side-encryption-aws-kms-key-id")
        }
        "s3:x-amz-server-side-encryption-customer-algorithm" => {
            header("x-amz-server-side-encryption-customer-algorithm")
        }
        "s3:x-amz-content-sha256" => header("x-amz-content-sha256"),
        "s3:signatureversion" => Some(vec!["AWS4-HMAC-SHA256".to_string()]),
        "s3:authtype" => Some(vec![match request.has_query("X-Amz-Signature") {
            true => "REST-QUERY-STRING".to_string(),
            false => "REST-HEADER".to_string(),
        }]),
        _ => None,
    }
}
