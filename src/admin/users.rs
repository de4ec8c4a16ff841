//! Managing users and access keys over the admin endpoint. Each change is
//! one raft entry on the metadata shard; the node's directory (and so
//! every core's authentication) sees it when it is applied, before the
//! answer goes out.
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /admin/users` | list users and their keys (never secrets) |
//! | `POST /admin/users?name=N` | create a user with one key: the body's `{"access_key": A, "secret_key": S}`, or a generated one (empty body); the secret is in this answer only |
//! | `DELETE /admin/users/N[?reassign_to=M]` | delete a user and its keys; refused while it owns buckets, unless they go to user M first |
//! | `POST /admin/users/N/disable`, `/enable` | refuse or allow all its keys |
//! | `POST /admin/users/N/keys` | add a key (body as for creating a user) |
//! | `DELETE /admin/keys/A` | delete a key |
//! | `POST /admin/keys/A/disable`, `/enable` | refuse or allow one key |
//!
//! Answers are JSON; errors are `{"error": "…"}` with 400, 404 or 409.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{AccessKey, AddAccessKey, SetEnabled, User};
use shoal_shard::raft::ApplyOutcome;

use super::{param, Answer};
use crate::s3::access::bucket_owner;
use crate::s3::S3Context;
use crate::users::{self, change, new_key, new_user_id, now_unix_ms};

pub async fn serve(
    ctx: &S3Context,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    if param(query, "secret_key").is_some() || param(query, "access_key").is_some() {
        return Err(bad(
            "keys go in the request body as JSON ({\"access_key\": …, \"secret_key\": …}), never in the URL",
        ));
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["admin", "users"]) => Ok(list(ctx)),
        (&Method::POST, ["admin", "users"]) => match param(query, "name") {
            Some(name) => create(ctx, &name, body_keys(body)?).await,
            None => Err(bad("name the user: ?name=…")),
        },
        (&Method::DELETE, ["admin", "users", name]) => {
            delete(ctx, name, param(query, "reassign_to").as_deref()).await
        }
        (&Method::POST, ["admin", "users", name, verb @ ("enable" | "disable")]) => {
            let set = SetEnabled {
                name: name.to_string(),
                enabled: *verb == "enable",
            };
            apply(ctx, Op::SetUserEnabled(set), name).await
        }
        (&Method::POST, ["admin", "users", name, "keys"]) => {
            add_key(ctx, name, body_keys(body)?).await
        }
        (&Method::DELETE, ["admin", "keys", access_key]) => {
            let change = Op::DeleteAccessKey(access_key.to_string());
            apply(ctx, change, access_key).await
        }
        (&Method::POST, ["admin", "keys", access_key, verb @ ("enable" | "disable")]) => {
            let set = SetEnabled {
                name: access_key.to_string(),
                enabled: *verb == "enable",
            };
            apply(ctx, Op::SetKeyEnabled(set), access_key).await
        }
        _ => Err((StatusCode::NOT_FOUND, "no such admin resource".to_string())),
    }
}

fn bad(message: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.to_string())
}

/// A key pair a request's body gives: `{"access_key": …, "secret_key": …}`,
/// or nothing (an empty body) for a generated one.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GivenKeys {
    access_key: Option<String>,
    secret_key: Option<String>,
}

fn body_keys(body: &[u8]) -> Result<GivenKeys, (StatusCode, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(GivenKeys::default());
    }
    // serde's message may quote the body, secret included: not shown.
    serde_json::from_slice(body).map_err(|_| {
        bad("the body must be JSON: {\"access_key\": …, \"secret_key\": …}, both or neither")
    })
}

/// A user as the admin endpoint shows it: no secrets.
fn user_json(user: &User) -> Value {
    json!({
        "name": user.name,
        "id": user.id,
        "disabled": user.disabled,
        "created_unix_ms": user.created_unix_ms,
        "keys": user.keys.iter().map(|k| json!({
            "access_key": k.access_key,
            "disabled": k.disabled,
            "created_unix_ms": k.created_unix_ms,
        })).collect::<Vec<_>>(),
    })
}

fn list(ctx: &S3Context) -> (StatusCode, Value) {
    let users: Vec<Value> = ctx.directory.users().iter().map(user_json).collect();
    (StatusCode::OK, json!({ "users": users }))
}

/// The given key pair (both or neither), else a new one.
fn key_pair(given: GivenKeys) -> Result<AccessKey, (StatusCode, String)> {
    match (given.access_key, given.secret_key) {
        (None, None) => Ok(new_key()),
        (Some(access_key), Some(secret_key)) => {
            users::validate_key(&access_key, &secret_key).map_err(bad)?;
            Ok(AccessKey {
                access_key,
                secret_key,
                disabled: false,
                created_unix_ms: now_unix_ms(),
            })
        }
        _ => Err(bad("give both access_key and secret_key, or neither")),
    }
}

async fn create(ctx: &S3Context, name: &str, given: GivenKeys) -> Answer {
    users::validate_name(name).map_err(bad)?;
    let key = key_pair(given)?;
    let user = User {
        name: name.to_string(),
        id: new_user_id(),
        keys: vec![key.clone()],
        disabled: false,
        created_unix_ms: now_unix_ms(),
    };
    let id = user.id.clone();
    outcome(change(&ctx.router, Op::CreateUser(user)).await, name)?;
    tracing::info!(user = name, access_key = %key.access_key, "user created");
    Ok((
        StatusCode::CREATED,
        json!({
            "name": name,
            "id": id,
            "access_key": key.access_key,
            "secret_key": key.secret_key,
        }),
    ))
}

async fn add_key(ctx: &S3Context, name: &str, given: GivenKeys) -> Answer {
    let key = key_pair(given)?;
    let add = AddAccessKey {
        user: name.to_string(),
        key: Some(key.clone()),
    };
    outcome(change(&ctx.router, Op::AddAccessKey(add)).await, name)?;
    tracing::info!(user = name, access_key = %key.access_key, "access key added");
    Ok((
        StatusCode::CREATED,
        json!({ "name": name, "access_key": key.access_key, "secret_key": key.secret_key }),
    ))
}

/// Deletes a user; its buckets first go to `reassign_to` when given.
async fn delete(ctx: &S3Context, name: &str, reassign_to: Option<&str>) -> Answer {
    let user = ctx
        .directory
        .user(name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no user {name:?}")))?;
    let owned: Vec<String> = ctx
        .directory
        .buckets()
        .iter()
        .filter(|record| bucket_owner(ctx, record) == user.id)
        .map(|record| record.name.clone())
        .collect();
    match reassign_to {
        Some(heir) if heir == name => {
            return Err(bad("--reassign-to names the user being deleted"))
        }
        Some(heir) => {
            for bucket in &owned {
                super::buckets::chown(ctx, bucket, heir).await?;
            }
        }
        None if !owned.is_empty() => {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "user {name:?} owns buckets {}; delete them or give them to another user (--reassign-to USER)",
                    owned.join(", ")
                ),
            ))
        }
        None => {}
    }
    outcome(
        change(&ctx.router, Op::DeleteUserWithoutBuckets(name.to_string())).await,
        name,
    )?;
    tracing::info!(
        user = name,
        reassigned_buckets = owned.len(),
        "user deleted"
    );
    Ok((
        StatusCode::OK,
        json!({ "deleted": name, "buckets_reassigned": if reassign_to.is_some() { owned } else { Vec::new() } }),
    ))
}

/// Applies a change that answers with the user's (or key's) new state.
async fn apply(ctx: &S3Context, meta_change: Op, subject: &str) -> Answer {
    let deleting = matches!(meta_change, Op::DeleteAccessKey(_));
    let by_key = matches!(meta_change, Op::SetKeyEnabled(_) | Op::DeleteAccessKey(_));
    outcome(change(&ctx.router, meta_change).await, subject)?;
    tracing::info!(subject, "user or key changed");
    if deleting {
        return Ok((StatusCode::OK, json!({ "deleted": subject })));
    }
    let name = if by_key {
        ctx.directory
            .key_owner(subject)
            .map(|o| o.user_name)
            .unwrap_or_default()
    } else {
        subject.to_string()
    };
    match ctx.directory.user(&name) {
        Some(user) => Ok((StatusCode::OK, user_json(&user))),
        None => Err((StatusCode::NOT_FOUND, format!("{subject:?} is gone"))),
    }
}

fn outcome(
    result: Result<ApplyOutcome, String>,
    subject: &str,
) -> Result<(), (StatusCode, String)> {
    match result.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))? {
        ApplyOutcome::Applied => Ok(()),
        ApplyOutcome::UserExists => Err((StatusCode::CONFLICT, format!("user {subject:?} exists"))),
        ApplyOutcome::AccessKeyExists => Err((
            StatusCode::CONFLICT,
            "that access key is already in use".to_string(),
        )),
        ApplyOutcome::NoSuchUser => Err((StatusCode::NOT_FOUND, format!("no user {subject:?}"))),
        ApplyOutcome::NoSuchAccessKey => {
            Err((StatusCode::NOT_FOUND, format!("no access key {subject:?}")))
        }
        ApplyOutcome::UserOwnsBuckets => Err((
            StatusCode::CONFLICT,
            format!("user {subject:?} owns buckets; give them to another user first"),
        )),
        other => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("applied as {other:?}"),
        )),
    }
}
