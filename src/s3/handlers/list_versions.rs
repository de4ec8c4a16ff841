//! ListObjectVersions: every version of a bucket's keys, keys in order and
//! each key's versions newest first, delete markers included.
//!
//! The same k-way merge as the object listings (`list.rs`), over pages of
//! versions: a key's versions all live on its shard, so the shards' pages
//! merge by `(key, position)`, and a round emits only what sorts at or
//! before the smallest last entry of any full page.

use std::cmp::Ordering;
use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_shard::meta::{VersionCursor, VersionSummary};
use shoal_shard::ops::ShardRequest;
use shoal_shard::version_id::{stored_position, VersionStamp, NULL_VERSION_ID};

use super::acl::write_owner;
use super::list::{encode, marker_cursor, params, Params};
use super::{etag, fetch_version, iso8601, require_bucket};
use crate::s3::access;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};

enum Entry {
    Version(VersionSummary),
    Prefix(String),
}

struct Listing {
    entries: Vec<Entry>,
    truncated: bool,
}

pub async fn list_object_versions(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let p = params(request)?;
    let key_marker = request.query("key-marker").unwrap_or("");
    let version_marker = request.query("version-id-marker").filter(|v| !v.is_empty());
    let cursor = start_cursor(ctx, bucket, &p, key_marker, version_marker).await?;
    let listing = collect(ctx, bucket, &p, cursor).await?;
    let bucket_owner = ctx
        .directory
        .bucket(bucket)
        .map(|record| access::bucket_owner(ctx, &record))
        .unwrap_or_default();
    let mut out = XmlWriter::new();
    out.open_root("ListVersionsResult");
    out.leaf("Name", bucket);
    out.leaf("Prefix", &encode(&p.prefix, p.url_encode));
    out.leaf("KeyMarker", &encode(key_marker, p.url_encode));
    out.leaf("VersionIdMarker", version_marker.unwrap_or(""));
    if listing.truncated {
        match listing.entries.last() {
            Some(Entry::Version(v)) => {
                out.leaf("NextKeyMarker", &encode(&v.listed.key, p.url_encode));
                out.leaf("NextVersionIdMarker", shown_id(&v.listed.version_id));
            }
            Some(Entry::Prefix(prefix)) => {
                out.leaf("NextKeyMarker", &encode(prefix, p.url_encode));
            }
            None => {}
        }
    }
    if let Some(d) = &p.delimiter {
        out.leaf("Delimiter", &encode(d, p.url_encode));
    }
    out.leaf("MaxKeys", &p.max_keys.to_string());
    out.leaf(
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if p.url_encode {
        out.leaf("EncodingType", "url");
    }
    for entry in &listing.entries {
        if let Entry::Version(v) = entry {
            let o = &v.listed;
            out.open(if o.delete_marker {
                "DeleteMarker"
            } else {
                "Version"
            });
            out.leaf("Key", &encode(&o.key, p.url_encode));
            out.leaf("VersionId", shown_id(&o.version_id));
            out.leaf("IsLatest", if v.is_latest { "true" } else { "false" });
            out.leaf("LastModified", &iso8601(o.last_modified_unix_ms));
            if !o.delete_marker {
                out.leaf("ETag", &etag(&o.md5, o.part_count));
                out.leaf("Size", &o.size_bytes.to_string());
                out.leaf("StorageClass", "STANDARD");
            }
            let owner = if o.owner_id.is_empty() {
                &bucket_owner
            } else {
                &o.owner_id
            };
            write_owner(ctx, &mut out, "Owner", owner);
            out.close(if o.delete_marker {
                "DeleteMarker"
            } else {
                "Version"
            });
        }
    }
    for entry in &listing.entries {
        if let Entry::Prefix(prefix) = entry {
            out.open("CommonPrefixes");
            out.leaf("Prefix", &encode(prefix, p.url_encode));
            out.close("CommonPrefixes");
        }
    }
    out.close("ListVersionsResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// The id a listing shows for a stored one ("" is the null version).
fn shown_id(version_id: &str) -> &str {
    if version_id.is_empty() {
        NULL_VERSION_ID
    } else {
        version_id
    }
}

/// Where the listing starts: after every version of the key marker, or,
/// with a version-id marker, after that version of it.
async fn start_cursor(
    ctx: &S3Context,
    bucket: &str,
    p: &Params,
    key_marker: &str,
    version_marker: Option<&str>,
) -> Result<Option<VersionCursor>, S3Error> {
    let Some(version_id) = version_marker else {
        return Ok(marker_cursor(key_marker, p).map(|key| (key, None)));
    };
    if key_marker.is_empty() {
        return Err(S3Error::InvalidArgument {
            message: "A version-id marker cannot be specified without a key marker.".into(),
        });
    }
    let position = match VersionStamp::parse(version_id) {
        Some(stamp) => stamp.position(),
        None if version_id == NULL_VERSION_ID => {
            // The null version's place is in its record.
            match fetch_version(ctx, bucket, key_marker, Some(NULL_VERSION_ID)).await? {
                Some(null) => stored_position(&null.version_position),
                None => return Ok(Some((key_marker.as_bytes().to_vec(), None))),
            }
        }
        None => {
            return Err(S3Error::InvalidArgument {
                message: "Invalid version id specified".into(),
            })
        }
    };
    Ok(Some((key_marker.as_bytes().to_vec(), Some(position))))
}

/// Whether a version at `(key, position)` is at or before `cursor`: the
/// listing has passed it.
fn passed(key: &[u8], position: &[u8], cursor: &VersionCursor) -> bool {
    match key.cmp(&cursor.0) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => cursor.1.is_none_or(|at| position <= at.as_slice()),
    }
}

fn order(a: &VersionSummary, b: &VersionSummary) -> Ordering {
    (a.listed.key.as_bytes(), &a.position).cmp(&(b.listed.key.as_bytes(), &b.position))
}

/// Merges the shards' sorted pages of versions into one listing page.
async fn collect(
    ctx: &Rc<S3Context>,
    bucket: &str,
    p: &Params,
    mut cursor: Option<VersionCursor>,
) -> Result<Listing, S3Error> {
    let mut entries: Vec<Entry> = Vec::new();
    if p.max_keys == 0 {
        return Ok(Listing {
            entries,
            truncated: false,
        });
    }
    loop {
        // One more than we can still emit, to learn whether more exist.
        let limit = p.max_keys - entries.len() + 1;
        let pages = ctx.router.shards().map(|shard| {
            ctx.router.call(shard, |reply| ShardRequest::ListVersions {
                bucket: bucket.to_string(),
                prefix: p.prefix.clone(),
                after: cursor.clone(),
                limit,
                reply,
            })
        });
        let pages = futures::future::try_join_all(pages).await?;
        // Versions past the smallest last entry of a full page may still
        // be missing from that shard: stop there this round.
        let bound: Option<VersionSummary> = pages
            .iter()
            .filter(|page| page.len() >= limit)
            .filter_map(|page| page.last().cloned())
            .min_by(order);
        let more_rounds = bound.is_some();
        let mut merged: Vec<VersionSummary> = pages.into_iter().flatten().collect();
        merged.sort_by(order);
        for version in merged {
            if bound
                .as_ref()
                .is_some_and(|b| order(&version, b) == Ordering::Greater)
            {
                break;
            }
            let key = version.listed.key.as_bytes();
            if cursor
                .as_ref()
                .is_some_and(|c| passed(key, &version.position, c))
            {
                continue; // inside a prefix the cursor already jumped past
            }
            if entries.len() == p.max_keys {
                return Ok(Listing {
                    entries,
                    truncated: true,
                });
            }
            let rest = &version.listed.key[p.prefix.len()..];
            match p
                .delimiter
                .as_deref()
                .and_then(|d| rest.find(d).map(|i| i + d.len()))
            {
                Some(end) => {
                    let common = version.listed.key[..p.prefix.len() + end].to_string();
                    let mut next = common.as_bytes().to_vec();
                    next.push(0xFF);
                    cursor = Some((next, None));
                    entries.push(Entry::Prefix(common));
                }
                None => {
                    cursor = Some((key.to_vec(), Some(version.position)));
                    entries.push(Entry::Version(version));
                }
            }
        }
        if !more_rounds {
            return Ok(Listing {
                entries,
                truncated: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_passes_what_sorts_at_or_before_it() {
        let old = [0x20; 12];
        let new = [0x10; 12];
        let inside = (b"k".to_vec(), Some(new));
        assert!(passed(b"k", &new, &inside));
        assert!(!passed(b"k", &old, &inside));
        assert!(passed(b"j", &old, &inside));
        assert!(!passed(b"l", &new, &inside));
        // A key marker alone passes every version of the key.
        let whole = (b"k".to_vec(), None);
        assert!(passed(b"k", &old, &whole));
        assert!(!passed(b"k/", &new, &whole));
    }
}
