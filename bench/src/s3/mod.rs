//! The S3 client side of the load generator: what one operation sends
//! ([`Op`], signed into a hyper request by [`request::RequestSigner`]),
//! its body ([`body::RequestBody`]: plain, aws-chunked with signed chunks,
//! optionally held back until `100 Continue`), one keep-alive HTTP/1.1
//! connection ([`conn::Connection`]) and what an attempt came to
//! ([`Outcome`]).
//!
//! Path-style addressing (`/bucket/key`) over plain HTTP to one endpoint.
//! Bodies are reused `Bytes` slices and never copied; each request costs
//! one signature and a handful of small strings. Everything here runs on
//! the tokio runtime of the calling worker task.

pub mod body;
pub mod conn;
pub mod listing;
pub mod request;
pub mod response;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::payload::Payload;

/// How a PUT body is covered by the signature (`x-amz-content-sha256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    /// The body's literal SHA-256, computed once per reused buffer.
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    #[default]
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked, 64 KiB chunks, each
    /// signed.
    Chunked,
}

impl PayloadMode {
    pub fn name(self) -> &'static str {
        match self {
            PayloadMode::Signed => "signed",
            PayloadMode::Unsigned => "unsigned",
            PayloadMode::Chunked => "chunked",
        }
    }
}

/// One S3 operation.
pub enum Op {
    CreateBucket,
    Put {
        key: String,
        payload: Arc<Payload>,
    },
    Get {
        key: String,
    },
    /// HEAD: the object's metadata, no body.
    Head {
        key: String,
    },
    /// One ListObjectsV2 page: the first, or the one `continuation`
    /// (the last page's `NextContinuationToken`) asks for.
    List {
        prefix: String,
        max_keys: u32,
        continuation: Option<String>,
    },
    Delete {
        key: String,
    },
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response: its status, body bytes read, the S3 error code
    /// of a non-2xx reply, and whether the body matched (`--verify`).
    Response {
        status: u16,
        body_bytes: u64,
        error_code: Option<Box<str>>,
        verified: Option<bool>,
    },
    /// No complete response.
    Transport {
        kind: TransportKind,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The TCP connect or HTTP handshake failed.
    Connect,
    /// The connection failed mid-request or mid-response.
    Io,
    /// The request ran past `--request-timeout`.
    Timeout,
}

/// Where requests go: `http://host:port` or `https://host:port`,
/// path-style.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port` to connect to and to send as `Host`.
    pub authority: String,
    pub url: String,
    /// For `https://`: the TLS client configuration ([`Endpoint::trust`]).
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    https: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("authority", &self.authority)
            .finish()
    }
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, BenchError> {
        let bad = |reason: &str| BenchError::Endpoint {
            endpoint: url.to_string(),
            reason: reason.to_string(),
        };
        let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(bad("expected http:// or https://")),
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(bad("expected http(s)://host[:port] with no path"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        Ok(Endpoint {
            authority,
            url: url.trim_end_matches('/').to_string(),
            tls: None,
            https,
        })
    }

    /// For an `https://` endpoint, trusts the CA certificates of the PEM
    /// file `ca` (which `--ca-file` names); an `http://` one needs none.
    pub fn trust(mut self, ca: Option<&std::path::Path>) -> Result<Endpoint, BenchError> {
        let bad = |reason: String| BenchError::Endpoint {
            endpoint: self.url.clone(),
            reason,
        };
        match (self.https, ca) {
            (false, None) => Ok(self),
            (false, Some(_)) => Err(bad("--ca-file is for an https:// endpoint".into())),
            (true, None) => Err(bad(
                "https needs --ca-file: the PEM CA that signed the server's certificate".into(),
            )),
            (true, Some(ca)) => {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
                let mut roots = rustls::RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(bad(format!("{}: no CA certificate in it", ca.display())));
                }
                let config = rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                self.tls = Some(std::sync::Arc::new(config));
                Ok(self)
            }
        }
    }

    /// The TLS configuration and the name the server's certificate must
    /// carry; `None` for plain HTTP.
    pub fn tls(&self) -> Option<(&std::sync::Arc<rustls::ClientConfig>, &str)> {
        let host = match self.authority.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => &self.authority,
        };
        self.tls.as_ref().map(|config| (config, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(e.authority, "127.0.0.1:9000");
        assert_eq!(e.url, "http://127.0.0.1:9000");
        assert_eq!(
            Endpoint::parse("http://localhost").unwrap().authority,
            "localhost:80"
        );
        let https = Endpoint::parse("https://localhost").unwrap();
        assert_eq!(https.authority, "localhost:443");
        assert!(https.clone().trust(None).is_err(), "https needs a CA");
        assert!(Endpoint::parse("http://h:1")
            .unwrap()
            .trust(Some(std::path::Path::new("ca.pem")))
            .is_err());
        for bad in ["ftp://x:1", "127.0.0.1:9000", "http://", "http://h:1/path"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
