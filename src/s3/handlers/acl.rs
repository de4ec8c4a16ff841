//! GetBucketAcl and GetObjectAcl while a node has one user: the owner has
//! full control and nobody else has anything, which is what these answer.
//! Clients such as s3cmd read ACLs to describe an object. Writing ACLs
//! comes with users (issue 7) and is refused until then.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_shard::ops::ShardRequest;

use super::require_bucket;
use crate::s3::error::S3Error;
use crate::s3::xml::XmlWriter;
use crate::s3::{xml_response, Body, S3Context};

/// Owner id and display name while there is one user.
pub(super) const OWNER_ID: &str = "shoal";

/// `GET /bucket?acl` or, with a key, `GET /bucket/key?acl`.
pub async fn get_acl(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: Option<&str>,
) -> Result<Response<Body>, S3Error> {
    require_bucket(ctx, bucket)?;
    if let Some(key) = key {
        let owner = ctx.router.owner(bucket, key);
        ctx.router
            .call(owner, |reply| ShardRequest::GetObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                reply,
            })
            .await?
            .ok_or_else(|| S3Error::NoSuchKey {
                key: key.to_string(),
            })?;
    }
    let mut out = XmlWriter::new();
    out.open_root("AccessControlPolicy");
    write_owner(&mut out, "Owner");
    out.open("AccessControlList");
    out.open("Grant");
    out.open_with_attrs(
        "Grantee",
        &[
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xsi:type", "CanonicalUser"),
        ],
    );
    out.leaf("ID", OWNER_ID);
    out.leaf("DisplayName", OWNER_ID);
    out.close("Grantee");
    out.leaf("Permission", "FULL_CONTROL");
    out.close("Grant");
    out.close("AccessControlList");
    out.close("AccessControlPolicy");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// `<element><ID>…</ID><DisplayName>…</DisplayName></element>`.
pub(super) fn write_owner(out: &mut XmlWriter, element: &str) {
    out.open(element);
    out.leaf("ID", OWNER_ID);
    out.leaf("DisplayName", OWNER_ID);
    out.close(element);
}
