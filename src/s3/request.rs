//! Turning a hyper request into an [`S3Request`]: which resource it names
//! (path-style addressing, or virtual-hosted style when the node has a
//! domain), its decoded query, and the raw parts SigV4 signs.

use http::{HeaderMap, Method, Request};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use super::auth::RequestParts;
use super::error::S3Error;
use crate::limits::KEY_BYTES_MAX;

/// S3 subresources (query parameters that select another operation on the
/// same path) that Shoal does not serve. A request naming one must be
/// refused, never mistaken for the plain operation: `PUT /b/k?tagging`
/// would otherwise overwrite the object with the tagging document.
const UNSUPPORTED_SUBRESOURCES: [&str; 16] = [
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "select",
    "torrent",
    "website",
];

/// Subresources Shoal serves, and whether on buckets and on objects (a
/// method one does not take is answered 405 by the operation's
/// classification).
const SERVED_SUBRESOURCES: [(&str, bool, bool); 12] = [
    ("attributes", false, true),
    ("encryption", true, false),
    ("ownershipControls", true, false),
    ("lifecycle", true, false),
    ("policy", true, false),
    ("policyStatus", true, false),
    ("cors", true, false),
    ("versioning", true, false),
    ("object-lock", true, false),
    ("retention", false, true),
    ("legal-hold", false, true),
    ("tagging", true, true),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Service,
    Bucket(String),
    Object(String, String),
}

pub struct S3Request {
    method: Method,
    target: Target,
    raw_path: String,
    raw_query: Option<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Incoming>,
    /// The client's address, when the connection knows it.
    remote: Option<std::net::IpAddr>,
    /// The bucket named by the `Host` of a virtual-hosted request.
    hosted_bucket: Option<String>,
}

impl S3Request {
    /// `domain` is the node's `--domain`: a `Host` of `bucket.<domain>`
    /// names the bucket and the whole path is the key.
    pub fn parse(req: Request<Incoming>, domain: Option<&str>) -> Result<Self, S3Error> {
        let (parts, body) = req.into_parts();
        let remote = parts
            .extensions
            .get::<crate::http_io::RemoteAddr>()
            .map(|r| r.0.ip());
        let raw_path = parts.uri.path().to_string();
        let raw_query = parts.uri.query().map(str::to_string);
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host());
        let hosted_bucket = domain
            .and_then(|domain| host_bucket(host?, domain))
            .map(str::to_string);
        let target = match &hosted_bucket {
            Some(bucket) => parse_hosted_target(bucket, &raw_path)?,
            None => parse_target(&raw_path)?,
        };
        let query = raw_query
            .as_deref()
            .map(parse_query)
            .transpose()?
            .unwrap_or_default();
        Ok(S3Request {
            method: parts.method,
            target,
            raw_path,
            raw_query,
            query,
            headers: parts.headers,
            body: Some(body),
            remote,
            hosted_bucket,
        })
    }

    /// The client's IP address (`aws:SourceIp`), when known.
    pub fn remote_ip(&self) -> Option<std::net::IpAddr> {
        self.remote
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter (decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// The first subresource this request names that Shoal does not serve
    /// (those it serves, only as a GET or PUT of their kind of target).
    pub fn unsupported_subresource(&self) -> Option<&'static str> {
        let misplaced = SERVED_SUBRESOURCES
            .into_iter()
            .find(|(name, on_bucket, on_object)| {
                let on_target = match self.target {
                    Target::Bucket(_) => *on_bucket,
                    Target::Object(..) => *on_object,
                    Target::Service => false,
                };
                self.has_query(name) && !on_target
            });
        if let Some((name, ..)) = misplaced {
            return Some(name);
        }
        UNSUPPORTED_SUBRESOURCES
            .into_iter()
            .find(|name| self.has_query(name))
    }

    /// The request body; `None` once taken.
    pub fn take_body(&mut self) -> Option<Incoming> {
        self.body.take()
    }

    pub fn auth_parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: self.method.as_str(),
            raw_path: &self.raw_path,
            raw_query: self.raw_query.as_deref(),
            headers: &self.headers,
            hosted_bucket: self.hosted_bucket.as_deref(),
        }
    }
}

/// `/` → service, `/bucket[/]` → bucket, `/bucket/key…` → object.
pub(crate) fn parse_target(raw_path: &str) -> Result<Target, S3Error> {
    let path = raw_path
        .strip_prefix('/')
        .ok_or_else(|| S3Error::InvalidRequest {
            message: "The request path must start with '/'".into(),
        })?;
    if path.is_empty() {
        return Ok(Target::Service);
    }
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket, key),
        None => (path, ""),
    };
    let bucket = decode(bucket)?;
    if key.is_empty() {
        return Ok(Target::Bucket(bucket));
    }
    object_target(bucket, key)
}

/// The bucket a `Host` of `bucket.<domain>[:port]` names; `None` for any
/// other host (the domain itself, an IP address), which is path style.
fn host_bucket<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let bucket = name.strip_suffix(domain).or_else(|| {
        // Host names are case-insensitive; `domain` is lower case.
        let lower = name.to_ascii_lowercase();
        lower
            .ends_with(domain)
            .then(|| &name[..name.len() - domain.len()])
    })?;
    let bucket = bucket.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

/// Virtual-hosted style: the bucket came from the host, `/` is the bucket
/// and `/key…` an object.
fn parse_hosted_target(bucket: &str, raw_path: &str) -> Result<Target, S3Error> {
    let key = raw_path
        .strip_prefix('/')
        .ok_or_else(|| S3Error::InvalidRequest {
            message: "The request path must start with '/'".into(),
        })?;
    let bucket = bucket.to_string();
    if key.is_empty() {
        return Ok(Target::Bucket(bucket));
    }
    object_target(bucket, key)
}

fn object_target(bucket: String, raw_key: &str) -> Result<Target, S3Error> {
    let key = decode(raw_key)?;
    if key.len() > KEY_BYTES_MAX {
        return Err(S3Error::KeyTooLong { length: key.len() });
    }
    // The metadata store separates a key from what follows it (an upload
    // id, a version's position) with a NUL byte, and XML cannot carry one
    // in a listing anyway.
    if key.contains('\0') {
        return Err(S3Error::InvalidArgument {
            message: "Object keys must not contain the character U+0000".into(),
        });
    }
    Ok(Target::Object(bucket, key))
}

fn decode(raw: &str) -> Result<String, S3Error> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| S3Error::InvalidArgument {
            message: "Path is not valid UTF-8 after percent-decoding".into(),
        })
}

/// Decodes `a=1&b&c=%20` into pairs; `+` is a space, as in form encoding.
pub(crate) fn parse_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(&name.replace('+', " "))?;
            let value = decode(&value.replace('+', " "))?;
            Ok((name, value))
        })
        .collect()
}

/// S3's bucket naming rules (the subset that keeps names DNS-safe).
pub fn validate_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("bucket names must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("bucket names may hold only lowercase letters, digits, '.' and '-'");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("bucket names must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("bucket names must not contain two adjacent periods");
    }
    if name.contains(".-") || name.contains("-.") {
        return Err("bucket names must not have a period next to a hyphen");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") {
        return Err("bucket names must not start with xn-- or sthree- (reserved)");
    }
    if name.ends_with("-s3alias") || name.ends_with("--ol-s3") || name.ends_with(".mrap") {
        return Err("bucket names must not end with -s3alias, --ol-s3 or .mrap (reserved)");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("bucket names must not be formatted as an IP address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_targets() {
        assert_eq!(parse_target("/").unwrap(), Target::Service);
        assert_eq!(parse_target("/b").unwrap(), Target::Bucket("b".into()));
        assert_eq!(parse_target("/b/").unwrap(), Target::Bucket("b".into()));
        assert_eq!(
            parse_target("/b/dir/a%20b%2Bc").unwrap(),
            Target::Object("b".into(), "dir/a b+c".into())
        );
        assert_eq!(
            parse_target("/b//x").unwrap(),
            Target::Object("b".into(), "/x".into())
        );
        assert!(parse_target("/b/%FF").is_err());
        assert!(parse_target(&format!("/b/{}", "k".repeat(1025))).is_err());
        // NUL separates keys from what follows them in the metadata store.
        assert!(matches!(
            parse_target("/b/a%00b"),
            Err(S3Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn virtual_hosted_targets() {
        let domain = "s3.example.com";
        assert_eq!(host_bucket("b1.s3.example.com", domain), Some("b1"));
        assert_eq!(
            host_bucket("my.b.s3.example.com:9000", domain),
            Some("my.b")
        );
        assert_eq!(host_bucket("B1.S3.Example.COM", domain), Some("B1"));
        assert_eq!(host_bucket("s3.example.com:9000", domain), None);
        assert_eq!(host_bucket("127.0.0.1:9000", domain), None);
        assert_eq!(host_bucket("xs3.example.com", domain), None);
        assert_eq!(
            parse_hosted_target("b", "/").unwrap(),
            Target::Bucket("b".into())
        );
        assert_eq!(
            parse_hosted_target("b", "/dir/a%20b").unwrap(),
            Target::Object("b".into(), "dir/a b".into())
        );
        assert_eq!(
            parse_hosted_target("b", "//x").unwrap(),
            Target::Object("b".into(), "/x".into())
        );
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("list-type=2&prefix=a%2Fb&delimiter=%2F&x&y=a+b").unwrap();
        assert_eq!(q[0], ("list-type".into(), "2".into()));
        assert_eq!(q[1], ("prefix".into(), "a/b".into()));
        assert_eq!(q[3], ("x".into(), "".into()));
        assert_eq!(q[4], ("y".into(), "a b".into()));
    }

    #[test]
    fn bucket_names() {
        assert!(validate_bucket_name("my-bucket.1").is_ok());
        for bad in [
            "ab",
            "Upper",
            "-lead",
            "trail-",
            "a..b",
            "foo.-bar",
            "foo-.bar",
            "xn--punycode",
            "data-s3alias",
            "192.168.1.1",
            "under_score",
            &"x".repeat(64),
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
