//! Conditional GET and HEAD: `If-Match`, `If-None-Match`,
//! `If-Modified-Since`, `If-Unmodified-Since`, evaluated as RFC 9110 orders
//! them (and S3 follows): a true `If-Match` overrides a false
//! `If-Unmodified-Since`, and a false `If-None-Match` (the ETag matches)
//! decides `304` whatever `If-Modified-Since` says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shoal_proto::meta::DeleteCondition;

use super::error::S3Error;

/// What the preconditions decide.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412 PreconditionFailed.
    Failed,
}

/// The request's precondition headers, as text.
#[derive(Default)]
pub struct Preconditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

impl Preconditions<'_> {
    /// Judges the object whose quoted ETag is `etag` and which was last
    /// modified at `last_modified_unix_ms`.
    pub fn evaluate(&self, etag: &str, last_modified_unix_ms: u64) -> Verdict {
        // HTTP dates have whole seconds; compare at that resolution.
        let modified = UNIX_EPOCH + Duration::from_secs(last_modified_unix_ms / 1000);
        match self.if_match {
            Some(list) if !etag_listed(list, etag) => return Verdict::Failed,
            Some(_) => {}
            None => {
                if let Some(since) = self.if_unmodified_since.and_then(parse_date) {
                    if modified > since {
                        return Verdict::Failed;
                    }
                }
            }
        }
        match self.if_none_match {
            Some(list) if etag_listed(list, etag) => return Verdict::NotModified,
            Some(_) => {}
            None => {
                if let Some(since) = self.if_modified_since.and_then(parse_date) {
                    if modified <= since {
                        return Verdict::NotModified;
                    }
                }
            }
        }
        Verdict::Proceed
    }
}

/// Whether a comma-separated ETag list (or `*`) names `etag`. Weak
/// validators (`W/"…"`) compare by their opaque part, quotes optional.
fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |tag: &str| {
        tag.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let wanted = bare(etag);
    list.split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == wanted)
}

/// `"<hex md5>"` or `"<hex md5>-<parts>"`, quotes optional.
pub fn parse_etag(text: &str) -> Option<(Vec<u8>, u32)> {
    let text = text.trim().trim_matches('"');
    let (hex_md5, parts) = match text.split_once('-') {
        Some((hex_md5, parts)) => (hex_md5, parts.parse().ok().filter(|&n| n > 0)?),
        None => (text, 0),
    };
    let md5 = hex::decode(hex_md5).ok().filter(|md5| md5.len() == 16)?;
    Some((md5, parts))
}

/// The condition of a conditional DELETE (of an object, or of one entry
/// of DeleteObjects): `If-Match` (an ETag or `*`), the last-modified time
/// and the size the version must have. `None` when nothing is asked.
pub fn delete_condition(
    if_match: Option<&str>,
    last_modified: Option<&str>,
    size: Option<&str>,
) -> Result<Option<DeleteCondition>, S3Error> {
    if if_match.is_none() && last_modified.is_none() && size.is_none() {
        return Ok(None);
    }
    let mut condition = DeleteCondition::default();
    if let Some(value) = if_match {
        condition.if_match = true;
        match value.trim() {
            "*" => condition.match_any = true,
            etag => {
                // Unparsable: no MD5, which matches nothing.
                let (md5, part_count) = parse_etag(etag).unwrap_or_default();
                condition.match_md5 = md5;
                condition.match_part_count = part_count;
            }
        }
    }
    if let Some(text) = last_modified {
        let at =
            parse_date(text)
                .or_else(|| iso8601(text))
                .ok_or_else(|| S3Error::InvalidArgument {
                    message: format!("The last-modified time {text:?} is not a date"),
                })?;
        let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        condition.last_modified_unix_s = Some(seconds);
    }
    if let Some(text) = size {
        let size = text.trim().parse().map_err(|_| S3Error::InvalidArgument {
            message: format!("The size {text:?} is not a number of bytes"),
        })?;
        condition.size_bytes = Some(size);
    }
    Ok(Some(condition))
}

/// `2024-05-01T12:00:00Z` (or with fractional seconds), as the XML of
/// DeleteObjects writes times.
fn iso8601(text: &str) -> Option<SystemTime> {
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    let seconds = u64::try_from(parsed.unix_timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// An HTTP date; an unparseable one is ignored, as the RFC requires.
fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"0123abcd\"";
    const MODIFIED_MS: u64 = 1_369_353_600_500; // Fri, 24 May 2013 00:00:00 GMT (+0.5 s)
    const BEFORE: &str = "Thu, 23 May 2013 00:00:00 GMT";
    const AT: &str = "Fri, 24 May 2013 00:00:00 GMT";
    const AFTER: &str = "Sat, 25 May 2013 00:00:00 GMT";

    fn judge(p: Preconditions) -> Verdict {
        p.evaluate(ETAG, MODIFIED_MS)
    }

    #[test]
    fn if_match() {
        assert_eq!(
            judge(Preconditions {
                if_match: Some(ETAG),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            judge(Preconditions {
                if_match: Some("0123abcd"),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            judge(Preconditions {
                if_match: Some("\"x\", \"0123abcd\""),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            judge(Preconditions {
                if_match: Some("*"),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            judge(Preconditions {
                if_match: Some("\"other\""),
                ..Default::default()
            }),
            Verdict::Failed
        );
    }

    #[test]
    fn if_none_match() {
        assert_eq!(
            judge(Preconditions {
                if_none_match: Some(ETAG),
                ..Default::default()
            }),
            Verdict::NotModified
        );
        assert_eq!(
            judge(Preconditions {
                if_none_match: Some("*"),
                ..Default::default()
            }),
            Verdict::NotModified
        );
        assert_eq!(
            judge(Preconditions {
                if_none_match: Some("\"other\""),
                ..Default::default()
            }),
            Verdict::Proceed
        );
    }

    #[test]
    fn dates() {
        let since = |d| Preconditions {
            if_modified_since: Some(d),
            ..Default::default()
        };
        assert_eq!(judge(since(BEFORE)), Verdict::Proceed);
        assert_eq!(judge(since(AT)), Verdict::NotModified);
        assert_eq!(judge(since(AFTER)), Verdict::NotModified);
        assert_eq!(judge(since("garbage")), Verdict::Proceed);
        let unmodified = |d| Preconditions {
            if_unmodified_since: Some(d),
            ..Default::default()
        };
        assert_eq!(judge(unmodified(BEFORE)), Verdict::Failed);
        assert_eq!(judge(unmodified(AT)), Verdict::Proceed);
    }

    #[test]
    fn rfc_precedence() {
        // A true If-Match wins over a false If-Unmodified-Since.
        let p = Preconditions {
            if_match: Some(ETAG),
            if_unmodified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(judge(p), Verdict::Proceed);
        // A non-matching If-None-Match ignores If-Modified-Since.
        let p = Preconditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some(AFTER),
            ..Default::default()
        };
        assert_eq!(judge(p), Verdict::Proceed);
    }
}
