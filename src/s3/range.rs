//! The `Range` header of GET and HEAD: one byte range, as S3 supports.

/// An inclusive byte range inside an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole object with 200 (also for syntax S3
    /// ignores, such as several ranges).
    Whole,
    Partial(ByteRange),
    /// Well-formed but outside the object: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value against an object of `size` bytes.
pub fn resolve(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(ByteRange {
                first: size.saturating_sub(n),
                last: size - 1,
            }),
            None => RangeRequest::Whole,
        },
        // bytes=A-: from A to the end.
        (false, true) => match parse(first) {
            Some(a) if a < size => RangeRequest::Partial(ByteRange {
                first: a,
                last: size - 1,
            }),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a > b => RangeRequest::Whole,
            (Some(a), Some(_)) if a >= size => RangeRequest::Unsatisfiable,
            (Some(a), Some(b)) => RangeRequest::Partial(ByteRange {
                first: a,
                last: b.min(size - 1),
            }),
            _ => RangeRequest::Whole,
        },
        (true, true) => RangeRequest::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(first: u64, last: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { first, last })
    }

    #[test]
    fn forms_s3_accepts() {
        assert_eq!(resolve(Some("bytes=0-9"), 100), partial(0, 9));
        assert_eq!(resolve(Some("bytes=90-200"), 100), partial(90, 99));
        assert_eq!(resolve(Some("bytes=10-"), 100), partial(10, 99));
        assert_eq!(resolve(Some("bytes=-10"), 100), partial(90, 99));
        assert_eq!(resolve(Some("bytes=-500"), 100), partial(0, 99));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(
            resolve(Some("bytes=100-"), 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            resolve(Some("bytes=100-200"), 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(resolve(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-0"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(None, 100), RangeRequest::Whole);
        assert_eq!(resolve(Some("bytes=5-1"), 100), RangeRequest::Whole);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 100), RangeRequest::Whole);
        assert_eq!(resolve(Some("items=0-1"), 100), RangeRequest::Whole);
        assert_eq!(resolve(Some("bytes=x-1"), 100), RangeRequest::Whole);
    }
}
