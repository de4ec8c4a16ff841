//! The admin endpoint: `/healthz`, `/metrics` (Prometheus text), the PUT
//! admission budgets (`GET`/`PUT /admin/budgets`), users and their keys
//! (`/admin/users`, `/admin/keys`, see [`users`]), buckets whoever owns
//! them (`/admin/buckets`, see [`buckets`]), cluster membership
//! (`/admin/cluster`, see [`cluster`]) and the scrub (`/admin/scrub`, see
//! [`scrub`]).
//!
//! Secrets travel only in request bodies and answers, never in a URL
//! (which proxies and shells log) or an error message.
//!
//! Served by the first core only, on its own address, so it never competes
//! with S3 listeners for a port and stays reachable when S3 is saturated.
//! With `--admin-token`, every `/admin/*` request must carry it as
//! `Authorization: Bearer <token>`; health and metrics stay open.

mod buckets;
mod cluster;
mod scrub;
mod users;

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use std::sync::atomic::{AtomicBool, Ordering};

use shoal_shard::admission::{NodeBudgets, SliceBudget};
use shoal_shard::shard::ShardStats;
use shoal_shard::usage::Freshness;

use crate::flags::parse_bytes;
use crate::limits::{ADMIN_BODY_BYTES_MAX, ADMIN_BODY_READ_TIMEOUT};
use crate::metrics::Registry;
use crate::node_metrics;
use crate::s3::{empty_response, full_body, Body, S3Context};
use crate::shutdown::Shutdown;

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
    /// Once a shutdown is asked for, `/healthz` says so.
    pub shutdown: Arc<Shutdown>,
}

pub async fn serve(
    admin: Rc<AdminContext>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let registry = &admin.registry;
    // Names in the path (buckets, users) arrive percent-encoded as any
    // client's URL library writes them (`shoal-ctl` encodes every byte but
    // letters, digits and `-._~`).
    let path = percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
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
        let method = req.method().clone();
        let answer = match read_body(req).await {
            Ok(body) => users::serve(&admin.ctx, &method, &path, &query, &body).await,
            Err(refused) => Err(refused),
        };
        return Ok(respond(answer));
    }
    if path == "/admin/scrub" {
        return Ok(respond(scrub::serve(registry, req.method())));
    }
    if path.starts_with("/admin/buckets") {
        let query = req.uri().query().unwrap_or("").to_string();
        return Ok(respond(
            buckets::serve(&admin.ctx, req.method(), &path, &query).await,
        ));
    }
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => health(registry, &admin.shutdown),
        (&Method::GET, "/metrics") => {
            let mut exposition = registry.render();
            // A shard that cannot answer leaves its buckets out this time.
            let buckets = buckets::usage(&admin.ctx, None, Freshness::Cached)
                .await
                .unwrap_or_default();
            let data_dirs = admin.ctx.config.data_dirs.clone();
            let gauges = glommio::executor()
                .spawn_blocking(move || node_metrics::gather(&data_dirs))
                .await;
            node_metrics::write(&mut exposition, &gauges, &buckets);
            registry.disks.write_metrics(&mut exposition);
            text(StatusCode::OK, "text/plain; version=0.0.4", exposition)
        }
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
/// shards and those whose group has no quorum, or saying the node is
/// stopping.
fn health(registry: &Registry, shutdown: &Shutdown) -> Response<Body> {
    if shutdown.is_requested() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "stopping\n".into(),
        );
    }
    let shards_where = |flag: fn(&ShardStats) -> &AtomicBool| {
        registry
            .shards
            .iter()
            .enumerate()
            .filter(|(_, stats)| flag(stats).load(Ordering::Relaxed))
            .map(|(shard, _)| shard.to_string())
            .collect::<Vec<_>>()
    };
    let failed = shards_where(|stats| &stats.failed);
    let no_quorum = shards_where(|stats| &stats.quorum_lost);
    let mut problems = String::new();
    if !failed.is_empty() {
        problems += &format!("failed shards: {}\n", failed.join(", "));
    }
    if !no_quorum.is_empty() {
        problems += &format!(
            "shards whose group cannot reach a quorum: {}\n",
            no_quorum.join(", ")
        );
    }
    // Below the reserve the node still serves reads and deletes (how an
    // operator frees space), so it stays healthy, and says why it refuses
    // writes.
    let disk_note: String = registry
        .disks
        .devices()
        .iter()
        .filter(|disk| disk.is_low())
        .map(|disk| {
            format!(
                "disk below reserve: {} bytes free, {} reserved on {}; PUTs there refused until deletes free space\n",
                disk.free_bytes(),
                disk.reserve_bytes(),
                disk.path().display()
            )
        })
        .collect();
    if problems.is_empty() {
        text(StatusCode::OK, "text/plain", format!("ok\n{disk_note}"))
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            problems + &disk_note,
        )
    }
}

/// Applies `put-budget-per-shard` (or its old name `put-budget-per-core`),
/// `put-budget` (node total) and
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
            "put-budget-per-shard" | "put-budget-per-core" => {
                slices = Some(SliceBudget::PerShard { bytes: capped })
            }
            "put-budget" => slices = Some(SliceBudget::NodeTotal { bytes: capped }),
            "put-budget-shared" => shared = Some(bytes),
            other => return Err(format!("unknown budget {other:?}")),
        }
    }
    if slices.is_none() && shared.is_none() {
        return Err("name put-budget-per-shard, put-budget or put-budget-shared".into());
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

/// What an admin request under `/admin/users` or `/admin/buckets` comes to:
/// a JSON answer, or a status and a message (sent as `{"error": …}`).
pub(crate) type Answer = Result<(StatusCode, Value), (StatusCode, String)>;

fn respond(answer: Answer) -> Response<Body> {
    match answer {
        Ok((status, body)) => text(status, "application/json", body.to_string() + "\n"),
        Err((status, message)) => text(
            status,
            "application/json",
            json!({ "error": message }).to_string() + "\n",
        ),
    }
}

/// The first value of query parameter `name`, percent-decoded (a `+`
/// stays a plus).
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode_str(key).decode_utf8_lossy() == name)
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

/// An admin request's body: JSON, at most [`ADMIN_BODY_BYTES_MAX`],
/// arriving within [`ADMIN_BODY_READ_TIMEOUT`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, (StatusCode, String)> {
    let limited = http_body_util::Limited::new(req.into_body(), ADMIN_BODY_BYTES_MAX);
    let read = async { Ok(limited.collect().await) };
    match glommio::timer::timeout(ADMIN_BODY_READ_TIMEOUT, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("admin request bodies are at most {ADMIN_BODY_BYTES_MAX} bytes"),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                ADMIN_BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
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
