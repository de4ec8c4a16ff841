//! Buckets over the admin endpoint: what an operator needs when a user
//! leaves or a bucket must go, whoever owns it.
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /admin/buckets` | every bucket: owner, creation time, objects and bytes |
//! | `GET /admin/buckets/B` | one bucket, the same fields |
//! | `POST /admin/buckets/B/owner?user=U` | give bucket B to user U |
//! | `DELETE /admin/buckets/B` | delete an empty bucket |
//! | `DELETE /admin/buckets/B?force=true` | abort its multipart uploads, delete its objects, then the bucket |
//!
//! Objects and bytes come from a scan of every shard's manifests made
//! for the request (see `shoal_shard::usage`). A forced delete deletes
//! one object at a time through each shard's raft group (all shards at
//! once); it answers when the bucket is gone, or with what stopped it.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;

use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    BucketRecord, DeleteObject, MultipartUpload, SetBucketOwner, UploadRef, Versioning,
};
use shoal_shard::error::ShardError;
use shoal_shard::limits::LIST_KEYS_MAX;
use shoal_shard::meta::BucketUsage;
use shoal_shard::meta::VersionSummary;
use shoal_shard::ops::ShardRequest;
use shoal_shard::raft::ApplyOutcome;
use shoal_shard::usage::Freshness;
use shoal_shard::version_id::NULL_VERSION_ID;

use super::{param, Answer};
use crate::route::METADATA_SHARD;
use crate::s3::access::{bucket_owner, display_name};
use crate::s3::S3Context;
use crate::users::change;
use shoal_shard::ids::ShardIndex;

pub async fn serve(ctx: &S3Context, method: &Method, path: &str, query: &str) -> Answer {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["admin", "buckets"]) => list(ctx).await,
        (&Method::GET, ["admin", "buckets", name]) => info(ctx, name).await,
        (&Method::POST, ["admin", "buckets", name, "owner"]) => match param(query, "user") {
            Some(user) => chown(ctx, name, &user).await,
            None => Err((
                StatusCode::BAD_REQUEST,
                "name the new owner: ?user=…".into(),
            )),
        },
        (&Method::DELETE, ["admin", "buckets", name]) => {
            let force = param(query, "force").is_some_and(|v| v == "true");
            delete(ctx, name, force).await
        }
        _ => Err((StatusCode::NOT_FOUND, "no such admin resource".into())),
    }
}

/// Every bucket's usage, summed over the shards.
/// With `bucket`, of that one only (and counted now, whatever
/// `freshness` says).
pub async fn usage(
    ctx: &S3Context,
    bucket: Option<&str>,
    freshness: Freshness,
) -> Result<BTreeMap<String, BucketUsage>, String> {
    let asks = ctx.router.shards().map(|shard| {
        ctx.router.call(shard, |reply| ShardRequest::BucketUsage {
            bucket: bucket.map(str::to_string),
            freshness,
            reply,
        })
    });
    let mut total: BTreeMap<String, BucketUsage> = BTreeMap::new();
    for answer in futures::future::join_all(asks).await {
        for (bucket, usage) in answer.map_err(|e| e.to_string())?.iter() {
            let sum = total.entry(bucket.clone()).or_default();
            sum.objects += usage.objects;
            sum.bytes += usage.bytes;
        }
    }
    Ok(total)
}

fn bucket_json(ctx: &S3Context, record: &BucketRecord, usage: BucketUsage) -> Value {
    let owner_id = bucket_owner(ctx, record);
    json!({
        "name": record.name,
        "owner": display_name(ctx, &owner_id),
        "owner_id": owner_id,
        "created_unix_ms": record.created_unix_ms,
        "objects": usage.objects,
        "bytes": usage.bytes,
    })
}

fn internal(e: impl ToString) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn no_such_bucket(name: &str) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("no bucket {name:?}"))
}

async fn list(ctx: &S3Context) -> Answer {
    let usage = usage(ctx, None, Freshness::Current)
        .await
        .map_err(internal)?;
    let buckets: Vec<Value> = ctx
        .directory
        .buckets()
        .iter()
        .map(|record| {
            let used = usage.get(&record.name).copied().unwrap_or_default();
            bucket_json(ctx, record, used)
        })
        .collect();
    Ok((StatusCode::OK, json!({ "buckets": buckets })))
}

async fn info(ctx: &S3Context, name: &str) -> Answer {
    let record = ctx
        .directory
        .bucket(name)
        .ok_or_else(|| no_such_bucket(name))?;
    let usage = usage(ctx, Some(name), Freshness::Current)
        .await
        .map_err(internal)?;
    let used = usage.get(name).copied().unwrap_or_default();
    Ok((StatusCode::OK, bucket_json(ctx, &record, used)))
}

/// Gives bucket `name` to user `user`.
pub async fn chown(ctx: &S3Context, name: &str, user: &str) -> Answer {
    let record = ctx
        .directory
        .bucket(name)
        .ok_or_else(|| no_such_bucket(name))?;
    let owner = ctx
        .directory
        .user(user)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no user {user:?}")))?;
    let set = SetBucketOwner {
        bucket: name.to_string(),
        owner_id: owner.id.clone(),
    };
    match change(&ctx.router, Op::SetBucketOwner(set))
        .await
        .map_err(internal)?
    {
        ApplyOutcome::Applied => {}
        ApplyOutcome::NoSuchBucket => return Err(no_such_bucket(name)),
        ApplyOutcome::NoSuchUser => {
            return Err((StatusCode::NOT_FOUND, format!("no user {user:?}")))
        }
        other => return Err(internal(format!("applied as {other:?}"))),
    }
    tracing::info!(bucket = name, from = %display_name(ctx, &bucket_owner(ctx, &record)), to = user, "bucket given to another user");
    Ok((
        StatusCode::OK,
        json!({ "name": name, "owner": user, "owner_id": owner.id }),
    ))
}

async fn delete(ctx: &S3Context, name: &str, force: bool) -> Answer {
    if ctx.directory.bucket(name).is_none() {
        return Err(no_such_bucket(name));
    }
    let mut removed = (0, 0);
    if force {
        let emptied = ctx
            .router
            .shards()
            .map(|shard| empty_shard(ctx, shard, name));
        for result in futures::future::join_all(emptied).await {
            let (objects, uploads) = result?;
            removed.0 += objects;
            removed.1 += uploads;
        }
    }
    if ctx
        .router
        .bucket_has_objects(name)
        .await
        .map_err(internal)?
    {
        let hint = if force {
            "objects were written while it was emptied; run it again"
        } else {
            "it holds objects; --force deletes them too"
        };
        return Err((
            StatusCode::CONFLICT,
            format!("bucket {name:?} is not empty: {hint}"),
        ));
    }
    let outcome = ctx
        .router
        .propose(METADATA_SHARD, Op::DeleteBucket(name.to_string()))
        .await
        .map_err(internal)?;
    match outcome {
        ApplyOutcome::Applied => {}
        ApplyOutcome::NoSuchBucket => return Err(no_such_bucket(name)),
        other => return Err(internal(format!("applied as {other:?}"))),
    }
    tracing::info!(
        bucket = name,
        objects_deleted = removed.0,
        uploads_aborted = removed.1,
        "bucket deleted by the operator"
    );
    Ok((
        StatusCode::OK,
        json!({ "deleted": name, "objects_deleted": removed.0, "uploads_aborted": removed.1 }),
    ))
}

/// Aborts every multipart upload of the bucket on `shard`, then deletes
/// every object there; returns how many of each. Each pass walks the keys
/// once, so writes that keep coming cannot keep it going: what they leave
/// behind is found by the emptiness check that follows.
async fn empty_shard(
    ctx: &S3Context,
    shard: ShardIndex,
    bucket: &str,
) -> Result<(u64, u64), (StatusCode, String)> {
    let router = &ctx.router;
    let list_uploads = |after: Option<&MultipartUpload>| {
        let after = after.map(|u| (u.key.clone(), Some(u.upload_id.clone())));
        router.call(shard, |reply| ShardRequest::ListUploads {
            bucket: bucket.to_string(),
            prefix: String::new(),
            after,
            limit: LIST_KEYS_MAX,
            reply,
        })
    };
    let abort = |upload: MultipartUpload| async move {
        let upload = UploadRef {
            bucket: upload.bucket,
            key: upload.key,
            upload_id: upload.upload_id,
        };
        let outcome = router
            .propose(shard, Op::AbortUpload(upload))
            .await
            .map_err(internal)?;
        match outcome {
            ApplyOutcome::Applied | ApplyOutcome::NoSuchUpload => Ok(()),
            other => Err(internal(format!("abort applied as {other:?}"))),
        }
    };
    let uploads = walk(list_uploads, abort).await?;
    // Every version goes, noncurrent ones and delete markers included:
    // each is deleted by its id, so versioning cannot keep any.
    let list_versions = |after: Option<&VersionSummary>| {
        let after = after.map(|v| (v.listed.key.as_bytes().to_vec(), Some(v.position)));
        router.call(shard, |reply| ShardRequest::ListVersions {
            bucket: bucket.to_string(),
            prefix: String::new(),
            after,
            limit: LIST_KEYS_MAX,
            reply,
        })
    };
    let delete = |version: VersionSummary| async move {
        let version_id = match version.listed.version_id.as_str() {
            "" => NULL_VERSION_ID.to_string(),
            id => id.to_string(),
        };
        router
            .propose(
                shard,
                Op::DeleteObject(DeleteObject {
                    bucket: bucket.to_string(),
                    key: version.listed.key,
                    versioning: Versioning::Unversioned.into(),
                    version_id: Some(version_id),
                    // The operator may bypass governance; compliance
                    // retention and legal holds still keep their versions,
                    // and then the bucket is not empty.
                    bypass_governance: true,
                    condition: None,
                }),
            )
            .await
            .map(|_| ())
            .map_err(internal)
    };
    let objects = walk(list_versions, delete).await?;
    Ok((objects, uploads))
}

/// Lists page after page (each after the last item of the one before)
/// and handles every item, until a page comes back short; returns how
/// many items were handled.
async fn walk<T: Clone, List, Listed, Handle, Handled>(
    list: List,
    handle: Handle,
) -> Result<u64, (StatusCode, String)>
where
    List: Fn(Option<&T>) -> Listed,
    Listed: Future<Output = Result<Vec<T>, ShardError>>,
    Handle: Fn(T) -> Handled,
    Handled: Future<Output = Result<(), (StatusCode, String)>>,
{
    let mut handled = 0;
    let mut last: Option<T> = None;
    loop {
        let page = list(last.as_ref()).await.map_err(internal)?;
        let full = page.len() >= LIST_KEYS_MAX;
        last = page.last().cloned();
        for item in page {
            handle(item).await?;
            handled += 1;
        }
        if !full {
            return Ok(handled);
        }
    }
}
