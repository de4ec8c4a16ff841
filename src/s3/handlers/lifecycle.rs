//! Put/Get/DeleteBucketLifecycleConfiguration: the rules live in the
//! bucket's record on the metadata shard; the lifecycle worker
//! (`crate::lifecycle`) reads them from the directory and each object's
//! group applies what they make due.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{LifecycleConfiguration, LifecycleRule, PutBucketLifecycle};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{iso8601, put_bucket_setting};
use crate::limits::{LIFECYCLE_BODY_BYTES_MAX, LIFECYCLE_RULES_MAX, OBJECT_TAGS_MAX};
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{xml_response, Body, S3Context};

pub fn get_configuration(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let record = ctx.bucket_record(bucket)?;
    let Some(lifecycle) = record.lifecycle.filter(|l| !l.rules.is_empty()) else {
        return Err(S3Error::NoSuchLifecycleConfiguration {
            bucket: bucket.to_string(),
        });
    };
    let mut out = XmlWriter::new();
    out.open_root("LifecycleConfiguration");
    for rule in &lifecycle.rules {
        write_rule(&mut out, rule);
    }
    out.close("LifecycleConfiguration");
    Ok(xml_response(StatusCode::OK, out.finish()))
}

/// PutBucketLifecycleConfiguration, and DeleteBucketLifecycle (`delete`).
pub async fn put_configuration(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (LIFECYCLE_BODY_BYTES_MAX, true);
    let sent = (request, payload);
    put_bucket_setting(
        ctx,
        bucket,
        sent,
        delete,
        limits,
        parse_configuration,
        |lifecycle| {
            Ok(Op::PutBucketLifecycle(PutBucketLifecycle {
                bucket: bucket.to_string(),
                lifecycle,
            }))
        },
    )
    .await
}

/// One `<Rule>` as read, before it is checked.
#[derive(Default)]
struct ParsedRule {
    rule: LifecycleRule,
    status: Option<String>,
    /// `(key, value)` of each filter tag, in order (a key twice is an error).
    tags: Vec<(Option<String>, String)>,
    expiration_days: Option<String>,
    expiration_date: Option<String>,
    marker: Option<String>,
    noncurrent_days: Option<String>,
    newer_noncurrent: Option<String>,
    abort_days: Option<String>,
    size_greater_than: Option<String>,
    size_less_than: Option<String>,
    /// A transition: storage classes Shoal does not have.
    transition: bool,
}

fn parse_configuration(body: &[u8]) -> Result<LifecycleConfiguration, S3Error> {
    const ROOT: &[u8] = b"LifecycleConfiguration";
    let mut rules: Vec<ParsedRule> = Vec::new();
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &[ROOT, b"Rule"]) => {
                rules.push(ParsedRule::default())
            }
            XmlEvent::Open(path) if path.len() >= 3 => {
                let rule = rules.last_mut().ok_or(xml::MalformedXml)?;
                match path[2].as_slice() {
                    b"Transition" | b"NoncurrentVersionTransition" => rule.transition = true,
                    b"Filter" if path.ends_with(&[b"Tag".to_vec()]) => {
                        rule.tags.push((None, String::new()))
                    }
                    _ => {}
                }
            }
            XmlEvent::Text(path, text) if path.len() >= 3 => {
                let rule = rules.last_mut().ok_or(xml::MalformedXml)?;
                read_rule_text(rule, &path[2..], text.trim().to_string())?;
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if rules.is_empty() || rules.len() > LIFECYCLE_RULES_MAX {
        return Err(S3Error::MalformedXml);
    }
    let rules = rules
        .into_iter()
        .map(checked_rule)
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<&str> = rules
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort_unstable();
    if ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(S3Error::InvalidArgument {
            message: "Rule IDs must be unique".into(),
        });
    }
    Ok(LifecycleConfiguration { rules })
}

/// Takes the text of one element inside a `<Rule>` (`path` from the
/// element under `<Rule>` down).
fn read_rule_text(
    rule: &mut ParsedRule,
    path: &[Vec<u8>],
    text: String,
) -> Result<(), xml::MalformedXml> {
    let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
    // A filter's conditions sit in <Filter> or in <Filter><And>.
    let filter = match names.as_slice() {
        [b"Filter", rest @ ..] => match rest {
            [b"And", inner @ ..] => Some(inner),
            inner => Some(inner),
        },
        _ => None,
    };
    if let Some(inner) = filter {
        match inner {
            [b"Prefix"] => rule.rule.prefix = text,
            [b"Tag", b"Key"] => rule.tags.last_mut().ok_or(xml::MalformedXml)?.0 = Some(text),
            [b"Tag", b"Value"] => rule.tags.last_mut().ok_or(xml::MalformedXml)?.1 = text,
            [b"ObjectSizeGreaterThan"] => rule.size_greater_than = Some(text),
            [b"ObjectSizeLessThan"] => rule.size_less_than = Some(text),
            _ => {}
        }
        return Ok(());
    }
    match names.as_slice() {
        [b"ID"] => rule.rule.id = text,
        [b"Status"] => rule.status = Some(text),
        // The rule's prefix from before filters existed.
        [b"Prefix"] => rule.rule.prefix = text,
        [b"Expiration", b"Days"] => rule.expiration_days = Some(text),
        [b"Expiration", b"Date"] => rule.expiration_date = Some(text),
        [b"Expiration", b"ExpiredObjectDeleteMarker"] => rule.marker = Some(text),
        [b"NoncurrentVersionExpiration", b"NoncurrentDays"] => rule.noncurrent_days = Some(text),
        [b"NoncurrentVersionExpiration", b"NewerNoncurrentVersions"] => {
            rule.newer_noncurrent = Some(text)
        }
        [b"AbortIncompleteMultipartUpload", b"DaysAfterInitiation"] => rule.abort_days = Some(text),
        _ => {}
    }
    Ok(())
}

/// Checks one rule as S3 does: a status, at least one action, positive
/// periods, and no action its filter cannot serve.
fn checked_rule(parsed: ParsedRule) -> Result<LifecycleRule, S3Error> {
    let invalid = |message: &str| S3Error::InvalidArgument {
        message: message.to_string(),
    };
    if parsed.transition {
        return Err(S3Error::NotImplemented {
            what: "A lifecycle transition (to a storage class other than STANDARD)",
        });
    }
    let mut rule = parsed.rule;
    if rule.id.chars().count() > 255 {
        return Err(invalid("A rule ID is at most 255 characters long"));
    }
    rule.enabled = match parsed.status.as_deref() {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(S3Error::MalformedXml),
    };
    let positive =
        |text: &Option<String>| -> Result<u64, S3Error> {
            match text {
                None => Ok(0),
                Some(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid("Lifecycle periods and sizes must be positive integers")
                }),
            }
        };
    let days = |text: &Option<String>| -> Result<u32, S3Error> {
        u32::try_from(positive(text)?).map_err(|_| invalid("Too many days"))
    };
    rule.expiration_days = days(&parsed.expiration_days)?;
    rule.noncurrent_days = days(&parsed.noncurrent_days)?;
    rule.abort_incomplete_days = days(&parsed.abort_days)?;
    rule.newer_noncurrent_versions = days(&parsed.newer_noncurrent)?;
    rule.size_greater_than = positive(&parsed.size_greater_than)?;
    rule.size_less_than = positive(&parsed.size_less_than)?;
    if let Some(date) = &parsed.expiration_date {
        let at = OffsetDateTime::parse(date, &Rfc3339)
            .map_err(|_| invalid("The expiration date is not an ISO 8601 date"))?;
        if at.to_offset(time::UtcOffset::UTC).time() != time::Time::MIDNIGHT {
            return Err(invalid("The expiration date must be a midnight, UTC"));
        }
        rule.expiration_date_unix_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| invalid("The expiration date lies before 1970"))?;
    }
    rule.expired_object_delete_marker = match parsed.marker.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(S3Error::MalformedXml),
    };
    if parsed.tags.len() > OBJECT_TAGS_MAX {
        return Err(invalid("A rule's filter names at most 10 tags"));
    }
    for (key, value) in parsed.tags {
        let key = key.ok_or(S3Error::MalformedXml)?;
        if rule.tags.insert(key, value).is_some() {
            return Err(invalid("A rule's filter names each tag key once"));
        }
    }
    let expiration_kinds = [
        rule.expiration_days > 0,
        rule.expiration_date_unix_ms > 0,
        rule.expired_object_delete_marker,
    ];
    if expiration_kinds.iter().filter(|set| **set).count() > 1 {
        return Err(S3Error::MalformedXml);
    }
    let filtered_by_object =
        !rule.tags.is_empty() || rule.size_greater_than > 0 || rule.size_less_than > 0;
    if filtered_by_object && rule.expired_object_delete_marker {
        return Err(invalid(
            "ExpiredObjectDeleteMarker cannot be used with a tag or size filter",
        ));
    }
    if filtered_by_object && rule.abort_incomplete_days > 0 {
        return Err(invalid(
            "AbortIncompleteMultipartUpload cannot be used with a tag or size filter",
        ));
    }
    if rule.newer_noncurrent_versions > 0 && rule.noncurrent_days == 0 {
        return Err(S3Error::MalformedXml);
    }
    let acts = expiration_kinds.contains(&true)
        || rule.noncurrent_days > 0
        || rule.abort_incomplete_days > 0;
    if !acts {
        return Err(invalid("A lifecycle rule must specify at least one action"));
    }
    Ok(rule)
}

fn write_rule(out: &mut XmlWriter, rule: &LifecycleRule) {
    out.open("Rule");
    if !rule.id.is_empty() {
        out.leaf("ID", &rule.id);
    }
    out.open("Filter");
    let conditions = usize::from(!rule.prefix.is_empty())
        + rule.tags.len()
        + usize::from(rule.size_greater_than > 0)
        + usize::from(rule.size_less_than > 0);
    if conditions > 1 {
        out.open("And");
    }
    if !rule.prefix.is_empty() || conditions == 0 {
        out.leaf("Prefix", &rule.prefix);
    }
    for (key, value) in &rule.tags {
        out.open("Tag");
        out.leaf("Key", key);
        out.leaf("Value", value);
        out.close("Tag");
    }
    if rule.size_greater_than > 0 {
        out.leaf("ObjectSizeGreaterThan", &rule.size_greater_than.to_string());
    }
    if rule.size_less_than > 0 {
        out.leaf("ObjectSizeLessThan", &rule.size_less_than.to_string());
    }
    if conditions > 1 {
        out.close("And");
    }
    out.close("Filter");
    out.leaf("Status", if rule.enabled { "Enabled" } else { "Disabled" });
    if rule.expiration_days > 0
        || rule.expiration_date_unix_ms > 0
        || rule.expired_object_delete_marker
    {
        out.open("Expiration");
        if rule.expiration_days > 0 {
            out.leaf("Days", &rule.expiration_days.to_string());
        }
        if rule.expiration_date_unix_ms > 0 {
            out.leaf("Date", &iso8601(rule.expiration_date_unix_ms));
        }
        if rule.expired_object_delete_marker {
            out.leaf("ExpiredObjectDeleteMarker", "true");
        }
        out.close("Expiration");
    }
    if rule.noncurrent_days > 0 {
        out.open("NoncurrentVersionExpiration");
        out.leaf("NoncurrentDays", &rule.noncurrent_days.to_string());
        if rule.newer_noncurrent_versions > 0 {
            out.leaf(
                "NewerNoncurrentVersions",
                &rule.newer_noncurrent_versions.to_string(),
            );
        }
        out.close("NoncurrentVersionExpiration");
    }
    if rule.abort_incomplete_days > 0 {
        out.open("AbortIncompleteMultipartUpload");
        out.leaf(
            "DaysAfterInitiation",
            &rule.abort_incomplete_days.to_string(),
        );
        out.close("AbortIncompleteMultipartUpload");
    }
    out.close("Rule");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rules: &str) -> Result<LifecycleConfiguration, S3Error> {
        parse_configuration(
            format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>").as_bytes(),
        )
    }

    #[test]
    fn rules_parse_with_every_filter_and_action() {
        let config = parse(
            "<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>t</Key><Value>v</Value></Tag>\
             <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>\
             <Expiration><Days>30</Days></Expiration>\
             <NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
             <Rule><ID>uploads</ID><Prefix>tmp/</Prefix><Status>Disabled</Status>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
             <Rule><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>",
        )
        .unwrap();
        let [logs, uploads, markers] = &config.rules[..] else {
            panic!("three rules");
        };
        assert!(
            logs.enabled
                && logs.prefix == "logs/"
                && logs.tags.get("t").map(String::as_str) == Some("v")
        );
        assert_eq!((logs.size_greater_than, logs.expiration_days), (10, 30));
        assert_eq!(
            (logs.noncurrent_days, logs.newer_noncurrent_versions),
            (7, 2)
        );
        assert!(!uploads.enabled && uploads.prefix == "tmp/" && uploads.abort_incomplete_days == 1);
        assert!(markers.expired_object_delete_marker);
        // What is written reads back the same.
        let mut out = XmlWriter::new();
        out.open_root("LifecycleConfiguration");
        for rule in &config.rules {
            write_rule(&mut out, rule);
        }
        out.close("LifecycleConfiguration");
        assert_eq!(
            parse_configuration(out.finish().as_bytes()).unwrap(),
            config
        );
    }

    #[test]
    fn what_s3_refuses_is_refused() {
        let bad = [
            "<Rule><Status>Enabled</Status></Rule>",
            "<Rule><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>",
            "<Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>",
            "<Rule><Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>",
            "<Rule><Status>Enabled</Status><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration></Rule>",
            "<Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>\
             <Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>",
            "<Rule><Filter><Tag><Key>t</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
        ];
        for rules in bad {
            assert!(parse(rules).is_err(), "{rules}");
        }
        assert!(parse("").is_err());
        assert!(matches!(
            parse("<Rule><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"),
            Err(S3Error::NotImplemented { .. })
        ));
    }
}
