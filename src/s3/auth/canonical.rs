//! The SigV4 canonical request for S3, built from the request exactly as it
//! arrived on the wire.
//!
//! S3 differs from other AWS services in two ways that matter here: the path
//! is neither normalised nor encoded twice, so the canonical URI is the raw
//! path with only the characters a client must not send bare encoded; and
//! `x-amz-content-sha256` (or a streaming marker) stands in for the payload
//! hash. The query is decoded and re-encoded with the AWS rules, because
//! clients differ in how much of it they escape on the wire.

use http::HeaderMap;
use percent_encoding::percent_decode;

/// One query parameter, percent-decoded (`+` read as a space).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParam {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl QueryParam {
    /// The value as text, if it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Characters AWS never encodes: `A-Za-z0-9-._~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn push_percent(out: &mut Vec<u8>, byte: u8) {
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[
        b'%',
        HEX_UPPER[usize::from(byte >> 4)],
        HEX_UPPER[usize::from(byte & 0xf)],
    ]);
}

/// AWS `UriEncode`: unreserved bytes kept, everything else `%XX` uppercase.
pub fn uri_encode(out: &mut Vec<u8>, bytes: &[u8]) {
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(byte);
        } else {
            push_percent(out, byte);
        }
    }
}

/// The canonical URI of an S3 request: the raw path, with `/`, unreserved
/// bytes and well-formed `%XX` escapes kept as sent and any other byte
/// encoded (`$` becomes `%24`, a stray `%` becomes `%25`). An empty path is `/`.
pub fn canonical_uri(out: &mut Vec<u8>, raw_path: &str) {
    let bytes = raw_path.as_bytes();
    if bytes.is_empty() {
        out.push(b'/');
        return;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let escape = byte == b'%'
            && bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit);
        if escape {
            out.extend_from_slice(&bytes[index..index + 3]);
            index += 3;
            continue;
        }
        if is_unreserved(byte) || byte == b'/' {
            out.push(byte);
        } else {
            push_percent(out, byte);
        }
        index += 1;
    }
}

fn decode_component(raw: &str) -> Vec<u8> {
    // Form encoding writes a space as `+`; an encoded plus arrives as `%2B`
    // and survives, because `+` is replaced before decoding.
    if raw.contains('+') {
        percent_decode(raw.replace('+', " ").as_bytes()).collect()
    } else {
        percent_decode(raw.as_bytes()).collect()
    }
}

/// Splits a raw query (without `?`) into decoded parameters, in wire order.
/// Empty segments (`a=1&&b=2`) are skipped; a parameter without `=` has an
/// empty value. Malformed escapes are kept literally rather than rejected.
pub fn parse_query(raw_query: Option<&str>) -> Vec<QueryParam> {
    let Some(raw) = raw_query else {
        return Vec::new();
    };
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            QueryParam {
                name: decode_component(name),
                value: decode_component(value),
            }
        })
        .collect()
}

/// The canonical query string: every parameter except `skip` (the signature
/// itself, for presigned URLs), name and value URI-encoded, sorted by encoded
/// name then value, each written `name=value` (also when the value is empty),
/// joined by `&`.
pub fn canonical_query(out: &mut Vec<u8>, params: &[QueryParam], skip: Option<&[u8]>) {
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = params
        .iter()
        .filter(|param| Some(param.name.as_slice()) != skip)
        .map(|param| {
            let mut name = Vec::with_capacity(param.name.len());
            uri_encode(&mut name, &param.name);
            let mut value = Vec::with_capacity(param.value.len());
            uri_encode(&mut value, &param.value);
            (name, value)
        })
        .collect();
    encoded.sort_unstable();
    for (index, (name, value)) in encoded.iter().enumerate() {
        if index > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

fn is_header_space(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Appends a header value trimmed, with inner runs of spaces and tabs
/// collapsed to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut wrote_any = false;
    for &byte in value {
        if is_header_space(byte) {
            pending_space = wrote_any;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(byte);
        wrote_any = true;
    }
}

/// `name:value\n` for each signed header, in the given order (the caller has
/// checked it is sorted). Repeated headers are joined with `,` in arrival
/// order. A signed header that is absent contributes an empty value, so the
/// signature check, not this function, rejects the request.
pub fn canonical_headers(out: &mut Vec<u8>, headers: &HeaderMap, signed: &[&str]) {
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (index, value) in headers.get_all(*name).iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            push_trimmed(out, value.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Parses `SignedHeaders` (`host;range;x-amz-date`). Names must be lowercase,
/// non-empty and strictly ascending, as every SDK sends them, and `host`
/// must be among them.
pub fn parse_signed_headers(text: &str) -> Result<Vec<&str>, &'static str> {
    let names: Vec<&str> = text.split(';').collect();
    for name in &names {
        if name.is_empty() {
            return Err("SignedHeaders has an empty name");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
        {
            return Err("SignedHeaders names must be lowercase header names");
        }
    }
    if names.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err("SignedHeaders must be sorted and unique");
    }
    if !names.contains(&"host") {
        return Err("SignedHeaders must include host");
    }
    Ok(names)
}

/// The whole canonical request:
/// `method\nuri\nquery\nheaders\n\nsigned-headers\nhashed-payload`.
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub params: &'a [QueryParam],
    /// Parameter left out of the query (`X-Amz-Signature` when presigned).
    pub skip_param: Option<&'a [u8]>,
    pub headers: &'a HeaderMap,
    pub signed_headers: &'a [&'a str],
    /// Hex digest or literal marker such as `UNSIGNED-PAYLOAD`.
    pub hashed_payload: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.raw_path.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b'\n');
        canonical_uri(&mut out, self.raw_path);
        out.push(b'\n');
        canonical_query(&mut out, self.params, self.skip_param);
        out.push(b'\n');
        canonical_headers(&mut out, self.headers, self.signed_headers);
        out.push(b'\n');
        for (index, name) in self.signed_headers.iter().enumerate() {
            if index > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(self.hashed_payload.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(raw: &str) -> String {
        let mut out = Vec::new();
        canonical_uri(&mut out, raw);
        String::from_utf8(out).expect("canonical URI is ASCII")
    }

    fn query(raw: &str, skip: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        canonical_query(&mut out, &parse_query(Some(raw)), skip);
        String::from_utf8(out).expect("canonical query is ASCII")
    }

    #[test]
    fn uri_keeps_escapes_and_encodes_the_rest() {
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/"), "/");
        assert_eq!(uri("/test.txt"), "/test.txt");
        assert_eq!(uri("/test$file.text"), "/test%24file.text");
        assert_eq!(uri("/bucket/a%20b"), "/bucket/a%20b");
        assert_eq!(uri("/bucket/a b"), "/bucket/a%20b");
        assert_eq!(uri("/a+b=c"), "/a%2Bb%3Dc");
        // No normalisation: dot segments and double slashes are part of the key.
        assert_eq!(uri("/b//./../k"), "/b//./../k");
        // A lone or malformed `%` is a literal percent sign.
        assert_eq!(uri("/100%"), "/100%25");
        assert_eq!(uri("/%zz"), "/%25zz");
        assert_eq!(uri("/%2"), "/%252");
        assert_eq!(uri("/é"), "/%C3%A9");
    }

    #[test]
    fn query_sorted_and_reencoded() {
        assert_eq!(query("lifecycle", None), "lifecycle=");
        assert_eq!(query("max-keys=2&prefix=J", None), "max-keys=2&prefix=J");
        assert_eq!(query("prefix=J&max-keys=2", None), "max-keys=2&prefix=J");
        assert_eq!(query("a=2&a=1&b", None), "a=1&a=2&b=");
        assert_eq!(
            query("k=a b&j=a+b&i=a%2Bb", None),
            "i=a%2Bb&j=a%20b&k=a%20b"
        );
        assert_eq!(query("p=%2f&q=/", None), "p=%2F&q=%2F");
        assert_eq!(query("&&x=1&", None), "x=1");
        assert_eq!(query("bad=%zz", None), "bad=%25zz");
        assert_eq!(
            query("X-Amz-Signature=abc&z=1", Some(b"X-Amz-Signature")),
            "z=1"
        );
    }

    #[test]
    fn header_values_trimmed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com".parse().expect("valid value"));
        headers.append(
            "x-amz-meta-a",
            "  one   two\t three  ".parse().expect("valid value"),
        );
        headers.append("x-amz-meta-a", "four".parse().expect("valid value"));
        let mut out = Vec::new();
        canonical_headers(
            &mut out,
            &headers,
            &["host", "x-amz-meta-a", "x-amz-meta-absent"],
        );
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            "host:example.com\nx-amz-meta-a:one two three,four\nx-amz-meta-absent:\n"
        );
    }

    #[test]
    fn signed_headers_rules() {
        assert_eq!(parse_signed_headers("host"), Ok(vec!["host"]));
        assert_eq!(
            parse_signed_headers("date;host;x-amz-date"),
            Ok(vec!["date", "host", "x-amz-date"])
        );
        for bad in [
            "",
            "x-amz-date",
            "host;;x-amz-date",
            "x-amz-date;host",
            "host;host",
            "Host",
            "ho st",
        ] {
            assert!(parse_signed_headers(bad).is_err(), "{bad:?}");
        }
        // Names that are not valid header names must not panic the lookup.
        let headers = HeaderMap::new();
        let mut out = Vec::new();
        canonical_headers(&mut out, &headers, &["host", "\u{1}weird"]);
    }
}
