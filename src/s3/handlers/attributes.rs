//! GetObjectAttributes: what a client asks of an object without its body
//! (`x-amz-object-attributes`: ETag, Checksum, ObjectParts, StorageClass,
//! ObjectSize), read from the manifest. An SSE-C object's attributes need
//! its key, as its body does.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::ObjectManifest;

use super::get::read_key;
use super::multipart::checksum_element;
use super::{header_value, http_date, load_requested, versioning};
use crate::s3::access::{Caller, Permission};
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};
use shoal_shard::limits::LIST_KEYS_MAX;

/// The attributes a request may name.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

pub async fn get_object_attributes(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    let wanted = requested_attributes(request)?;
    let pages = PartsPage::requested(request)?;
    let manifest = load_requested(ctx, caller, bucket, key, request, Permission::Read).await?;
    read_key(ctx, request, &manifest)?;
    let mut out = XmlWriter::new();
    out.open_root("GetObjectAttributesResponse");
    if wanted.contains(&"ETag") {
        let tag = super::etag(&manifest.md5, manifest.part_count);
        out.leaf("ETag", tag.trim_matches('"'));
    }
    if wanted.contains(&"Checksum") && !manifest.checksums.is_empty() {
        out.open("Checksum");
        for (name, value) in &manifest.checksums {
            out.leaf(&checksum_element(name), value);
        }
        let kind = match manifest.checksum_type.as_str() {
            "" => "FULL_OBJECT",
            kind => kind,
        };
        out.leaf("ChecksumType", kind);
        out.close("Checksum");
    }
    if wanted.contains(&"ObjectParts") && manifest.part_count > 0 {
        write_parts(&mut out, &manifest, &pages);
    }
    if wanted.contains(&"StorageClass") {
        out.leaf("StorageClass", "STANDARD");
    }
    if wanted.contains(&"ObjectSize") {
        out.leaf("ObjectSize", &manifest.size_bytes.to_string());
    }
    out.close("GetObjectAttributesResponse");
    let mut response = xml_response(StatusCode::OK, out.finish());
    let headers = response.headers_mut();
    headers.insert(
        http::header::LAST_MODIFIED,
        header_value(&http_date(manifest.last_modified_unix_ms))?,
    );
    let bucket_versioning = versioning::bucket_versioning(ctx, bucket);
    versioning::insert_version_id(
        headers,
        versioning::version_id_of(&manifest),
        bucket_versioning,
    )?;
    Ok(response)
}

/// `x-amz-object-attributes`: a comma-separated list of [`ATTRIBUTES`],
/// at least one.
fn requested_attributes(request: &S3Request) -> Result<Vec<&'static str>, S3Error> {
    let invalid = |message: String| S3Error::InvalidArgument { message };
    let text = request
        .header("x-amz-object-attributes")
        .ok_or_else(|| invalid("x-amz-object-attributes names no attribute".into()))?;
    let mut wanted = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known = ATTRIBUTES
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .ok_or_else(|| invalid(format!("Invalid attribute name specified: {name}")))?;
        wanted.push(*known);
    }
    match wanted.is_empty() {
        true => Err(invalid("x-amz-object-attributes names no attribute".into())),
        false => Ok(wanted),
    }
}

/// Which of a multipart object's parts a request lists: those numbered
/// after `marker`, at most `max` of them.
struct PartsPage {
    max: usize,
    marker: u32,
}

impl PartsPage {
    fn requested(request: &S3Request) -> Result<PartsPage, S3Error> {
        let number = |name: &str, default: u64| -> Result<u64, S3Error> {
            match request.header(name) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| S3Error::InvalidArgument {
                    message: format!("{name} {text:?} is not a non-negative integer"),
                }),
            }
        };
        let max = number("x-amz-max-parts", LIST_KEYS_MAX as u64)?;
        let marker = number("x-amz-part-number-marker", 0)?;
        Ok(PartsPage {
            max: (max as usize).min(LIST_KEYS_MAX),
            marker: u32::try_from(marker).unwrap_or(u32::MAX),
        })
    }
}

/// `<ObjectParts>`: the part count and one page of the parts, each with
/// its size and checksums.
fn write_parts(out: &mut XmlWriter, manifest: &ObjectManifest, page: &PartsPage) {
    out.open("ObjectParts");
    out.leaf("PartsCount", &manifest.part_count.to_string());
    out.leaf("PartNumberMarker", &page.marker.to_string());
    let after: Vec<_> = manifest
        .parts
        .iter()
        .filter(|part| part.number > page.marker)
        .collect();
    let shown = &after[..after.len().min(page.max)];
    if let Some(last) = shown.last() {
        out.leaf("NextPartNumberMarker", &last.number.to_string());
    }
    out.leaf("MaxParts", &page.max.to_string());
    let truncated = after.len() > shown.len();
    out.leaf("IsTruncated", if truncated { "true" } else { "false" });
    for part in shown {
        out.open("Part");
        out.leaf("PartNumber", &part.number.to_string());
        out.leaf("Size", &part.size_bytes.to_string());
        for (name, value) in &part.checksums {
            out.leaf(&checksum_element(name), value);
        }
        out.close("Part");
    }
    out.close("ObjectParts");
}
