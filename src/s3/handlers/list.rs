//! ListObjectsV2, ListObjects (v1) and GetBucketLocation
//! (ListObjectVersions, the same merge over versions, is in
//! `list_versions.rs`).
//!
//! A bucket's keys are spread over every shard, so a listing is a k-way
//! merge: each round asks every shard for its next sorted page after the
//! cursor, emits only keys at or below the smallest last key of any shard
//! that may hold more (anything beyond might still be missing from the
//! others), and moves the cursor. With a delimiter, keys roll up into
//! common prefixes, and the cursor jumps past a whole prefix at once by
//! appending 0xFF (a byte that never occurs in UTF-8 keys).

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use http::{Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use shoal_shard::limits::LIST_KEYS_MAX;
use shoal_shard::ops::{ObjectSummary, ShardRequest};

use super::acl::write_owner;
use super::{etag, iso8601, require_bucket};
use crate::s3::access;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};

/// Characters `encoding-type=url` leaves as they are (as S3 does).
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

enum Entry {
    Object(ObjectSummary),
    Prefix(String),
}

struct Listing {
    entries: Vec<Entry>,
    truncated: bool,
    /// Where the next page starts (exclusive), when truncated.
    next_cursor: Option<Vec<u8>>,
}

/// GetBucketLocation: empty for us-east-1, as S3 answers.
pub fn get_bucket_location(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    let mut out = XmlWriter::new();
    out.open_root("LocationConstraint");
    if ctx.config.region != "us-east-1" {
        out.text(&ctx.config.region);
    }
    out.close("LocationConstraint");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// ListObjects (v1).
pub async fn list_objects(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    list_v1(ctx, bucket, request).await
}

/// ListObjectsV2 (`list-type=2`; any other list-type is refused).
pub async fn list_objects_v2(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    match request.query("list-type") {
        Some("2") => list_v2(ctx, bucket, request).await,
        other => Err(S3Error::InvalidArgument {
            message: format!("Invalid list-type {:?}", other.unwrap_or_default()),
        }),
    }
}

pub(super) struct Params {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    pub url_encode: bool,
}

pub(super) fn params(request: &S3Request) -> Result<Params, S3Error> {
    let max_keys = match request.query("max-keys") {
        None => LIST_KEYS_MAX,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| S3Error::InvalidArgument {
                message: format!("max-keys must be a non-negative integer, got {v:?}"),
            })?
            .min(LIST_KEYS_MAX as i64) as usize,
    };
    let url_encode = match request.query("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::InvalidArgument {
                message: format!("Invalid Encoding Method specified in Request: {other:?}"),
            })
        }
    };
    Ok(Params {
        prefix: request.query("prefix").unwrap_or("").to_string(),
        delimiter: request
            .query("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        max_keys,
        url_encode,
    })
}

async fn list_v2(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    let p = params(request)?;
    let token = request.query("continuation-token");
    let start_after = request.query("start-after");
    let cursor = match token {
        Some(token) => Some(
            BASE64URL
                .decode(token)
                .map_err(|_| S3Error::InvalidArgument {
                    message: "The continuation token provided is incorrect".into(),
                })?,
        ),
        None => start_after
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec()),
    };
    let listing = collect(ctx, bucket, &p, cursor).await?;
    let mut out = XmlWriter::new();
    out.open_root("ListBucketResult");
    out.leaf("Name", bucket);
    out.leaf("Prefix", &encode(&p.prefix, p.url_encode));
    if let Some(d) = &p.delimiter {
        out.leaf("Delimiter", &encode(d, p.url_encode));
    }
    out.leaf("MaxKeys", &p.max_keys.to_string());
    out.leaf("KeyCount", &listing.entries.len().to_string());
    out.leaf(
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if let Some(token) = token {
        out.leaf("ContinuationToken", token);
    }
    if let Some(start_after) = start_after {
        out.leaf("StartAfter", &encode(start_after, p.url_encode));
    }
    if let Some(next) = &listing.next_cursor {
        out.leaf("NextContinuationToken", &BASE64URL.encode(next));
    }
    if p.url_encode {
        out.leaf("EncodingType", "url");
    }
    // V2 names owners only when asked to (`fetch-owner=true`).
    let owners = (request.query("fetch-owner") == Some("true")).then(|| Owners::of(ctx, bucket));
    write_entries(&mut out, &listing.entries, p.url_encode, owners.as_ref());
    out.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

async fn list_v1(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    let p = params(request)?;
    let marker = request.query("marker").unwrap_or("");
    let listing = collect(ctx, bucket, &p, marker_cursor(marker, &p)).await?;
    let mut out = XmlWriter::new();
    out.open_root("ListBucketResult");
    out.leaf("Name", bucket);
    // v1's Prefix stays as sent even under encoding-type=url, as S3 answers
    // it (and clients decode only Marker, NextMarker and Delimiter).
    out.leaf("Prefix", &p.prefix);
    out.leaf("Marker", &encode(marker, p.url_encode));
    if let Some(d) = &p.delimiter {
        out.leaf("Delimiter", &encode(d, p.url_encode));
    }
    out.leaf("MaxKeys", &p.max_keys.to_string());
    out.leaf(
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if let Some(next) = next_marker(&listing) {
        out.leaf("NextMarker", &encode(next, p.url_encode));
    }
    if p.url_encode {
        out.leaf("EncodingType", "url");
    }
    let owners = Owners::of(ctx, bucket);
    write_entries(&mut out, &listing.entries, p.url_encode, Some(&owners));
    out.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// Where a v1-style marker starts a listing (exclusive).
pub(super) fn marker_cursor(marker: &str, p: &Params) -> Option<Vec<u8>> {
    (!marker.is_empty()).then(|| {
        let mut cursor = marker.as_bytes().to_vec();
        // A marker that is a common prefix (as NextMarker returns) skips
        // the whole prefix, not just the key equal to it.
        if let Some(d) = &p.delimiter {
            if marker.starts_with(&p.prefix) && marker[p.prefix.len()..].ends_with(d.as_str()) {
                cursor.push(0xFF);
            }
        }
        cursor
    })
}

/// The key a truncated v1 listing continues after.
fn next_marker(listing: &Listing) -> Option<&str> {
    if !listing.truncated {
        return None;
    }
    match listing.entries.last()? {
        Entry::Object(o) => Some(o.key.as_str()),
        Entry::Prefix(prefix) => Some(prefix.as_str()),
    }
}

/// What a listing needs to name each object's owner.
struct Owners<'a> {
    ctx: &'a S3Context,
    /// The owner of objects written before users existed.
    bucket_owner: String,
}

impl<'a> Owners<'a> {
    fn of(ctx: &'a S3Context, bucket: &str) -> Owners<'a> {
        let bucket_owner = ctx
            .directory
            .bucket(bucket)
            .map(|record| access::bucket_owner(ctx, &record))
            .unwrap_or_default();
        Owners { ctx, bucket_owner }
    }

    fn write(&self, out: &mut XmlWriter, object: &ObjectSummary) {
        let owner = match object.owner_id.is_empty() {
            true => &self.bucket_owner,
            false => &object.owner_id,
        };
        write_owner(self.ctx, out, "Owner", owner);
    }
}

fn write_entries(
    out: &mut XmlWriter,
    entries: &[Entry],
    url_encode: bool,
    owners: Option<&Owners>,
) {
    for entry in entries {
        if let Entry::Object(o) = entry {
            out.open("Contents");
            out.leaf("Key", &encode(&o.key, url_encode));
            out.leaf("LastModified", &iso8601(o.last_modified_unix_ms));
            out.leaf("ETag", &etag(&o.md5, o.part_count));
            out.leaf("Size", &o.size_bytes.to_string());
            if let Some(owners) = owners {
                owners.write(out, o);
            }
            out.leaf("StorageClass", "STANDARD");
            out.close("Contents");
        }
    }
    write_prefixes(out, entries, url_encode);
}

/// The `<CommonPrefixes>` of a listing, after its objects.
fn write_prefixes(out: &mut XmlWriter, entries: &[Entry], url_encode: bool) {
    for entry in entries {
        if let Entry::Prefix(prefix) = entry {
            out.open("CommonPrefixes");
            out.leaf("Prefix", &encode(prefix, url_encode));
            out.close("CommonPrefixes");
        }
    }
}

pub(super) fn encode(text: &str, url_encode: bool) -> String {
    if url_encode {
        utf8_percent_encode(text, URL_KEEP).to_string()
    } else {
        text.to_string()
    }
}

/// Merges the shards' sorted pages into one listing page.
async fn collect(
    ctx: &Rc<S3Context>,
    bucket: &str,
    p: &Params,
    mut cursor: Option<Vec<u8>>,
) -> Result<Listing, S3Error> {
    let mut entries: Vec<Entry> = Vec::new();
    if p.max_keys == 0 {
        return Ok(Listing {
            entries,
            truncated: false,
            next_cursor: None,
        });
    }
    loop {
        // One more than we can still emit, to learn whether more exist.
        let limit = p.max_keys - entries.len() + 1;
        let pages = ctx.router.shards().map(|shard| {
            ctx.router.call(shard, |reply| ShardRequest::ListObjects {
                bucket: bucket.to_string(),
                prefix: p.prefix.clone(),
                after: cursor.clone(),
                limit,
                reply,
            })
        });
        let pages = futures::future::try_join_all(pages).await?;
        // Keys past the smallest last key of a full page may still be
        // missing from that shard: stop there this round.
        let bound: Option<String> = pages
            .iter()
            .filter(|page| page.len() >= limit)
            .filter_map(|page| page.last().map(|o| o.key.clone()))
            .min();
        let more_rounds = bound.is_some();
        let mut merged: Vec<ObjectSummary> = pages.into_iter().flatten().collect();
        merged.sort_by(|a, b| a.key.cmp(&b.key));
        for object in merged {
            if bound.as_ref().is_some_and(|b| object.key > *b) {
                break;
            }
            if cursor
                .as_ref()
                .is_some_and(|c| object.key.as_bytes() <= c.as_slice())
            {
                continue; // inside a prefix the cursor already jumped past
            }
            if entries.len() == p.max_keys {
                let next_cursor = cursor.clone();
                return Ok(Listing {
                    entries,
                    truncated: true,
                    next_cursor,
                });
            }
            let rest = &object.key[p.prefix.len()..];
            match p
                .delimiter
                .as_deref()
                .and_then(|d| rest.find(d).map(|i| i + d.len()))
            {
                Some(end) => {
                    let common = object.key[..p.prefix.len() + end].to_string();
                    let mut next = common.as_bytes().to_vec();
                    next.push(0xFF);
                    cursor = Some(next);
                    entries.push(Entry::Prefix(common));
                }
                None => {
                    cursor = Some(object.key.as_bytes().to_vec());
                    entries.push(Entry::Object(object));
                }
            }
        }
        if !more_rounds {
            return Ok(Listing {
                entries,
                truncated: false,
                next_cursor: None,
            });
        }
    }
}
