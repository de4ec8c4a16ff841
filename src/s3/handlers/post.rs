//! POST Object: a browser uploads a file with an HTML form. The fields
//! before the file (bounded by [`POST_FORM_FIELDS_BYTES_MAX`]) say who
//! signed the form's policy, where the file goes and how to store it; the
//! policy is checked before a byte of the file is stored, and the file is
//! streamed into chunk buffers under admission like a PUT's body.

use std::rc::Rc;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use shoal_proto::meta::ObjectManifest;
use shoal_shard::limits::OBJECT_BYTES_MAX;
use time::OffsetDateTime;

use super::ownership::new_object_owner;
use super::put::{
    chunk_refs, commit_object, stored_encryption, stored_headers, user_metadata, write_outcome,
    DEFAULT_CONTENT_TYPE,
};
use super::receive::receive_form_file;
use super::versioning::{bucket_versioning, insert_version_id, written_version};
use super::{etag, header_value, next_frame, now_unix_ms, require_bucket};
use crate::limits::{KEY_BYTES_MAX, OBJECT_TAGS_MAX, POST_FORM_FIELDS_BYTES_MAX};
use crate::s3::access::{self, Caller, Permission};
use crate::s3::auth::post::authenticate_form;
use crate::s3::error::S3Error;
use crate::s3::post_form::{self, FormError, FormHead};
use crate::s3::post_policy::PostPolicy;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, ObjectKey};
use crate::s3::xml::XmlWriter;
use crate::s3::{empty_response, tags, xml_response, Body, S3Context};

pub async fn post_object(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let boundary = post_form::boundary(request.header("content-type").unwrap_or_default())
        .map_err(|_| S3Error::InvalidRequest {
            message: "Bucket POST must be of the enclosure-type multipart/form-data".into(),
        })?;
    let length: u64 = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or(S3Error::MissingContentLength)?;
    let (head, started, body) = read_form_head(ctx, &mut request, &boundary).await?;
    let caller = form_caller(ctx, &head)?;
    let policy = match head.field("policy") {
        Some(encoded) => Some(PostPolicy::decode(encoded)?),
        None => None,
    };
    if let Some(policy) = &policy {
        policy.check(&head, bucket, OffsetDateTime::now_utc())?;
    }
    access::authorize_bucket(ctx, &caller, bucket, Permission::Write)?;
    let key = form_key(&head)?;
    let (manifest, object_key) = form_manifest(ctx, &caller, bucket, &key, &head)?;
    let owner = ctx.router.owner(bucket, &key);

    let file_bytes_max = length
        .saturating_sub(started.consumed)
        .min(OBJECT_BYTES_MAX);
    let data_key = object_key.as_ref().map(|k| k.data_key.clone());
    let stored = receive_form_file(
        ctx,
        owner,
        body,
        &started.bytes,
        &boundary,
        file_bytes_max,
        data_key,
    )
    .await?;
    if let Some((min_bytes, max_bytes)) = policy.as_ref().and_then(PostPolicy::length_range) {
        if !(min_bytes..=max_bytes).contains(&stored.size_bytes) {
            return Err(S3Error::OutsideLengthRange {
                size_bytes: stored.size_bytes,
                min_bytes,
                max_bytes,
            });
        }
    }
    let manifest = ObjectManifest {
        size_bytes: stored.size_bytes,
        md5: stored.md5.to_vec(),
        chunks: chunk_refs(&stored.chunks),
        embedded: stored.embedded,
        encryption: stored_encryption(manifest.encryption.clone(), stored.embedded_iv),
        ..manifest
    };
    let outcome = commit_object(ctx, owner, manifest, &stored.chunks, None).await?;
    drop(stored.charge);
    write_outcome(outcome, &key)?;
    let tag = etag(&stored.md5, 0);
    let mut response = form_response(&head, bucket, &key, &tag)?;
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, header_value(&tag)?);
    let versioning = bucket_versioning(ctx, bucket);
    insert_version_id(headers, &written_version(outcome), versioning)?;
    if let Some(object_key) = &object_key {
        object_key.insert_headers(headers)?;
    }
    Ok(response)
}

/// The file's first bytes (those that came with the fields) and how many
/// body bytes the fields and part headers took.
struct Started {
    bytes: Vec<u8>,
    consumed: u64,
}

/// Reads the body until the file part's headers: the fields, the file's
/// first bytes, and the rest of the body to stream.
async fn read_form_head(
    ctx: &S3Context,
    request: &mut S3Request,
    boundary: &str,
) -> Result<(FormHead, Started, hyper::body::Incoming), S3Error> {
    let mut body = request
        .take_body()
        .ok_or_else(|| S3Error::internal("request body taken twice"))?;
    let idle = ctx.config.body_idle_timeout;
    let mut buffered = Vec::new();
    loop {
        match post_form::read_head(&buffered, boundary) {
            Ok(Some((head, used))) => {
                ctx.metrics.add_bytes_in(used as u64);
                let started = Started {
                    bytes: buffered.split_off(used),
                    consumed: used as u64,
                };
                return Ok((head, started, body));
            }
            Ok(None) => {}
            Err(FormError::NoFile) => return Err(no_file()),
            Err(FormError::NotAForm | FormError::Malformed(_)) => {
                return Err(S3Error::MalformedPostRequest)
            }
        }
        if buffered.len() > POST_FORM_FIELDS_BYTES_MAX {
            return Err(S3Error::MaxPostPreDataLengthExceeded);
        }
        let frame = next_frame(&mut body, idle)
            .await?
            .ok_or_else(no_file)?
            .map_err(|_| S3Error::MalformedPostRequest)?;
        if let Ok(data) = frame.into_data() {
            buffered.extend_from_slice(&data);
        }
    }
}

fn no_file() -> S3Error {
    S3Error::InvalidArgument {
        message: "POST requires exactly one file upload per request.".into(),
    }
}

/// Who signed the form (anonymous when unsigned).
fn form_caller(ctx: &S3Context, head: &FormHead) -> Result<Caller, S3Error> {
    let directory = &ctx.directory;
    let secret_for = |access_key: &str| {
        directory
            .key_owner(access_key)
            .filter(|owner| owner.enabled)
            .map(|owner| owner.secret_key)
    };
    let field = |name: &str| head.field(name);
    let signer = authenticate_form(&field, &ctx.config.region, ctx.config.sigv2, &secret_for)?;
    Ok(match signer.and_then(|key| directory.key_owner(&key)) {
        Some(owner) => Caller::User {
            id: owner.user_id,
            name: owner.user_name,
        },
        None => Caller::Anonymous,
    })
}

/// The object's key: the `key` field, `${filename}` replaced by the file's
/// name.
fn form_key(head: &FormHead) -> Result<String, S3Error> {
    let key = head
        .field("key")
        .ok_or_else(|| S3Error::InvalidArgument {
            message: "Bucket POST must contain a field named 'key'.".into(),
        })?
        .replace("${filename}", &head.file_name);
    if key.is_empty() {
        return Err(S3Error::InvalidArgument {
            message: "The key may not be empty.".into(),
        });
    }
    if key.len() > KEY_BYTES_MAX || key.contains('\0') {
        return Err(S3Error::KeyTooLong { length: key.len() });
    }
    Ok(key)
}

/// Everything of the object's manifest the fields say (the body's own
/// fields are filled in once it is stored), and the key to encrypt the
/// file with if the fields (or the bucket's default) ask for encryption.
/// Fields asking for what Shoal does not have are refused, never ignored.
fn form_manifest(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    key: &str,
    head: &FormHead,
) -> Result<(ObjectManifest, Option<ObjectKey>), S3Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in &head.fields {
        let name = name.to_ascii_lowercase();
        if name == "x-amz-storage-class" && value != "STANDARD" {
            return Err(S3Error::HeaderNotImplemented {
                header: "x-amz-storage-class",
                feature: "storage classes other than STANDARD",
            });
        }
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value))
        else {
            continue;
        };
        headers.insert(name, value);
    }
    let acl = match head.field("acl") {
        Some(name) => Some(access::canned_acl(name)?),
        None => None,
    };
    let tags = match head.field("tagging") {
        Some(document) => tags::parse_tagging(document.as_bytes(), OBJECT_TAGS_MAX)?,
        None => Default::default(),
    };
    let content_type = head
        .field("content-type")
        .or(head.file_content_type.as_deref())
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    let (owner_id, acl) = new_object_owner(ctx, caller, bucket, head.field("acl"), acl)?;
    let (encryption, object_key) =
        sse::for_new_object(ctx, bucket, &sse::header_field(&headers))?.unzip();
    let manifest = ObjectManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        last_modified_unix_ms: now_unix_ms(),
        content_type: content_type.to_string(),
        user_metadata: user_metadata(&headers),
        headers: stored_headers(&headers),
        owner_id,
        acl,
        tags,
        encryption,
        ..Default::default()
    };
    Ok((manifest, object_key))
}

/// What the form asked to get back: a redirect, a `201` with the upload
/// described, or (by default, and for any other status) `204`.
fn form_response(
    head: &FormHead,
    bucket: &str,
    key: &str,
    tag: &str,
) -> Result<Response<Body>, S3Error> {
    let redirect = head
        .field("success_action_redirect")
        .or(head.field("redirect"))
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"));
    if let Some(url) = redirect {
        let separator = if url.contains('?') { '&' } else { '?' };
        let location = format!(
            "{url}{separator}bucket={}&key={}&etag={}",
            query_escape(bucket),
            query_escape(key),
            query_escape(tag)
        );
        let mut response = empty_response(StatusCode::SEE_OTHER);
        response
            .headers_mut()
            .insert(http::header::LOCATION, header_value(&location)?);
        return Ok(response);
    }
    match head.field("success_action_status") {
        Some("200") => Ok(empty_response(StatusCode::OK)),
        Some("201") => {
            let location = format!("/{bucket}/{key}");
            let mut out = XmlWriter::new();
            out.open_root("PostResponse");
            out.leaf("Location", &location);
            out.leaf("Bucket", bucket);
            out.leaf("Key", key);
            out.leaf("ETag", tag);
            out.close("PostResponse");
            let mut response = xml_response(StatusCode::CREATED, out.finish());
            response
                .headers_mut()
                .insert(http::header::LOCATION, header_value(&location)?);
            Ok(response)
        }
        _ => Ok(empty_response(StatusCode::NO_CONTENT)),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
