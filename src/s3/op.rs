//! Which S3 operation a request is, decided once, from its method, target
//! (service, bucket or object), query and the copy-source header.
//!
//! Everything that depends on the operation reads it from here: the
//! dispatcher's one `match` (`s3/mod.rs`), the access rule it needs
//! (`s3/access.rs`) and the metric label (`metrics.rs`). A new operation
//! is one new variant, and the compiler lists every place left to decide.

use http::Method;

use super::request::{S3Request, Target};

/// One S3 operation, or the reason none is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    /// POST Object: a browser upload form.
    PostObject,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetBucketOwnershipControls,
    PutBucketOwnershipControls,
    DeleteBucketOwnershipControls,
    GetObjectAttributes,
    /// A browser's CORS preflight (`OPTIONS` on a bucket or object):
    /// answered from the bucket's CORS rules, without authentication.
    CorsPreflight,
    GetBucketAcl,
    PutBucketAcl,
    /// ListObjects v1.
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    /// An operation S3 has and Shoal does not serve (yet): answered 501.
    NotImplemented(Unsupported),
    /// A method the resource does not take: answered 405.
    MethodNotAllowed,
}

/// What a request asks that Shoal does not serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A subresource such as `?tagging` or `?lifecycle`.
    Subresource,
    ObjectPost,
}

impl Unsupported {
    /// What the 501 says is not implemented.
    pub fn what(self) -> &'static str {
        match self {
            Unsupported::Subresource => "This subresource",
            Unsupported::ObjectPost => "This object POST operation",
        }
    }
}

impl S3Op {
    /// Every metric label, in [`S3Op::label_index`] order.
    pub const LABELS: [&'static str; 60] = [
        "ListBuckets",
        "CreateBucket",
        "HeadBucket",
        "DeleteBucket",
        "GetBucketLocation",
        "GetBucketVersioning",
        "GetBucketAcl",
        "PutBucketAcl",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "ListMultipartUploads",
        "DeleteObjects",
        "PutObject",
        "CopyObject",
        "GetObject",
        "HeadObject",
        "DeleteObject",
        "GetObjectAcl",
        "PutObjectAcl",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "PutBucketVersioning",
        "GetObjectLockConfiguration",
        "PutObjectLockConfiguration",
        "GetObjectRetention",
        "PutObjectRetention",
        "GetObjectLegalHold",
        "PutObjectLegalHold",
        "GetBucketTagging",
        "PutBucketTagging",
        "DeleteBucketTagging",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
        "NotImplemented",
        "GetBucketCors",
        "PutBucketCors",
        "DeleteBucketCors",
        "CorsPreflight",
        "PostObject",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "GetBucketPolicyStatus",
        "GetBucketEncryption",
        "PutBucketEncryption",
        "DeleteBucketEncryption",
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "DeleteBucketOwnershipControls",
        "GetObjectAttributes",
        "Unknown",
    ];

    /// The label of a request that never became an operation (it did not
    /// parse): counted with the methods a resource does not take.
    pub const UNKNOWN_LABEL_INDEX: usize = Self::LABELS.len() - 1;

    /// Classifies a parsed request.
    pub fn of(request: &S3Request) -> S3Op {
        // A preflight asks about the request it precedes, whatever its
        // query names.
        if request.method() != Method::OPTIONS && request.unsupported_subresource().is_some() {
            return S3Op::NotImplemented(Unsupported::Subresource);
        }
        let copy = request.headers().contains_key("x-amz-copy-source");
        Self::classify(
            request.method(),
            request.target(),
            |name| request.has_query(name),
            copy,
        )
    }

    /// The operation of a request with this method and target, query
    /// parameters (`has`) and, for objects, an `x-amz-copy-source` header
    /// or not. Subresources Shoal does not serve are sorted out before.
    fn classify(method: &Method, target: &Target, has: impl Fn(&str) -> bool, copy: bool) -> S3Op {
        match target {
            Target::Service if *method == Method::GET => S3Op::ListBuckets,
            Target::Service => S3Op::MethodNotAllowed,
            Target::Bucket(_) | Target::Object(..) if *method == Method::OPTIONS => {
                S3Op::CorsPreflight
            }
            Target::Bucket(_) => Self::bucket_op(method, has),
            Target::Object(..) => Self::object_op(method, has, copy),
        }
    }

    fn bucket_op(method: &Method, has: impl Fn(&str) -> bool) -> S3Op {
        let subresources = [
            ("acl", S3Op::GetBucketAcl, S3Op::PutBucketAcl, None),
            (
                "versioning",
                S3Op::GetBucketVersioning,
                S3Op::PutBucketVersioning,
                None,
            ),
            (
                "object-lock",
                S3Op::GetObjectLockConfiguration,
                S3Op::PutObjectLockConfiguration,
                None,
            ),
            (
                "tagging",
                S3Op::GetBucketTagging,
                S3Op::PutBucketTagging,
                Some(S3Op::DeleteBucketTagging),
            ),
            (
                "lifecycle",
                S3Op::GetBucketLifecycleConfiguration,
                S3Op::PutBucketLifecycleConfiguration,
                Some(S3Op::DeleteBucketLifecycle),
            ),
            (
                "cors",
                S3Op::GetBucketCors,
                S3Op::PutBucketCors,
                Some(S3Op::DeleteBucketCors),
            ),
            (
                "policy",
                S3Op::GetBucketPolicy,
                S3Op::PutBucketPolicy,
                Some(S3Op::DeleteBucketPolicy),
            ),
            (
                "policyStatus",
                S3Op::GetBucketPolicyStatus,
                S3Op::MethodNotAllowed,
                None,
            ),
            (
                "encryption",
                S3Op::GetBucketEncryption,
                S3Op::PutBucketEncryption,
                Some(S3Op::DeleteBucketEncryption),
            ),
            (
                "ownershipControls",
                S3Op::GetBucketOwnershipControls,
                S3Op::PutBucketOwnershipControls,
                Some(S3Op::DeleteBucketOwnershipControls),
            ),
        ];
        if let Some(op) = subresource_op(method, &has, &subresources) {
            return op;
        }
        match *method {
            Method::PUT => S3Op::CreateBucket,
            Method::HEAD => S3Op::HeadBucket,
            Method::DELETE => S3Op::DeleteBucket,
            Method::GET if has("uploads") => S3Op::ListMultipartUploads,
            Method::GET if has("location") => S3Op::GetBucketLocation,
            Method::GET if has("versions") => S3Op::ListObjectVersions,
            Method::GET if has("list-type") => S3Op::ListObjectsV2,
            Method::GET => S3Op::ListObjects,
            Method::POST if has("delete") => S3Op::DeleteObjects,
            Method::POST => S3Op::PostObject,
            _ => S3Op::MethodNotAllowed,
        }
    }

    fn object_op(method: &Method, has: impl Fn(&str) -> bool, copy: bool) -> S3Op {
        let subresources = [
            ("acl", S3Op::GetObjectAcl, S3Op::PutObjectAcl, None),
            (
                "retention",
                S3Op::GetObjectRetention,
                S3Op::PutObjectRetention,
                None,
            ),
            (
                "legal-hold",
                S3Op::GetObjectLegalHold,
                S3Op::PutObjectLegalHold,
                None,
            ),
            (
                "tagging",
                S3Op::GetObjectTagging,
                S3Op::PutObjectTagging,
                Some(S3Op::DeleteObjectTagging),
            ),
            (
                "attributes",
                S3Op::GetObjectAttributes,
                S3Op::MethodNotAllowed,
                None,
            ),
        ];
        if let Some(op) = subresource_op(method, &has, &subresources) {
            return op;
        }
        let upload = has("uploadId");
        match *method {
            Method::PUT if upload && copy => S3Op::UploadPartCopy,
            Method::PUT if upload => S3Op::UploadPart,
            Method::PUT if copy => S3Op::CopyObject,
            Method::PUT => S3Op::PutObject,
            Method::GET if upload => S3Op::ListParts,
            Method::GET => S3Op::GetObject,
            Method::HEAD => S3Op::HeadObject,
            Method::DELETE if upload => S3Op::AbortMultipartUpload,
            Method::DELETE => S3Op::DeleteObject,
            Method::POST if has("uploads") => S3Op::CreateMultipartUpload,
            Method::POST if upload => S3Op::CompleteMultipartUpload,
            Method::POST => S3Op::NotImplemented(Unsupported::ObjectPost),
            _ => S3Op::MethodNotAllowed,
        }
    }

    /// Where this operation's counters are: an index into [`S3Op::LABELS`].
    pub fn label_index(self) -> usize {
        match self {
            S3Op::ListBuckets => 0,
            S3Op::CreateBucket => 1,
            S3Op::HeadBucket => 2,
            S3Op::DeleteBucket => 3,
            S3Op::GetBucketLocation => 4,
            S3Op::GetBucketVersioning => 5,
            S3Op::GetBucketAcl => 6,
            S3Op::PutBucketAcl => 7,
            S3Op::ListObjects => 8,
            S3Op::ListObjectsV2 => 9,
            S3Op::ListObjectVersions => 10,
            S3Op::ListMultipartUploads => 11,
            S3Op::DeleteObjects => 12,
            S3Op::PutObject => 13,
            S3Op::CopyObject => 14,
            S3Op::GetObject => 15,
            S3Op::HeadObject => 16,
            S3Op::DeleteObject => 17,
            S3Op::GetObjectAcl => 18,
            S3Op::PutObjectAcl => 19,
            S3Op::CreateMultipartUpload => 20,
            S3Op::UploadPart => 21,
            S3Op::UploadPartCopy => 22,
            S3Op::CompleteMultipartUpload => 23,
            S3Op::AbortMultipartUpload => 24,
            S3Op::ListParts => 25,
            S3Op::PutBucketVersioning => 26,
            S3Op::GetObjectLockConfiguration => 27,
            S3Op::PutObjectLockConfiguration => 28,
            S3Op::GetObjectRetention => 29,
            S3Op::PutObjectRetention => 30,
            S3Op::GetObjectLegalHold => 31,
            S3Op::PutObjectLegalHold => 32,
            S3Op::GetBucketTagging => 33,
            S3Op::PutBucketTagging => 34,
            S3Op::DeleteBucketTagging => 35,
            S3Op::GetObjectTagging => 36,
            S3Op::PutObjectTagging => 37,
            S3Op::DeleteObjectTagging => 38,
            S3Op::GetBucketLifecycleConfiguration => 39,
            S3Op::PutBucketLifecycleConfiguration => 40,
            S3Op::DeleteBucketLifecycle => 41,
            S3Op::NotImplemented(_) => 42,
            S3Op::GetBucketCors => 43,
            S3Op::PutBucketCors => 44,
            S3Op::DeleteBucketCors => 45,
            S3Op::CorsPreflight => 46,
            S3Op::PostObject => 47,
            S3Op::GetBucketPolicy => 48,
            S3Op::PutBucketPolicy => 49,
            S3Op::DeleteBucketPolicy => 50,
            S3Op::GetBucketPolicyStatus => 51,
            S3Op::GetBucketEncryption => 52,
            S3Op::PutBucketEncryption => 53,
            S3Op::DeleteBucketEncryption => 54,
            S3Op::GetBucketOwnershipControls => 55,
            S3Op::PutBucketOwnershipControls => 56,
            S3Op::DeleteBucketOwnershipControls => 57,
            S3Op::GetObjectAttributes => 58,
            S3Op::MethodNotAllowed => Self::UNKNOWN_LABEL_INDEX,
        }
    }

    /// The operation's name, as metrics and logs show it.
    pub fn name(self) -> &'static str {
        Self::LABELS[self.label_index()]
    }
}

/// The operation of a request naming one of `subresources` (`(name, on
/// GET, on PUT, on DELETE)`): a method the subresource does not take is
/// 405. `None` when the request names none of them.
fn subresource_op(
    method: &Method,
    has: &impl Fn(&str) -> bool,
    subresources: &[(&str, S3Op, S3Op, Option<S3Op>)],
) -> Option<S3Op> {
    let (_, get, put, delete) = subresources.iter().find(|(name, ..)| has(name))?;
    Some(match *method {
        Method::GET => *get,
        Method::PUT => *put,
        Method::DELETE => delete.unwrap_or(S3Op::MethodNotAllowed),
        _ => S3Op::MethodNotAllowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, target: &str, query: &[&str], copy: bool) -> S3Op {
        let target = match target.split_once('/') {
            None if target.is_empty() => Target::Service,
            None => Target::Bucket(target.to_string()),
            Some((bucket, key)) => Target::Object(bucket.to_string(), key.to_string()),
        };
        S3Op::classify(&method, &target, |name| query.contains(&name), copy)
    }

    #[test]
    fn every_operation_has_its_own_label() {
        let cases = [
            (op(Method::GET, "", &[], false), "ListBuckets"),
            (op(Method::PUT, "b", &[], false), "CreateBucket"),
            (op(Method::HEAD, "b", &[], false), "HeadBucket"),
            (op(Method::DELETE, "b", &[], false), "DeleteBucket"),
            (
                op(Method::GET, "b", &["location"], false),
                "GetBucketLocation",
            ),
            (
                op(Method::GET, "b", &["versioning"], false),
                "GetBucketVersioning",
            ),
            (
                op(Method::PUT, "b", &["versioning"], false),
                "PutBucketVersioning",
            ),
            (
                op(Method::GET, "b", &["object-lock"], false),
                "GetObjectLockConfiguration",
            ),
            (
                op(Method::PUT, "b", &["object-lock"], false),
                "PutObjectLockConfiguration",
            ),
            (
                op(Method::GET, "b/k", &["retention"], false),
                "GetObjectRetention",
            ),
            (
                op(Method::PUT, "b/k", &["retention"], false),
                "PutObjectRetention",
            ),
            (
                op(Method::GET, "b/k", &["legal-hold"], false),
                "GetObjectLegalHold",
            ),
            (
                op(Method::GET, "b", &["tagging"], false),
                "GetBucketTagging",
            ),
            (
                op(Method::GET, "b", &["lifecycle"], false),
                "GetBucketLifecycleConfiguration",
            ),
            (
                op(Method::PUT, "b", &["lifecycle"], false),
                "PutBucketLifecycleConfiguration",
            ),
            (
                op(Method::DELETE, "b", &["lifecycle"], false),
                "DeleteBucketLifecycle",
            ),
            (
                op(Method::PUT, "b", &["tagging"], false),
                "PutBucketTagging",
            ),
            (
                op(Method::DELETE, "b", &["tagging"], false),
                "DeleteBucketTagging",
            ),
            (
                op(Method::GET, "b/k", &["tagging"], false),
                "GetObjectTagging",
            ),
            (
                op(Method::PUT, "b/k", &["tagging"], false),
                "PutObjectTagging",
            ),
            (
                op(Method::DELETE, "b/k", &["tagging"], false),
                "DeleteObjectTagging",
            ),
            (
                op(Method::PUT, "b/k", &["legal-hold"], false),
                "PutObjectLegalHold",
            ),
            (op(Method::GET, "b", &["acl"], false), "GetBucketAcl"),
            (op(Method::PUT, "b", &["acl"], false), "PutBucketAcl"),
            (op(Method::GET, "b", &[], false), "ListObjects"),
            (op(Method::GET, "b", &["list-type"], false), "ListObjectsV2"),
            (
                op(Method::GET, "b", &["versions"], false),
                "ListObjectVersions",
            ),
            (
                op(Method::GET, "b", &["uploads"], false),
                "ListMultipartUploads",
            ),
            (op(Method::POST, "b", &["delete"], false), "DeleteObjects"),
            (op(Method::PUT, "b/k", &[], false), "PutObject"),
            (op(Method::PUT, "b/k", &[], true), "CopyObject"),
            (op(Method::GET, "b/k", &[], false), "GetObject"),
            (op(Method::HEAD, "b/k", &[], false), "HeadObject"),
            (op(Method::DELETE, "b/k", &[], false), "DeleteObject"),
            (op(Method::GET, "b/k", &["acl"], false), "GetObjectAcl"),
            (op(Method::PUT, "b/k", &["acl"], false), "PutObjectAcl"),
            (
                op(Method::POST, "b/k", &["uploads"], false),
                "CreateMultipartUpload",
            ),
            (
                op(Method::PUT, "b/k", &["uploadId", "partNumber"], false),
                "UploadPart",
            ),
            (
                op(Method::PUT, "b/k", &["uploadId", "partNumber"], true),
                "UploadPartCopy",
            ),
            (
                op(Method::POST, "b/k", &["uploadId"], false),
                "CompleteMultipartUpload",
            ),
            (
                op(Method::DELETE, "b/k", &["uploadId"], false),
                "AbortMultipartUpload",
            ),
            (op(Method::GET, "b/k", &["uploadId"], false), "ListParts"),
            (op(Method::GET, "b/k", &["partNumber"], false), "GetObject"),
            (op(Method::POST, "b/k", &[], false), "NotImplemented"),
            (op(Method::GET, "b", &["cors"], false), "GetBucketCors"),
            (op(Method::PUT, "b", &["cors"], false), "PutBucketCors"),
            (
                op(Method::DELETE, "b", &["cors"], false),
                "DeleteBucketCors",
            ),
            (
                op(Method::OPTIONS, "b/k", &["policy"], false),
                "CorsPreflight",
            ),
            (op(Method::POST, "b", &[], false), "PostObject"),
            (op(Method::GET, "b", &["policy"], false), "GetBucketPolicy"),
            (op(Method::PUT, "b", &["policy"], false), "PutBucketPolicy"),
            (
                op(Method::DELETE, "b", &["policy"], false),
                "DeleteBucketPolicy",
            ),
            (
                op(Method::GET, "b", &["policyStatus"], false),
                "GetBucketPolicyStatus",
            ),
            (
                op(Method::GET, "b", &["encryption"], false),
                "GetBucketEncryption",
            ),
            (
                op(Method::PUT, "b", &["encryption"], false),
                "PutBucketEncryption",
            ),
            (
                op(Method::DELETE, "b", &["encryption"], false),
                "DeleteBucketEncryption",
            ),
            (
                op(Method::GET, "b", &["ownershipControls"], false),
                "GetBucketOwnershipControls",
            ),
            (
                op(Method::PUT, "b", &["ownershipControls"], false),
                "PutBucketOwnershipControls",
            ),
            (
                op(Method::DELETE, "b", &["ownershipControls"], false),
                "DeleteBucketOwnershipControls",
            ),
            (
                op(Method::GET, "b/k", &["attributes"], false),
                "GetObjectAttributes",
            ),
            (op(Method::PATCH, "b/k", &[], false), "Unknown"),
        ];
        for (op, name) in cases {
            assert_eq!(op.name(), name, "{op:?}");
        }
        // One case per label, and no label twice.
        let named: std::collections::BTreeSet<_> = cases.iter().map(|(_, n)| *n).collect();
        assert_eq!(named.len(), S3Op::LABELS.len());
        let labels: std::collections::BTreeSet<_> = S3Op::LABELS.iter().collect();
        assert_eq!(labels.len(), S3Op::LABELS.len());
    }

    #[test]
    fn requests_the_old_classifiers_disagreed_on() {
        // Counted as CreateBucket, ListObjects and GetObject before.
        assert_eq!(op(Method::PUT, "b", &["acl"], false), S3Op::PutBucketAcl);
        assert_eq!(op(Method::GET, "b", &["acl"], false), S3Op::GetBucketAcl);
        assert_eq!(
            op(Method::HEAD, "b/k", &["partNumber"], false),
            S3Op::HeadObject
        );
        assert_eq!(
            op(Method::DELETE, "b", &["acl"], false),
            S3Op::MethodNotAllowed
        );
        assert_eq!(op(Method::POST, "b", &[], false), S3Op::PostObject);
        assert_eq!(op(Method::PUT, "", &[], false), S3Op::MethodNotAllowed);
    }
}
