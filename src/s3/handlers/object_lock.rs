//! Object Lock: Put/GetObjectLockConfiguration on buckets, Put/Get
//! ObjectRetention and ObjectLegalHold on versions, the
//! `x-amz-object-lock-*` headers of writes and reads, and who may bypass
//! governance retention.
//!
//! Whether a version may go is decided where its entry applies, with the
//! entry's proposal time as "now" (`shoal_shard::object_lock`); this side
//! parses, validates and carries the request there.

use std::rc::Rc;

use http::{HeaderMap, Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    BucketRecord, DefaultRetention, LockMode, ObjectManifest, PutBucketObjectLock,
    PutObjectLegalHold, PutObjectRetention,
};
use shoal_shard::raft::ApplyOutcome;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::receive::receive_small_body;
use super::versioning::requested_version;
use super::{
    commit_bucket_setting, existing_version, header_value, iso8601, load_requested, now_unix_ms,
    require_integrity, version_change_result,
};
use crate::limits::OBJECT_LOCK_BODY_BYTES_MAX;
use crate::s3::access::{self, Caller, Permission};
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{empty_response, xml_response, Body, S3Context};

/// What a write asks of Object Lock for the version it makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LockSettings {
    pub mode: LockMode,
    pub retain_until_unix_ms: u64,
    pub legal_hold: bool,
}

impl LockSettings {
    fn asks_anything(&self) -> bool {
        self.mode != LockMode::None || self.legal_hold
    }

    /// Writes these settings into the version's manifest.
    pub fn apply_to(&self, manifest: &mut ObjectManifest) {
        manifest.set_retention_mode(self.mode);
        manifest.retain_until_unix_ms = self.retain_until_unix_ms;
        manifest.legal_hold = self.legal_hold;
    }
}

/// The bucket's default retention, for a write's command.
pub(super) fn default_retention(ctx: &S3Context, bucket: &str) -> Option<DefaultRetention> {
    ctx.directory
        .read_bucket(bucket, |record| {
            record
                .default_retention
                .filter(|_| record.object_lock_enabled)
        })
        .flatten()
}

/// The `x-amz-object-lock-*` headers of a PUT, copy or
/// CreateMultipartUpload, checked: mode and date come together, the date
/// lies ahead, and the bucket has Object Lock. A write that asks for any
/// of it must carry `Content-MD5` or an `x-amz-checksum-*` (`checked`).
pub(super) fn requested_lock(
    ctx: &S3Context,
    bucket: &str,
    request: &S3Request,
    needs_checksum: bool,
) -> Result<LockSettings, S3Error> {
    let mode = request.header("x-amz-object-lock-mode");
    let until = request.header("x-amz-object-lock-retain-until-date");
    let hold = request.header("x-amz-object-lock-legal-hold");
    let mut settings = LockSettings::default();
    match (mode, until) {
        (None, None) => {}
        (Some(mode), Some(until)) => {
            settings.mode = parse_mode(mode)?;
            settings.retain_until_unix_ms = future_date(until)?;
        }
        _ => {
            return Err(S3Error::InvalidArgument {
                message: "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must be given together".into(),
            })
        }
    }
    settings.legal_hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => {
            return Err(S3Error::InvalidArgument {
                message: "x-amz-object-lock-legal-hold must be ON or OFF".into(),
            })
        }
    };
    if settings.asks_anything() {
        require_lock_enabled(ctx, bucket)?;
        if needs_checksum {
            require_integrity(request)?;
        }
    }
    Ok(settings)
}

fn require_lock_enabled(ctx: &S3Context, bucket: &str) -> Result<BucketRecord, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    if record.object_lock_enabled {
        Ok(record)
    } else {
        Err(S3Error::InvalidRequest {
            message: "Bucket is missing Object Lock Configuration".into(),
        })
    }
}

/// Whether this request may bypass governance-mode retention: it asks to
/// (`x-amz-bypass-governance-retention: true`) and the caller owns the
/// bucket (or is the node's administrator).
pub(super) fn bypass_governance(
    ctx: &S3Context,
    caller: &Caller,
    bucket: &str,
    request: &S3Request,
) -> bool {
    let asked = request
        .header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    asked
        && (caller.is_admin()
            || ctx.directory.bucket(bucket).is_some_and(|record| {
                caller.user_id() == Some(access::bucket_owner(ctx, &record).as_str())
            }))
}

/// The Object Lock headers GET and HEAD return for a version that has any.
pub(super) fn insert_lock_headers(
    headers: &mut HeaderMap,
    manifest: &ObjectManifest,
) -> Result<(), S3Error> {
    if let Some(mode) = mode_name(manifest.retention_mode()) {
        headers.insert("x-amz-object-lock-mode", header_value(mode)?);
        headers.insert(
            "x-amz-object-lock-retain-until-date",
            header_value(&iso8601(manifest.retain_until_unix_ms))?,
        );
    }
    if manifest.legal_hold {
        headers.insert("x-amz-object-lock-legal-hold", header_value("ON")?);
    }
    Ok(())
}

/// The error for a write or delete that Object Lock refused.
pub(super) fn locked_error() -> S3Error {
    S3Error::AccessDenied {
        message: "Access Denied because object protected by object lock.".into(),
    }
}

pub fn get_configuration(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    if !record.object_lock_enabled {
        return Err(S3Error::ObjectLockConfigurationNotFound {
            bucket: bucket.to_string(),
        });
    }
    let mut out = XmlWriter::new();
    out.open_root("ObjectLockConfiguration");
    out.leaf("ObjectLockEnabled", "Enabled");
    if let Some(rule) = &record.default_retention {
        out.open("Rule");
        out.open("DefaultRetention");
        out.leaf("Mode", mode_name(rule.mode()).unwrap_or_default());
        if rule.years > 0 {
            out.leaf("Years", &rule.years.to_string());
        } else {
            out.leaf("Days", &rule.days.to_string());
        }
        out.close("DefaultRetention");
        out.close("Rule");
    }
    out.close("ObjectLockConfiguration");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

pub async fn put_configuration(
    ctx: &Rc<S3Context>,
    bucket: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    ctx.bucket_record(bucket)?;
    require_integrity(&request)?;
    let body =
        receive_small_body(ctx, &mut request, payload, OBJECT_LOCK_BODY_BYTES_MAX, true).await?;
    let default_retention = parse_configuration(&body)?;
    let put = PutBucketObjectLock {
        bucket: bucket.to_string(),
        default_retention,
    };
    let op = Op::PutBucketObjectLock(put);
    commit_bucket_setting(ctx, bucket, op, StatusCode::OK, |other| match other {
        ApplyOutcome::InvalidBucketState => S3Error::InvalidBucketState {
            message:
                "Versioning must be Enabled on the bucket before Object Lock can be configured"
                    .into(),
        },
        other => S3Error::internal(format!("put object lock applied as {other:?}")),
    })
    .await
}

/// The default retention an `ObjectLockConfiguration` sets (`None`: no
/// rule). `ObjectLockEnabled` must say `Enabled`; a rule names a mode and
/// exactly one positive period.
fn parse_configuration(body: &[u8]) -> Result<Option<DefaultRetention>, S3Error> {
    const ROOT: &[u8] = b"ObjectLockConfiguration";
    const RETENTION: [&[u8]; 3] = [ROOT, b"Rule", b"DefaultRetention"];
    let (mut enabled, mut rule) = (None, false);
    let (mut mode, mut days, mut years) = (None, None, None);
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &RETENTION[..2]) => rule = true,
            XmlEvent::Text(path, text) if xml::path_is(path, &[ROOT, b"ObjectLockEnabled"]) => {
                enabled = Some(text.trim().to_string())
            }
            XmlEvent::Text(path, text)
                if path.len() == 4 && xml::path_is(&path[..3], &RETENTION) =>
            {
                let text = text.trim().to_string();
                match path[3].as_slice() {
                    b"Mode" => mode = Some(text),
                    b"Days" => days = Some(text),
                    b"Years" => years = Some(text),
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if enabled.as_deref() != Some("Enabled") {
        return Err(S3Error::MalformedXml);
    }
    if !rule {
        return Ok(None);
    }
    let mode = parse_mode(mode.as_deref().ok_or(S3Error::MalformedXml)?)?;
    let period = |text: Option<String>| -> Result<u32, S3Error> {
        match text {
            None => Ok(0),
            Some(text) => text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                S3Error::InvalidArgument {
                    message: "Default retention period must be a positive integer value".into(),
                }
            }),
        }
    };
    let (days, years) = (period(days)?, period(years)?);
    if (days > 0) == (years > 0) {
        return Err(S3Error::MalformedXml);
    }
    Ok(Some(DefaultRetention {
        mode: mode.into(),
        days,
        years,
    }))
}

pub async fn get_retention(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_lock_enabled(ctx, bucket)?;
    let manifest = load_requested(ctx, caller, bucket, key, request, Permission::Read).await?;
    let Some(mode) = mode_name(manifest.retention_mode()) else {
        return Err(S3Error::NoSuchObjectLockConfiguration);
    };
    let mut out = XmlWriter::new();
    out.open_root("Retention");
    out.leaf("Mode", mode);
    out.leaf("RetainUntilDate", &iso8601(manifest.retain_until_unix_ms));
    out.close("Retention");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

pub async fn put_retention(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_lock_enabled(ctx, bucket)?;
    require_integrity(&request)?;
    let version_id = requested_version(&request)?;
    let body =
        receive_small_body(ctx, &mut request, payload, OBJECT_LOCK_BODY_BYTES_MAX, true).await?;
    let (mode, until) = parse_retention(&body)?;
    let bypass = bypass_governance(ctx, caller, bucket, &request);
    // Turning active governance retention into compliance takes the
    // bypass too, as S3 asks. Checked here rather than where the change
    // applies: entries already in raft logs must apply as they did.
    if mode == LockMode::Compliance && !bypass {
        let current = existing_version(ctx, caller, bucket, key, version_id.as_deref()).await?;
        let governed = current.retention_mode() == LockMode::Governance
            && current.retain_until_unix_ms > now_unix_ms();
        if governed {
            return Err(locked_error());
        }
    }
    let put = PutObjectRetention {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version_id.clone(),
        mode: mode.into(),
        retain_until_unix_ms: until,
        bypass_governance: bypass,
    };
    let owner = ctx.router.owner(bucket, key);
    let outcome = ctx
        .router
        .propose(owner, Op::PutObjectRetention(put))
        .await?;
    version_change_result(outcome, key, version_id, "object lock change")?;
    Ok(empty_response(StatusCode::OK))
}

/// `<Retention>` with a mode and a date ahead, or empty (no retention).
fn parse_retention(body: &[u8]) -> Result<(LockMode, u64), S3Error> {
    const ROOT: &[u8] = b"Retention";
    let (mut mode, mut until) = (None, None);
    xml::walk(body, ROOT, |event| {
        if let XmlEvent::Text(path, text) = event {
            if xml::path_is(path, &[ROOT, b"Mode"]) {
                mode = Some(text.trim().to_string());
            } else if xml::path_is(path, &[ROOT, b"RetainUntilDate"]) {
                until = Some(text.trim().to_string());
            }
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    match (mode, until) {
        (None, None) => Ok((LockMode::None, 0)),
        (Some(mode), Some(until)) => Ok((parse_mode(&mode)?, future_date(&until)?)),
        _ => Err(S3Error::MalformedXml),
    }
}

pub async fn get_legal_hold(
    ctx: &Rc<S3Context>,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: &S3Request,
) -> Result<Response<Body>, S3Error> {
    require_lock_enabled(ctx, bucket)?;
    let manifest = load_requested(ctx, caller, bucket, key, request, Permission::Read).await?;
    let mut out = XmlWriter::new();
    out.open_root("LegalHold");
    out.leaf("Status", if manifest.legal_hold { "ON" } else { "OFF" });
    out.close("LegalHold");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

pub async fn put_legal_hold(
    ctx: &Rc<S3Context>,
    bucket: &str,
    key: &str,
    mut request: S3Request,
    payload: PayloadMode,
) -> Result<Response<Body>, S3Error> {
    require_lock_enabled(ctx, bucket)?;
    require_integrity(&request)?;
    let version_id = requested_version(&request)?;
    let body =
        receive_small_body(ctx, &mut request, payload, OBJECT_LOCK_BODY_BYTES_MAX, true).await?;
    const ROOT: &[u8] = b"LegalHold";
    let mut status = None;
    xml::walk(&body, ROOT, |event| {
        if let XmlEvent::Text(path, text) = event {
            if xml::path_is(path, &[ROOT, b"Status"]) {
                status = Some(text.trim().to_string());
            }
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    let on = match status.as_deref() {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(S3Error::MalformedXml),
    };
    let put = PutObjectLegalHold {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version_id.clone(),
        on,
    };
    let owner = ctx.router.owner(bucket, key);
    let outcome = ctx
        .router
        .propose(owner, Op::PutObjectLegalHold(put))
        .await?;
    version_change_result(outcome, key, version_id, "object lock change")?;
    Ok(empty_response(StatusCode::OK))
}

fn parse_mode(text: &str) -> Result<LockMode, S3Error> {
    match text {
        "GOVERNANCE" => Ok(LockMode::Governance),
        "COMPLIANCE" => Ok(LockMode::Compliance),
        _ => Err(S3Error::InvalidArgument {
            message: format!("Unknown Object Lock mode {text:?}: GOVERNANCE or COMPLIANCE"),
        }),
    }
}

fn mode_name(mode: LockMode) -> Option<&'static str> {
    match mode {
        LockMode::None => None,
        LockMode::Governance => Some("GOVERNANCE"),
        LockMode::Compliance => Some("COMPLIANCE"),
    }
}

/// An ISO 8601 date that lies ahead (Unix ms).
fn future_date(text: &str) -> Result<u64, S3Error> {
    let invalid = || S3Error::InvalidArgument {
        message: format!("The retain until date {text:?} is not an ISO 8601 date"),
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    let unix_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())?;
    if unix_ms <= now_unix_ms() {
        return Err(S3Error::InvalidArgument {
            message: "The retain until date must be in the future".into(),
        });
    }
    Ok(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_as_s3_reads_them() {
        let doc = |inner: &str| {
            format!("<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>{inner}</ObjectLockConfiguration>")
        };
        let parse = |inner: &str| parse_configuration(doc(inner).as_bytes());
        assert_eq!(parse("").unwrap(), None);
        let rule = parse("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule>")
            .unwrap()
            .unwrap();
        assert_eq!(
            (rule.mode(), rule.days, rule.years),
            (LockMode::Governance, 3, 0)
        );
        let rule = parse("<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>1</Years></DefaultRetention></Rule>")
            .unwrap()
            .unwrap();
        assert_eq!((rule.mode(), rule.years), (LockMode::Compliance, 1));
        for bad in [
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode></DefaultRetention></Rule>",
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule>",
            "<Rule><DefaultRetention><Days>1</Days></DefaultRetention></Rule>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule>").is_err());
        assert!(parse_configuration(b"<ObjectLockConfiguration/>").is_err());
    }

    #[test]
    fn retention_documents_need_both_parts_and_a_future_date() {
        assert_eq!(
            parse_retention(b"<Retention/>").unwrap(),
            (LockMode::None, 0)
        );
        let (mode, until) = parse_retention(
            b"<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2999-01-01T00:00:00Z</RetainUntilDate></Retention>",
        )
        .unwrap();
        assert_eq!(mode, LockMode::Compliance);
        assert_eq!(until, 32_472_144_000_000);
        assert!(parse_retention(b"<Retention><Mode>COMPLIANCE</Mode></Retention>").is_err());
        assert!(parse_retention(
            b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2001-01-01T00:00:00Z</RetainUntilDate></Retention>"
        )
        .is_err());
    }
}
