//! The S3 front end: one hyper service per connection, on the core that
//! accepted it.
//!
//! A request flows one way: parse ([`request`]) → authenticate ([`auth`])
//! → authorize ([`access`], against the node's [`Directory`] of buckets and
//! users) → run the operation's handler, which reaches shards only through
//! the [`Router`](crate::route::Router) → render the result, or the error
//! in one place ([`error`]). Handlers never read a request body before the request
//! is known to be acceptable, so a client that sent `Expect: 100-continue`
//! gets the error instead of `100 Continue`.

pub mod access;
pub mod auth;
pub mod checksum;
pub mod chunked;
mod conditional;
pub mod cors;
pub mod downloads;
pub mod error;
pub mod fuzz_targets;
pub(crate) mod handlers;
mod ingest;
pub mod md5_lanes;
pub mod op;
pub mod policy;
mod policy_check;
pub mod post_form;
pub mod post_policy;
pub(crate) mod range;
pub mod request;
pub mod request_log;
pub mod sse;
pub(crate) mod tags;
mod unimplemented;
pub mod xml;

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use shoal_shard::admission::Gate;
use shoal_shard::chunk::ChunkPool;
use shoal_shard::directory::Directory;

use crate::disk_space::Disks;
use crate::flags::NodeConfig;
use crate::http_io::RemoteAddr;
use crate::metrics::CoreMetrics;
use crate::route::Router;
use access::Caller;
use auth::PayloadMode;
use error::S3Error;
use op::S3Op;
use request::{S3Request, Target};

pub use crate::http_io::Body;

/// What one core's S3 service holds. Built once per core at start; read-only
/// afterwards except for the request-id counter.
pub struct S3Context {
    pub config: Arc<NodeConfig>,
    pub router: Router,
    /// Buckets and users, as the metadata shard last applied them.
    pub directory: Arc<Directory>,
    pub pool: ChunkPool,
    pub metrics: Arc<CoreMetrics>,
    pub md5_lanes: Rc<md5_lanes::Md5Lanes>,
    /// What this core's GETs may hold in memory.
    pub downloads: downloads::DownloadBudget,
    /// This core's admission gate for every shard, by shard index.
    pub gates: Vec<Gate>,
    pub core_index: usize,
    /// Free space on each data directory, against the reserve.
    pub disks: Arc<Disks>,
    /// Seals the data keys of SSE-S3 objects.
    pub master_key: Arc<sse::keys::MasterKey>,
    next_request: Cell<u64>,
    refusals: request_log::RefusalLog,
}

impl S3Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<NodeConfig>,
        router: Router,
        directory: Arc<Directory>,
        pool: ChunkPool,
        metrics: Arc<CoreMetrics>,
        gates: Vec<Gate>,
        core_index: usize,
        disks: Arc<Disks>,
        master_key: Arc<sse::keys::MasterKey>,
    ) -> Self {
        let downloads =
            downloads::DownloadBudget::new(config.get_budget_per_core_bytes, Arc::clone(&metrics));
        S3Context {
            config,
            router,
            directory,
            pool,
            md5_lanes: md5_lanes::Md5Lanes::new(Arc::clone(&metrics)),
            downloads,
            metrics,
            gates,
            core_index,
            disks,
            master_key,
            next_request: Cell::new(0),
            refusals: request_log::RefusalLog::default(),
        }
    }

    /// What `read` makes of the bucket's record in this core's directory
    /// (without copying the record), or NoSuchBucket.
    pub fn read_existing_bucket<T>(
        &self,
        bucket: &str,
        read: impl FnOnce(&shoal_proto::meta::BucketRecord) -> T,
    ) -> Result<T, S3Error> {
        self.directory
            .read_bucket(bucket, read)
            .ok_or_else(|| S3Error::NoSuchBucket {
                bucket: bucket.to_string(),
            })
    }

    /// The bucket's record, or NoSuchBucket.
    pub fn bucket_record(&self, bucket: &str) -> Result<shoal_proto::meta::BucketRecord, S3Error> {
        self.read_existing_bucket(bucket, Clone::clone)
    }

    /// A request id unique on this node: core index in the top byte.
    fn request_id(&self) -> String {
        let n = self.next_request.get();
        self.next_request.set(n + 1);
        format!(
            "{:016X}",
            ((self.core_index as u64) << 56) | (n & ((1 << 56) - 1))
        )
    }
}

/// The hyper service entry point.
pub async fn serve(
    ctx: Rc<S3Context>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let request_id = ctx.request_id();
    let resource = req.uri().path().to_string();
    let method = req.method().clone();
    let is_head = method == Method::HEAD;
    let remote = req.extensions().get::<RemoteAddr>().map(|r| r.0);
    let bytes_in = content_length(req.headers());
    // hyper sends `100 Continue` only when a body is read, and an empty body
    // never is; botocore then misreads the next response on the same
    // connection (it waits for a status line it already consumed). Such a
    // connection is closed after its response instead.
    let unanswered_continue = req
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        && bytes_in == Some(0);
    let cross_origin = handlers::cors::CrossOrigin::of(&req);
    let mut caller = None;
    let (label, target, result) = match S3Request::parse(req, ctx.config.domain.as_deref()) {
        Ok(request) => {
            let op = S3Op::of(&request);
            let target = request.target().clone();
            let result = handle(&ctx, op, request, &mut caller).await;
            (op.label_index(), Some(target), result)
        }
        Err(e) => (S3Op::UNKNOWN_LABEL_INDEX, None, Err(e)),
    };
    let summary = request_log::RequestSummary {
        request_id: &request_id,
        operation: S3Op::LABELS[label],
        method: &method,
        target: target.as_ref(),
        caller: caller.as_ref(),
        remote,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            if request_log::is_refusal(&e) {
                ctx.refusals.log(&summary, &e);
            }
            e.into_response(&resource, &request_id, is_head)
        }
    };
    let headers = response.headers_mut();
    if let (Some(cross_origin), Some(target)) = (&cross_origin, &target) {
        // A preflight's answer carries its own.
        if label != S3Op::CorsPreflight.label_index() {
            cross_origin.allow_response(&ctx, target, headers);
        }
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", id);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static("Shoal"));
    if unanswered_continue {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    if ctx.config.access_log {
        let bytes_out = content_length(response.headers()).unwrap_or(0);
        let bytes_in = bytes_in.unwrap_or(0);
        request_log::access(&summary, status, bytes_in, bytes_out, started.elapsed());
    }
    ctx.metrics.record_request(label, status, started.elapsed());
    Ok(response)
}

/// A `Content-Length` header's value, when there is a valid one.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Runs one parsed request, operation `op`; `caller_seen` learns who sent
/// it once that is known.
async fn handle(
    ctx: &Rc<S3Context>,
    op: S3Op,
    request: S3Request,
    caller_seen: &mut Option<Caller>,
) -> Result<Response<Body>, S3Error> {
    if op == S3Op::CorsPreflight {
        return handlers::cors::preflight(ctx, &request);
    }
    let (caller, payload) = access::identify(ctx, &request)?;
    *caller_seen = Some(caller.clone());
    // Before any handler runs, so a refused request never has its body read.
    let caller = access::authorize(ctx, caller, op, &request)?;
    if let S3Op::NotImplemented(what) = op {
        return Err(S3Error::NotImplemented { what: what.what() });
    }
    unimplemented::refuse_unimplemented_headers(&request)?;
    // `S3Op::of` gives bucket operations for bucket targets only, and object
    // operations for object targets only: the names below are never blank
    // where an operation uses them.
    let (name, key) = match request.target().clone() {
        Target::Service => (String::new(), String::new()),
        Target::Bucket(name) => (name, String::new()),
        Target::Object(name, key) => (name, key),
    };
    refuse_if_disk_low(ctx, op, &name, &key)?;
    dispatch(ctx, op, caller, (name, key), request, payload).await
}

/// Hands an identified, authorized request to its operation's handler.
async fn dispatch(
    ctx: &Rc<S3Context>,
    op: S3Op,
    caller: Caller,
    (name, key): (String, String),
    request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    use handlers::{
        acl, attributes, bucket, copy, cors, delete_objects, encryption, get, lifecycle, list,
        list_versions, multipart, object_lock, ownership, policy, post, put, tagging, versioning,
    };
    let copy_source = || {
        request
            .header("x-amz-copy-source")
            .map(str::to_string)
            .unwrap_or_default()
    };
    match op {
        S3Op::ListBuckets => bucket::list_buckets(ctx, &caller),
        S3Op::CreateBucket => bucket::create_bucket(ctx, &caller, &name, request).await,
        S3Op::HeadBucket => bucket::head_bucket(ctx, &name),
        S3Op::DeleteBucket => bucket::delete_bucket(ctx, &name).await,
        S3Op::GetBucketLocation => list::get_bucket_location(ctx, &name),
        S3Op::GetBucketVersioning => versioning::get_bucket_versioning(ctx, &name),
        S3Op::PutBucketVersioning => {
            versioning::put_bucket_versioning(ctx, &name, request, payload).await
        }
        S3Op::GetObjectLockConfiguration => object_lock::get_configuration(ctx, &name),
        S3Op::PutObjectLockConfiguration => {
            object_lock::put_configuration(ctx, &name, request, payload).await
        }
        S3Op::GetObjectRetention => {
            object_lock::get_retention(ctx, &caller, &name, &key, &request).await
        }
        S3Op::PutObjectRetention => {
            object_lock::put_retention(ctx, &caller, &name, &key, request, payload).await
        }
        S3Op::GetObjectLegalHold => {
            object_lock::get_legal_hold(ctx, &caller, &name, &key, &request).await
        }
        S3Op::PutObjectLegalHold => {
            object_lock::put_legal_hold(ctx, &name, &key, request, payload).await
        }
        S3Op::GetBucketTagging => tagging::get_bucket_tagging(ctx, &name),
        S3Op::GetBucketLifecycleConfiguration => lifecycle::get_configuration(ctx, &name),
        S3Op::PutBucketLifecycleConfiguration
        | S3Op::DeleteBucketLifecycle
        | S3Op::PutBucketTagging
        | S3Op::DeleteBucketTagging
        | S3Op::PutBucketCors
        | S3Op::DeleteBucketCors
        | S3Op::PutBucketOwnershipControls
        | S3Op::DeleteBucketOwnershipControls
        | S3Op::PutBucketEncryption
        | S3Op::DeleteBucketEncryption
        | S3Op::PutBucketPolicy
        | S3Op::DeleteBucketPolicy => put_bucket_setting(ctx, op, &name, request, payload).await,
        S3Op::GetObjectTagging => {
            tagging::get_object_tagging(ctx, &caller, &name, &key, &request).await
        }
        S3Op::GetObjectAttributes => {
            attributes::get_object_attributes(ctx, &caller, &name, &key, &request).await
        }
        S3Op::PutObjectTagging | S3Op::DeleteObjectTagging => {
            let delete = op == S3Op::DeleteObjectTagging;
            tagging::put_object_tagging(ctx, &caller, &name, &key, request, payload, delete).await
        }
        S3Op::GetBucketCors => cors::get_bucket_cors(ctx, &name),
        S3Op::CorsPreflight => cors::preflight(ctx, &request),
        S3Op::PostObject => post::post_object(ctx, &name, request).await,
        S3Op::GetBucketPolicy => policy::get_bucket_policy(ctx, &name),
        S3Op::GetBucketPolicyStatus => policy::get_bucket_policy_status(ctx, &name),
        S3Op::GetBucketEncryption => encryption::get_bucket_encryption(ctx, &name),
        S3Op::GetBucketOwnershipControls => ownership::get_bucket_ownership_controls(ctx, &name),
        S3Op::GetBucketAcl => acl::get_bucket_acl(ctx, &name),
        S3Op::PutBucketAcl => acl::put_bucket_acl(ctx, &name, request, payload).await,
        S3Op::ListObjects => list::list_objects(ctx, &name, &request).await,
        S3Op::ListObjectsV2 => list::list_objects_v2(ctx, &name, &request).await,
        S3Op::ListObjectVersions => list_versions::list_object_versions(ctx, &name, &request).await,
        S3Op::ListMultipartUploads => multipart::list_uploads(ctx, &name, &request).await,
        S3Op::DeleteObjects => {
            delete_objects::delete_objects(ctx, &caller, &name, request, payload).await
        }
        S3Op::PutObject => put::put_object(ctx, &caller, &name, &key, request, payload).await,
        S3Op::CopyObject => {
            let source = copy_source();
            copy::copy_object(ctx, &caller, &name, &key, &request, &source).await
        }
        S3Op::GetObject => get::get_object(ctx, &caller, &name, &key, &request, false).await,
        S3Op::HeadObject => get::get_object(ctx, &caller, &name, &key, &request, true).await,
        S3Op::DeleteObject => get::delete_object(ctx, &caller, &name, &key, &request).await,
        S3Op::GetObjectAcl => acl::get_object_acl(ctx, &caller, &name, &key, &request).await,
        S3Op::PutObjectAcl => {
            acl::put_object_acl(ctx, &caller, &name, &key, request, payload).await
        }
        S3Op::CreateMultipartUpload => multipart::create(ctx, &caller, &name, &key, &request).await,
        S3Op::UploadPart => multipart::upload_part(ctx, &name, &key, request, payload).await,
        S3Op::UploadPartCopy => {
            let source = copy_source();
            multipart::upload_part_copy(ctx, &caller, &name, &key, &request, &source).await
        }
        S3Op::CompleteMultipartUpload => {
            multipart::complete(ctx, &name, &key, request, payload).await
        }
        S3Op::AbortMultipartUpload => multipart::abort(ctx, &name, &key, &request).await,
        S3Op::ListParts => multipart::list_parts(ctx, &name, &key, &request).await,
        S3Op::NotImplemented(what) => Err(S3Error::NotImplemented { what: what.what() }),
        S3Op::MethodNotAllowed => Err(S3Error::MethodNotAllowed),
    }
}

/// PUT or DELETE of one of a bucket's settings documents.
async fn put_bucket_setting(
    ctx: &Rc<S3Context>,
    op: S3Op,
    name: &str,
    request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    use handlers::{cors, encryption, lifecycle, ownership, policy, tagging};
    let delete = matches!(
        op,
        S3Op::DeleteBucketLifecycle
            | S3Op::DeleteBucketTagging
            | S3Op::DeleteBucketCors
            | S3Op::DeleteBucketOwnershipControls
            | S3Op::DeleteBucketEncryption
            | S3Op::DeleteBucketPolicy
    );
    match op {
        S3Op::PutBucketLifecycleConfiguration | S3Op::DeleteBucketLifecycle => {
            lifecycle::put_configuration(ctx, name, request, payload, delete).await
        }
        S3Op::PutBucketTagging | S3Op::DeleteBucketTagging => {
            tagging::put_bucket_tagging(ctx, name, request, payload, delete).await
        }
        S3Op::PutBucketCors | S3Op::DeleteBucketCors => {
            cors::put_bucket_cors(ctx, name, request, payload, delete).await
        }
        S3Op::PutBucketOwnershipControls | S3Op::DeleteBucketOwnershipControls => {
            ownership::put_bucket_ownership_controls(ctx, name, request, payload, delete).await
        }
        S3Op::PutBucketEncryption | S3Op::DeleteBucketEncryption => {
            encryption::put_bucket_encryption(ctx, name, request, payload, delete).await
        }
        S3Op::PutBucketPolicy | S3Op::DeleteBucketPolicy => {
            policy::put_bucket_policy(ctx, name, request, payload, delete).await
        }
        other => Err(S3Error::internal(format!(
            "{other:?} is not a bucket setting"
        ))),
    }
}

/// Refuses what would store bytes (before a body is read) in `key` when
/// the data directory of its shard is below the reserve; everything else,
/// deletes included, goes on.
fn refuse_if_disk_low(ctx: &S3Context, op: S3Op, bucket: &str, key: &str) -> Result<(), S3Error> {
    let stores_bytes = matches!(
        op,
        S3Op::PutObject
            | S3Op::PostObject
            | S3Op::UploadPart
            | S3Op::CopyObject
            | S3Op::UploadPartCopy
    );
    if !stores_bytes {
        return Ok(());
    }
    let disk = ctx.disks.of_shard(ctx.router.owner(bucket, key));
    if disk.is_low() {
        return Err(S3Error::InsufficientStorage {
            message: format!(
                "The node's disk is below its reserve ({} bytes free, {} reserved); delete objects to free space, then retry.",
                disk.free_bytes(),
                disk.reserve_bytes()
            ),
        });
    }
    Ok(())
}

pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Box::pin(Full::new(bytes.into()).map_err(|never: Infallible| match never {}))
}

pub fn empty_body() -> Body {
    Box::pin(Empty::new().map_err(|never: Infallible| match never {}))
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = status;
    response
}

pub fn xml_response(status: StatusCode, xml: String) -> Response<Body> {
    let mut response = Response::new(full_body(xml));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}
