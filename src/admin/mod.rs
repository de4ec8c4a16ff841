//! The admin endpoint: `/healthz`, `/metrics` (Prometheus text), the PUT
//! admission budgets (`GET`/`PUT /admin/budgets`), users and their keys
//! (`/admin/users`, `/admin/keys`, see [`users`]) and cluster membership
//! (`/admin/cluster`, see [`cluster`]).
//!
//! Served by the first core only, on its own address, so it never competes
//! with S3 listeners for a port and stays reachable when S3 is saturated.
//! With `--admin-token`, every `/admin/*` request must carry it as
//! `Authorization: Bearer <token>`; health and metrics stay open.

mod cluster;
mod users;

use std::convert::Infallible;
use std::rc::Rc;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use shoal_shard::admission::{NodeBudgets, SliceBudget};

use crate::flags::parse_bytes;
use crate::metrics::Registry;
use crate::s3::{empty_response, full_body, Body, S3Context};

/// Whether the request carries the configured admin token (or none is
/// configured). Compared in constant time.
fn token_matches(ctx: &S3Context, req: &Request<Incoming>) -> bool {
    let Some(token) = &ctx.config.admin_token else {
        return true;
    };
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// What the admin endpoint serves from.
pub struct AdminContext {
    pub registry: Rc<Registry>,
    /// Core 0's S3 context: its router reaches the metadata shard, its
    /// directory holds the users.
    pub ctx: Rc<S3Context>,
}

pub async fn serve(
    admin: Rc<AdminContext>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let registry = &admin.registry;
    let path = req.uri().path().to_string();
    if path.starts_with("/admin/") && !token_matches(&admin.ctx, &req) {
        return Ok(text(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            "this endpoint needs the admin token: Authorization: Bearer <token>\n".into(),
        ));
    }
    if path.starts_with("/admin/cluster") {
        let query = req.uri().query().unwrap_or("").to_string();
        return Ok(cluster::serve(&admin.ctx, req.method(), &path, &query).await);
    }
    if path.starts_with("/admin/users") || path.starts_with("/admin/keys") {
        let query = req.uri().query().unwrap_or("").to_string();
        return Ok(users::serve(&admin.ctx, req.method(), &path, &query).await);
    }
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => health(registry),
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            registry.render(),
        ),
        (&Method::GET, "/admin/budgets") => budgets_json(&registry.budgets),
        (&Method::PUT, "/admin/budgets") => {
            match retune(&registry.budgets, req.uri().query().unwrap_or("")) {
                Ok(()) => budgets_json(&registry.budgets),
                Err(message) => text(StatusCode::BAD_REQUEST, "text/plain", message + "\n"),
            }
        }
        (&Method::GET, _) => empty_response(StatusCode::NOT_FOUND),
        _ => empty_response(StatusCode::METHOD_NOT_ALLOWED),
    };
    Ok(response)
}

/// 200 `ok` while every shard can take writes; else 503 naming the failed
/// shards.
fn health(registry: &Registry) -> Response<Body> {
    let failed: Vec<String> = registry
        .shards
        .iter()
        .enumerate()
        .filter(|(_, stats)| stats.failed.load(std::sync::atomic::Ordering::Relaxed))
        .map(|(shard, _)| shard.to_string())
        .collect();
    if failed.is_empty() {
        text(StatusCode::OK, "text/plain", "ok\n".into())
    } else {
        let body = format!("failed shards: {}\n", failed.join(", "));
        text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body)
    }
}

/// Applies `put-budget-per-core`, `put-budget` (node total) and
/// `put-budget-shared` from the query, all sizes like the flags take.
fn retune(budgets: &NodeBudgets, query: &str) -> Result<(), String> {
    let mut slices = None;
    let mut shared = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} needs a value"))?;
        let bytes = parse_bytes(value)?;
        // 0 means unlimited, as for the flags.
        let capped = if bytes == 0 { u64::MAX } else { bytes };
        match name {
            "put-budget-per-core" => slices = Some(SliceBudget::PerShard { bytes: capped }),
            "put-budget" => slices = Some(SliceBudget::NodeTotal { bytes: capped }),
            "put-budget-shared" => shared = Some(bytes),
            other => return Err(format!("unknown budget {other:?}")),
        }
    }
    if slices.is_none() && shared.is_none() {
        return Err("name put-budget-per-core, put-budget or put-budget-shared".into());
    }
    tracing::info!(?slices, ?shared, "admission budgets retuned");
    budgets.retune(slices, shared);
    Ok(())
}

fn budgets_json(budgets: &NodeBudgets) -> Response<Body> {
    let shards: Vec<String> = budgets
        .shards()
        .iter()
        .map(|b| {
            let s = b.snapshot();
            format!(
                "{{\"shard\":{},\"capacity_bytes\":{},\"inflight_bytes\":{},\"borrowed_bytes\":{}}}",
                s.shard, s.capacity_bytes, s.inflight_bytes, s.borrowed_bytes
            )
        })
        .collect();
    let shared = budgets.shared();
    let json = format!(
        "{{\"shared\":{{\"capacity_bytes\":{},\"inflight_bytes\":{}}},\"shards\":[{}]}}\n",
        shared.capacity_bytes(),
        shared.inflight_bytes(),
        shards.join(",")
    );
    text(StatusCode::OK, "application/json", json)
}

pub(crate) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}
