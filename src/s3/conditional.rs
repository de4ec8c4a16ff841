//! Conditional GET and HEAD: `If-Match`, `If-None-Match`,
//! `If-Modified-Since`, `If-Unmodified-Since`, evaluated as RFC 9110 orders
//! them (and S3 follows): a true `If-Match` overrides a false
//! `If-Unmodified-Since`, and a false `If-None-Match` (the ETag matches)
//! decides `304` whatever `If-Modified-Since` says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
