//! Reading what came back, pure parts: the `<Code>` of an S3 error body,
//! and [`Verifier`], which checks a GET body against the payload buffer it
//! was written from, frame by frame, without buffering it.

use bytes::Bytes;

/// The S3 error code in an error body (`<Code>SlowDown</Code>`), if any.
pub fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = text[start..start + len].trim();
    (!code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
    .then_some(code)
}

/// Compares a body, as it streams in, with the expected bytes.
pub struct Verifier {
    expected: Bytes,
    offset: usize,
    matches: bool,
}

impl Verifier {
    pub fn new(expected: Bytes) -> Verifier {
        Verifier {
            expected,
            offset: 0,
            matches: true,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if !self.matches {
            return;
        }
        let end = self.offset + data.len();
        self.matches = end <= self.expected.len() && self.expected[self.offset..end] == *data;
        self.offset = end;
    }

    /// True when every byte matched and none was missing.
    pub fn finish(&self) -> bool {
        self.matches && self.offset == self.expected.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found() {
        let body =
            b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body), Some("SlowDown"));
        assert_eq!(error_code(b"<Error><Code>Access Denied</Code>"), None);
        assert_eq!(error_code(b"<Error><Code></Code></Error>"), None);
        assert_eq!(error_code(b"not xml"), None);
        assert_eq!(error_code(&[0xff, 0xfe]), None);
    }

    #[test]
    fn verifier_accepts_the_same_bytes_in_any_framing() {
        let expected = Bytes::from_static(b"hello world");
        let mut v = Verifier::new(expected.clone());
        v.feed(b"hel");
        v.feed(b"lo w");
        v.feed(b"orld");
        assert!(v.finish());
    }

    #[test]
    fn verifier_rejects_wrong_short_and_long_bodies() {
        let expected = Bytes::from_static(b"hello");
        let mut wrong = Verifier::new(expected.clone());
        wrong.feed(b"hellO");
        assert!(!wrong.finish());
        let mut short = Verifier::new(expected.clone());
        short.feed(b"hell");
        assert!(!short.finish());
        let mut long = Verifier::new(expected);
        long.feed(b"hello!");
        assert!(!long.finish());
    }
}
