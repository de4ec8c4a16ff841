//! Put/Get/DeleteBucketCors, and the preflight (`OPTIONS`) a browser sends
//! before a cross-origin request. The rules live in the bucket's record on
//! the metadata shard; every core reads them from its directory.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::PutBucketCors;

use super::put_bucket_setting;
use crate::limits::CORS_BODY_BYTES_MAX;
use crate::s3::auth::PayloadMode;
use crate::s3::cors::{self, CorsAsk};
use crate::s3::error::S3Error;
use crate::s3::request::{S3Request, Target};
use crate::s3::{empty_response, xml_response, Body, S3Context};

pub fn get_bucket_cors(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let configuration = ctx.read_existing_bucket(bucket, |record| {
        record
            .cors
            .as_ref()
            .filter(|c| !c.rules.is_empty())
            .map(cors::write_configuration)
    })?;
    let xml = configuration.ok_or_else(|| S3Error::NoSuchCorsConfiguration {
        bucket: bucket.to_string(),
    })?;
    Ok(xml_response(StatusCode::OK, xml))
}

/// PutBucketCors, and DeleteBucketCors (`delete`).
pub async fn put_bucket_cors(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (CORS_BODY_BYTES_MAX, true);
    let sent = (request, payload);
    put_bucket_setting(
        ctx,
        bucket,
        sent,
        delete,
        limits,
        cors::parse_configuration,
        |cors| {
            Ok(Op::PutBucketCors(PutBucketCors {
                bucket: bucket.to_string(),
                cors,
            }))
        },
    )
    .await
}

/// Answers a preflight from the bucket's rules. Not authenticated: a
/// browser sends it without credentials, and it reveals only what the
/// rules allow.
pub fn preflight(ctx: &S3Context, request: &S3Request) -> Result<Response<Body>, S3Error> {
    let bucket = match request.target() {
        Target::Bucket(bucket) | Target::Object(bucket, _) => bucket,
        Target::Service => return Err(S3Error::MethodNotAllowed),
    };
    let origin = request
        .header("origin")
        .ok_or_else(|| S3Error::BadRequest {
            message: "Insufficient information. Origin request header needed.".into(),
        })?;
    let method = request
        .header("access-control-request-method")
        .ok_or_else(|| S3Error::BadRequest {
            message: "Invalid Access-Control-Request-Method: none given.".into(),
        })?;
    let headers = cors::requested_headers(request.header("access-control-request-headers"));
    let ask = CorsAsk {
        origin,
        method,
        headers: &headers,
    };
    let mut response = empty_response(StatusCode::OK);
    let allowed = ctx.read_existing_bucket(bucket, |record| match &record.cors {
            Some(rules) if !rules.rules.is_empty() => match cors::find_rule(rules, &ask) {
                Some(rule) => cors::allow(response.headers_mut(), rule, &ask, true),
                None => Err(S3Error::CorsForbidden {
                    message: "This CORS request is not allowed: no rule of the bucket allows its origin, method and headers.",
                }),
            },
            _ => Err(S3Error::CorsForbidden {
                message: "CORS is not enabled for this bucket.",
            }),
        })?;
    allowed.map(|()| response)
}

/// What an actual (not preflight) request from a browser asked: its
/// `Origin` and method, kept before the request is handled.
pub struct CrossOrigin {
    origin: String,
    method: String,
}

impl CrossOrigin {
    /// `None` for a request without an `Origin` header (not from a page).
    /// The method matched is the request's own, or the one a client names
    /// in `Access-Control-Request-Method` (as Ceph answers it).
    pub fn of<B>(request: &http::Request<B>) -> Option<CrossOrigin> {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Some(CrossOrigin {
            origin: header(http::header::ORIGIN)?,
            method: header(http::header::ACCESS_CONTROL_REQUEST_METHOD)
                .unwrap_or_else(|| request.method().to_string()),
        })
    }

    /// Adds the headers a rule of the target's bucket allows to an answer,
    /// errors included (a page must be able to read why it failed).
    pub fn allow_response(&self, ctx: &S3Context, target: &Target, headers: &mut http::HeaderMap) {
        let (Target::Bucket(bucket) | Target::Object(bucket, _)) = target else {
            return;
        };
        let ask = CorsAsk {
            origin: &self.origin,
            method: &self.method,
            headers: &[],
        };
        let added = ctx.directory.read_bucket(bucket, |record| {
            let Some(rules) = record.cors.as_ref().filter(|c| !c.rules.is_empty()) else {
                return Ok(());
            };
            match cors::find_rule(rules, &ask) {
                Some(rule) => cors::allow(headers, rule, &ask, false),
                None => {
                    cors::vary(headers);
                    Ok(())
                }
            }
        });
        if let Some(Err(e)) = added {
            tracing::warn!(error = %e, bucket, "could not add CORS headers to a response");
        }
    }
}
