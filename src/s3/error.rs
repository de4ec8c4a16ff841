//! Every S3 failure, and the one place it becomes a status, a code and an
//! XML body.
//!
//! Handlers return [`S3Error`]; [`S3Error::into_response`] renders
//! `<Error><Code>…</Code><Message>…</Message>…</Error>` with the request id.
//! Internal detail (paths, rocksdb messages) is logged, never sent.

use http::{HeaderValue, Response, StatusCode};

use super::auth::AuthError;
use super::chunked::ChunkedError;
use super::downloads::DownloadsFull;
use super::xml::XmlWriter;
use super::Body;
use crate::limits::RETRY_AFTER_S_MIN;
use crate::limits::RETRY_AFTER_S_SPREAD;
use shoal_shard::admission::AdmissionError;
use shoal_shard::error::ShardError;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("The specified bucket does not exist")]
    NoSuchBucket { bucket: String },
    #[error("The specified key does not exist.")]
    NoSuchKey { key: String },
    #[error("The specified version does not exist.")]
    NoSuchVersion { key: String, version_id: String },
    #[error("Object Lock configuration does not exist for this bucket")]
    ObjectLockConfigurationNotFound { bucket: String },
    #[error("The specified object does not have an Object Lock configuration")]
    NoSuchObjectLockConfiguration,
    #[error("{message}")]
    InvalidBucketState { message: String },
    #[error("{message}")]
    InvalidTag { message: String },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("The TagSet does not exist")]
    NoSuchTagSet { bucket: String },
    #[error("The lifecycle configuration does not exist")]
    NoSuchLifecycleConfiguration { bucket: String },
    #[error("{message}")]
    InvalidPolicyDocument { message: String },
    #[error("The body of your POST request is not well-formed multipart/form-data.")]
    MalformedPostRequest,
    #[error("Your POST request fields preceding the upload file were too large.")]
    MaxPostPreDataLengthExceeded,
    /// A browser upload's file outside its policy's `content-length-range`.
    #[error("Your proposed upload of {size_bytes} bytes is outside the policy's range of {min_bytes} to {max_bytes} bytes.")]
    OutsideLengthRange {
        size_bytes: u64,
        min_bytes: u64,
        max_bytes: u64,
    },
    #[error("The bucket policy does not exist")]
    NoSuchBucketPolicy { bucket: String },
    #[error("{reason}")]
    MalformedPolicy { reason: String },
    #[error("The CORS configuration does not exist")]
    NoSuchCorsConfiguration { bucket: String },
    #[error("The server side encryption configuration was not found")]
    NoSuchEncryptionConfiguration { bucket: String },
    #[error("{message}")]
    InvalidEncryptionAlgorithm { message: String },
    #[error("The bucket ownership controls were not found")]
    OwnershipControlsNotFound { bucket: String },
    #[error("The bucket does not allow ACLs")]
    AccessControlListNotSupported,
    #[error("Bucket ACLs other than private cannot be combined with the BucketOwnerEnforced ownership setting")]
    InvalidBucketAclWithObjectOwnership,
    /// A CORS preflight no rule of the bucket allows.
    #[error("CORSResponse: {message}")]
    CorsForbidden { message: &'static str },
    /// The version asked for is a delete marker: without a version id the
    /// key reads as missing (404), by its id the marker is not an object
    /// a GET or HEAD can return (405). Either way the response says so.
    #[error("{}", if *.by_id { "The specified method is not allowed against this resource." } else { "The specified key does not exist." })]
    DeleteMarker {
        key: String,
        version_id: String,
        by_id: bool,
    },
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error("The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")]
    BucketAlreadyExists { bucket: String },
    #[error("{message}")]
    AccessDenied { message: String },
    #[error("The XML you provided was not well-formed or did not validate against our published schema.")]
    MalformedAclError,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("The specified bucket is not valid: {reason}")]
    InvalidBucketName {
        bucket: String,
        reason: &'static str,
    },
    #[error("The requested range is not satisfiable")]
    InvalidRange { size_bytes: u64 },
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Chunked(#[from] ChunkedError),
    #[error("The {algorithm} you specified did not match the calculated checksum.")]
    BadDigest { algorithm: &'static str },
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header: expected {expected_bytes}, got {received_bytes}")]
    IncompleteBody {
        expected_bytes: u64,
        received_bytes: u64,
    },
    #[error("No bytes of the request body arrived for {idle:?}; the request timed out.")]
    RequestTimeout { idle: std::time::Duration },
    #[error("The Content-MD5 or checksum value you specified is not valid.")]
    InvalidDigest,
    #[error("You must provide the Content-Length HTTP header.")]
    MissingContentLength,
    #[error("Your proposed upload of {size_bytes} bytes exceeds the maximum allowed object size of {max_bytes} bytes.")]
    EntityTooLarge { size_bytes: u64, max_bytes: u64 },
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("{message}")]
    InvalidRequest { message: String },
    #[error("The XML you provided was not well-formed or did not validate against our published schema.")]
    MalformedXml,
    #[error("Your location constraint {given:?} is incompatible with this endpoint's region {region:?}.")]
    IllegalLocationConstraint { given: String, region: String },
    #[error("{what} is not implemented by this server.")]
    NotImplemented { what: &'static str },
    #[error("A header you provided implies functionality that is not implemented by this server: {feature} ({header}).")]
    HeaderNotImplemented {
        header: &'static str,
        feature: &'static str,
    },
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    #[error("Your key is too long")]
    KeyTooLong { length: usize },
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    #[error("The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")]
    NoSuchUpload { upload_id: String },
    #[error("{message}")]
    InvalidPart { message: String },
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed object size. Part {part_number} is {size_bytes} bytes; every part but the last must be at least {min_bytes} bytes.")]
    EntityTooSmall {
        part_number: u32,
        size_bytes: u64,
        min_bytes: u64,
    },
    #[error("{message}")]
    ServiceUnavailable { message: String },
    #[error("Please reduce your request rate.")]
    SlowDown { reason: AdmissionError },
    /// The core's GETs hold all of its download budget.
    #[error("Please reduce your request rate.")]
    DownloadsFull(DownloadsFull),
    /// The node's disk is below its reserve (or was found full): nothing
    /// that stores bytes is taken until deletes free space.
    #[error("{message}")]
    InsufficientStorage { message: String },
    #[error("We encountered an internal error. Please try again.")]
    Internal { detail: String },
}

impl S3Error {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        S3Error::Internal {
            detail: detail.to_string(),
        }
    }

    /// The S3 error code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            S3Error::NoSuchBucket { .. } => "NoSuchBucket",
            S3Error::NoSuchKey { .. } => "NoSuchKey",
            S3Error::NoSuchVersion { .. } => "NoSuchVersion",
            S3Error::ObjectLockConfigurationNotFound { .. } => {
                "ObjectLockConfigurationNotFoundError"
            }
            S3Error::NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            S3Error::InvalidBucketState { .. } => "InvalidBucketState",
            S3Error::InvalidTag { .. } => "InvalidTag",
            S3Error::BadRequest { .. } => "BadRequest",
            S3Error::NoSuchTagSet { .. } => "NoSuchTagSet",
            S3Error::NoSuchLifecycleConfiguration { .. } => "NoSuchLifecycleConfiguration",
            S3Error::NoSuchCorsConfiguration { .. } => "NoSuchCORSConfiguration",
            S3Error::NoSuchEncryptionConfiguration { .. } => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            S3Error::InvalidEncryptionAlgorithm { .. } => "InvalidEncryptionAlgorithmError",
            S3Error::OwnershipControlsNotFound { .. } => "OwnershipControlsNotFoundError",
            S3Error::AccessControlListNotSupported => "AccessControlListNotSupported",
            S3Error::InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            S3Error::NoSuchBucketPolicy { .. } => "NoSuchBucketPolicy",
            S3Error::MalformedPolicy { .. } => "MalformedPolicy",
            S3Error::CorsForbidden { .. } => "AccessForbidden",
            S3Error::InvalidPolicyDocument { .. } => "InvalidPolicyDocument",
            S3Error::MalformedPostRequest => "MalformedPOSTRequest",
            S3Error::MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceeded",
            S3Error::OutsideLengthRange {
                size_bytes,
                min_bytes,
                ..
            } => match size_bytes < min_bytes {
                true => "EntityTooSmall",
                false => "EntityTooLarge",
            },
            S3Error::DeleteMarker { by_id: false, .. } => "NoSuchKey",
            S3Error::DeleteMarker { by_id: true, .. } => "MethodNotAllowed",
            S3Error::BucketAlreadyOwnedByYou { .. } => "BucketAlreadyOwnedByYou",
            S3Error::BucketNotEmpty { .. } => "BucketNotEmpty",
            S3Error::BucketAlreadyExists { .. } => "BucketAlreadyExists",
            S3Error::AccessDenied { .. } => "AccessDenied",
            S3Error::MalformedAclError => "MalformedACLError",
            S3Error::InvalidBucketName { .. } => "InvalidBucketName",
            S3Error::InvalidRange { .. } => "InvalidRange",
            S3Error::Auth(e) => e.s3_code(),
            S3Error::Chunked(e) => e.s3_code(),
            S3Error::BadDigest { .. } => "BadDigest",
            S3Error::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            S3Error::IncompleteBody { .. } => "IncompleteBody",
            S3Error::RequestTimeout { .. } => "RequestTimeout",
            S3Error::InvalidDigest => "InvalidDigest",
            S3Error::MissingContentLength => "MissingContentLength",
            S3Error::EntityTooLarge { .. } => "EntityTooLarge",
            S3Error::InvalidArgument { .. } => "InvalidArgument",
            S3Error::InvalidRequest { .. } => "InvalidRequest",
            S3Error::MalformedXml => "MalformedXML",
            S3Error::IllegalLocationConstraint { .. } => "IllegalLocationConstraintException",
            S3Error::NotImplemented { .. } | S3Error::HeaderNotImplemented { .. } => {
                "NotImplemented"
            }
            S3Error::MethodNotAllowed => "MethodNotAllowed",
            S3Error::KeyTooLong { .. } => "KeyTooLongError",
            S3Error::SlowDown { .. } | S3Error::DownloadsFull(_) => "SlowDown",
            S3Error::ServiceUnavailable { .. } => "ServiceUnavailable",
            S3Error::InsufficientStorage { .. } => "InsufficientStorage",
            S3Error::PreconditionFailed => "PreconditionFailed",
            S3Error::NoSuchUpload { .. } => "NoSuchUpload",
            S3Error::InvalidPart { .. } => "InvalidPart",
            S3Error::InvalidPartOrder => "InvalidPartOrder",
            S3Error::EntityTooSmall { .. } => "EntityTooSmall",
            S3Error::Internal { .. } => "InternalError",
        }
    }

    pub fn status(&self) -> StatusCode {
        let code = match self {
            S3Error::NoSuchBucket { .. }
            | S3Error::NoSuchKey { .. }
            | S3Error::NoSuchVersion { .. }
            | S3Error::ObjectLockConfigurationNotFound { .. }
            | S3Error::NoSuchObjectLockConfiguration
            | S3Error::NoSuchTagSet { .. }
            | S3Error::NoSuchLifecycleConfiguration { .. }
            | S3Error::NoSuchCorsConfiguration { .. }
            | S3Error::NoSuchEncryptionConfiguration { .. }
            | S3Error::OwnershipControlsNotFound { .. }
            | S3Error::NoSuchBucketPolicy { .. }
            | S3Error::DeleteMarker { by_id: false, .. }
            | S3Error::NoSuchUpload { .. } => 404,
            S3Error::DeleteMarker { by_id: true, .. } => 405,
            S3Error::BucketAlreadyOwnedByYou { .. }
            | S3Error::BucketAlreadyExists { .. }
            | S3Error::BucketNotEmpty { .. }
            | S3Error::InvalidBucketState { .. } => 409,
            S3Error::AccessDenied { .. } | S3Error::CorsForbidden { .. } => 403,
            S3Error::InvalidRange { .. } => 416,
            S3Error::Auth(e) => e.http_status(),
            S3Error::Chunked(e) => e.http_status(),
            S3Error::MissingContentLength => 411,
            S3Error::EntityTooLarge { .. } => 413,
            S3Error::NotImplemented { .. } | S3Error::HeaderNotImplemented { .. } => 501,
            S3Error::MethodNotAllowed => 405,
            S3Error::Internal { .. } => 500,
            S3Error::SlowDown { .. }
            | S3Error::DownloadsFull(_)
            | S3Error::ServiceUnavailable { .. } => 503,
            S3Error::InsufficientStorage { .. } => 507,
            S3Error::PreconditionFailed => 412,
            S3Error::InvalidBucketName { .. }
            | S3Error::BadDigest { .. }
            | S3Error::ContentSha256Mismatch
            | S3Error::InvalidDigest
            | S3Error::IncompleteBody { .. }
            | S3Error::RequestTimeout { .. }
            | S3Error::InvalidArgument { .. }
            | S3Error::InvalidTag { .. }
            | S3Error::BadRequest { .. }
            | S3Error::InvalidRequest { .. }
            | S3Error::InvalidEncryptionAlgorithm { .. }
            | S3Error::AccessControlListNotSupported
            | S3Error::InvalidBucketAclWithObjectOwnership
            | S3Error::InvalidPolicyDocument { .. }
            | S3Error::MalformedPolicy { .. }
            | S3Error::MalformedPostRequest
            | S3Error::MaxPostPreDataLengthExceeded
            | S3Error::OutsideLengthRange { .. }
            | S3Error::MalformedXml
            | S3Error::MalformedAclError
            | S3Error::InvalidPart { .. }
            | S3Error::InvalidPartOrder
            | S3Error::EntityTooSmall { .. }
            | S3Error::IllegalLocationConstraint { .. }
            | S3Error::KeyTooLong { .. } => 400,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Renders the S3 XML error. `resource` is the request path; HEAD
    /// responses carry no body, as S3 does.
    pub fn into_response(self, resource: &str, request_id: &str, head: bool) -> Response<Body> {
        if let S3Error::Internal { detail } = &self {
            tracing::error!(request_id, resource, detail, "internal error");
        } else {
            tracing::debug!(request_id, resource, code = self.code(), error = %self, "request failed");
        }
        let status = self.status();
        let mut xml = XmlWriter::new();
        xml.open("Error");
        xml.leaf("Code", self.code());
        xml.leaf("Message", &self.to_string());
        match &self {
            S3Error::NoSuchBucket { bucket }
            | S3Error::BucketAlreadyOwnedByYou { bucket }
            | S3Error::BucketNotEmpty { bucket }
            | S3Error::BucketAlreadyExists { bucket }
            | S3Error::InvalidBucketName { bucket, .. }
            | S3Error::ObjectLockConfigurationNotFound { bucket }
            | S3Error::NoSuchTagSet { bucket }
            | S3Error::NoSuchLifecycleConfiguration { bucket }
            | S3Error::NoSuchCorsConfiguration { bucket }
            | S3Error::NoSuchEncryptionConfiguration { bucket }
            | S3Error::OwnershipControlsNotFound { bucket }
            | S3Error::NoSuchBucketPolicy { bucket } => xml.leaf("BucketName", bucket),
            S3Error::NoSuchKey { key } | S3Error::DeleteMarker { key, .. } => xml.leaf("Key", key),
            S3Error::NoSuchVersion { key, version_id } => {
                xml.leaf("Key", key);
                xml.leaf("VersionId", version_id);
            }
            S3Error::NoSuchUpload { upload_id } => xml.leaf("UploadId", upload_id),
            S3Error::HeaderNotImplemented { header, .. } => xml.leaf("Header", header),
            // So a client that signed for another region learns which one
            // to use (s3cmd and the AWS SDKs retry with it).
            S3Error::Auth(AuthError::WrongRegion { expected, .. }) => xml.leaf("Region", expected),
            S3Error::InvalidRange { size_bytes } => {
                xml.leaf("ActualObjectSize", &size_bytes.to_string())
            }
            _ => {}
        }
        xml.leaf("Resource", resource);
        xml.leaf("RequestId", request_id);
        xml.close("Error");
        let mut response = if head {
            super::empty_response(status)
        } else {
            super::xml_response(status, xml.finish())
        };
        let headers = response.headers_mut();
        if let S3Error::InvalidRange { size_bytes } = &self {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size_bytes}")) {
                headers.insert(http::header::CONTENT_RANGE, value);
            }
        }
        // After a failed body the connection may hold unread bytes; close it
        // rather than guess where the next request starts.
        if matches!(
            self,
            S3Error::Chunked(_)
                | S3Error::IncompleteBody { .. }
                | S3Error::RequestTimeout { .. }
                | S3Error::SlowDown { .. }
                | S3Error::InsufficientStorage { .. }
        ) {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let S3Error::DeleteMarker { version_id, .. } = &self {
            headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
            if let Ok(value) = HeaderValue::from_str(version_id) {
                headers.insert("x-amz-version-id", value);
            }
        }
        if let S3Error::SlowDown { .. } | S3Error::DownloadsFull(_) = &self {
            // Jittered, so rejected clients do not all come back at once.
            let seconds = rand::random::<u64>() % RETRY_AFTER_S_SPREAD + RETRY_AFTER_S_MIN;
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ShardError> for S3Error {
    fn from(e: ShardError) -> Self {
        match e {
            // Followers proxy to the leader; this one could not reach it
            // (an election is under way, or the leader is gone).
            ShardError::Raft(shoal_shard::raft::RaftError::NotLeader { leader }) => {
                S3Error::ServiceUnavailable {
                    message: format!(
                        "This node cannot reach the shard's leader (node {}); retry shortly.",
                        leader.map_or_else(|| "unknown".to_string(), |l| l.to_string())
                    ),
                }
            }
            e @ ShardError::InlineWrite { .. } => S3Error::ServiceUnavailable {
                message: format!("The data could not be committed ({e}); retry."),
            },
            e @ ShardError::PeerSlow { .. } => S3Error::ServiceUnavailable {
                message: format!("The shard's leader is slow to answer ({e}); retry."),
            },
            e @ ShardError::PeerRefused { .. } => S3Error::ServiceUnavailable {
                message: format!("The shard's leader could not take the request ({e}); retry."),
            },
            e @ ShardError::NotCurrent { .. } => S3Error::ServiceUnavailable {
                message: format!("This node could not confirm it is up to date ({e}); retry."),
            },
            e @ ShardError::ReplicationFailed { .. } => S3Error::ServiceUnavailable {
                message: format!("Too few nodes reachable to store the data durably ({e})."),
            },
            ShardError::BlobLog(e) if e.is_no_space() => S3Error::InsufficientStorage {
                message: format!(
                    "The node's disk is full ({e}); delete objects to free space, then retry."
                ),
            },
            e => S3Error::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::auth::AuthLocation;
    use http_body_util::BodyExt;

    fn xml_of(error: S3Error) -> String {
        let response = error.into_response("/b/k", "REQ1", false);
        let body = futures_lite::future::block_on(response.into_body().collect())
            .expect("a full body")
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8 XML")
    }

    #[test]
    fn a_wrong_region_names_the_right_one() {
        let xml = xml_of(S3Error::Auth(AuthError::WrongRegion {
            location: AuthLocation::Header,
            expected: "eu-west-1".into(),
            got: "US".into(),
        }));
        assert!(
            xml.contains("<Code>AuthorizationHeaderMalformed</Code>"),
            "{xml}"
        );
        assert!(xml.contains("<Region>eu-west-1</Region>"), "{xml}");
    }

    #[test]
    fn an_unimplemented_header_is_named() {
        let error = S3Error::HeaderNotImplemented {
            header: "x-amz-tagging",
            feature: "object tagging",
        };
        assert_eq!(error.status(), StatusCode::NOT_IMPLEMENTED);
        let xml = xml_of(error);
        assert!(xml.contains("<Code>NotImplemented</Code>"), "{xml}");
        assert!(xml.contains("<Header>x-amz-tagging</Header>"), "{xml}");
    }
}
