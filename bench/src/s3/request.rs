//! Turns an [`Op`] into a signed hyper request: path-style URI, the
//! `x-amz-*` headers, SigV4 `Authorization`, the body in the chosen
//! [`PayloadMode`], and the `Expect: 100-continue` gate when asked for.
//! One signer per worker: it caches the day's signing key.

use std::sync::Mutex;
use std::time::SystemTime;

use http::{header, Method, Request};
use time::OffsetDateTime;

use super::body::RequestBody;
use super::{Op, PayloadMode};
use crate::limits::EXPECT_CONTINUE_WAIT;
use crate::sigv4::chunk::ChunkSigner;
use crate::sigv4::{
    self, Credentials, KeyCache, RequestToSign, EMPTY_SHA256_HEX, STREAMING_PAYLOAD,
    UNSIGNED_PAYLOAD,
};

/// How every request of one step is sent.
#[derive(Debug, Clone)]
pub struct SendOptions {
    pub payload: PayloadMode,
    pub expect_continue: bool,
}

pub struct RequestSigner {
    access_key: String,
    keys: KeyCache,
    host: String,
    bucket: String,
    options: SendOptions,
}

impl RequestSigner {
    pub fn new(
        credentials: &Credentials,
        region: &str,
        host: &str,
        bucket: &str,
        options: SendOptions,
    ) -> RequestSigner {
        RequestSigner {
            access_key: credentials.access_key.clone(),
            keys: KeyCache::new(&credentials.secret_key, region),
            host: host.to_string(),
            bucket: bucket.to_string(),
            options,
        }
    }

    /// `op` in the signer's own bucket.
    pub fn build(&mut self, op: &Op, now: SystemTime) -> Request<RequestBody> {
        let bucket = self.bucket.clone();
        self.build_in(&bucket, op, now)
    }

    /// `op` in `bucket` (a step may spread its keys over several).
    pub fn build_in(&mut self, bucket: &str, op: &Op, now: SystemTime) -> Request<RequestBody> {
        let amz_date = amz_date(now);
        let max_keys_text;
        let (method, path, query): (Method, String, Vec<(&str, &str)>) = match op {
            Op::CreateBucket => (Method::PUT, format!("/{bucket}"), vec![]),
            Op::Put { key, .. } => (Method::PUT, format!("/{bucket}/{key}"), vec![]),
            Op::Get { key } => (Method::GET, format!("/{bucket}/{key}"), vec![]),
            Op::Head { key } => (Method::HEAD, format!("/{bucket}/{key}"), vec![]),
            Op::Delete { key } => (Method::DELETE, format!("/{bucket}/{key}"), vec![]),
            Op::List {
                prefix,
                max_keys,
                continuation,
            } => {
                max_keys_text = max_keys.to_string();
                let mut query = vec![
                    ("list-type", "2"),
                    ("max-keys", max_keys_text.as_str()),
                    ("prefix", prefix.as_str()),
                ];
                if let Some(token) = continuation {
                    query.insert(0, ("continuation-token", token.as_str()));
                }
                (Method::GET, format!("/{bucket}"), query)
            }
        };

        let payload = match op {
            Op::Put { payload, .. } => Some(payload),
            _ => None,
        };
        let payload_hash = match (payload, self.options.payload) {
            (_, PayloadMode::Unsigned) => UNSIGNED_PAYLOAD,
            (Some(p), PayloadMode::Signed) => p.sha256_hex.as_str(),
            (Some(_), PayloadMode::Chunked) => STREAMING_PAYLOAD,
            (None, _) => EMPTY_SHA256_HEX,
        };
        let chunked = payload.is_some() && self.options.payload == PayloadMode::Chunked;
        let decoded_length = payload.map(|p| p.len().to_string());

        let mut signed: Vec<(&str, &str)> = vec![
            ("host", &self.host),
            ("x-amz-content-sha256", payload_hash),
            ("x-amz-date", &amz_date),
        ];
        if chunked {
            signed.push(("content-encoding", "aws-chunked"));
            signed.push((
                "x-amz-decoded-content-length",
                decoded_length
                    .as_deref()
                    .expect("chunked implies a payload"),
            ));
        }
        let key = self.keys.key(&amz_date);
        let signature = sigv4::sign(
            &self.access_key,
            key,
            &amz_date,
            &RequestToSign {
                method: method.as_str(),
                path: &path,
                query: &query,
                headers: &signed,
                payload_hash,
            },
        );

        let mut uri = sigv4::uri_encode(&path, false);
        for (i, (k, v)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(&sigv4::uri_encode(k, true));
            uri.push('=');
            uri.push_str(&sigv4::uri_encode(v, true));
        }
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in &signed {
            builder = builder.header(*name, *value);
        }
        builder = builder.header(header::AUTHORIZATION, &signature.authorization);
        let body = match payload {
            None => RequestBody::empty(),
            Some(p) if chunked => RequestBody::chunked(
                p.data.clone(),
                p.chunk_sha256.clone(),
                ChunkSigner::new(*key.bytes(), &amz_date, key.scope(), &signature.signature),
            ),
            Some(p) => RequestBody::full(p.data.clone()),
        };
        if payload.is_some() {
            builder = builder.header(header::CONTENT_LENGTH, body.wire_length());
        }
        let expect = payload.is_some() && self.options.expect_continue;
        if expect {
            builder = builder.header(header::EXPECT, "100-continue");
        }
        let mut request = builder
            .body(body)
            .expect("method, URI and headers are built from valid parts");
        if expect {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let tx = Mutex::new(Some(tx));
            hyper::ext::on_informational(&mut request, move |res| {
                if res.status() == http::StatusCode::CONTINUE {
                    if let Some(tx) = tx.lock().expect("never poisoned").take() {
                        let _ = tx.send(());
                    }
                }
            });
            let body = std::mem::replace(request.body_mut(), RequestBody::empty());
            *request.body_mut() = body.gated(Box::pin(async move {
                let _ = tokio::time::timeout(EXPECT_CONTINUE_WAIT, rx).await;
            }));
        }
        request
    }
}

/// `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(now: SystemTime) -> String {
    OffsetDateTime::from(now)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("every UTC time formats")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use std::sync::Arc;

    use super::*;
    use crate::limits::CHUNK_PAYLOAD_BYTES;
    use crate::payload::Payload;

    fn signer(payload: PayloadMode, expect_continue: bool) -> RequestSigner {
        RequestSigner::new(
            &Credentials {
                access_key: "AK".into(),
                secret_key: "SK".into(),
            },
            "us-east-1",
            "127.0.0.1:9000",
            "bench",
            SendOptions {
                payload,
                expect_continue,
            },
        )
    }

    fn at_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    #[test]
    fn amz_date_formats_utc() {
        assert_eq!(amz_date(at_example()), "20130524T000000Z");
    }

    #[test]
    fn payload_modes_set_the_content_hash_and_length() {
        let payload = Arc::new(Payload::new(100_000));
        let put = Op::Put {
            key: "k/1".into(),
            payload: payload.clone(),
        };
        let req = signer(PayloadMode::Signed, false).build(&put, at_example());
        assert_eq!(
            req.headers()["x-amz-content-sha256"],
            payload.sha256_hex.as_str()
        );
        assert_eq!(req.headers()["content-length"], "100000");
        assert_eq!(req.uri(), "/bench/k/1");
        assert!(req.headers().get("expect").is_none());

        let req = signer(PayloadMode::Unsigned, true).build(&put, at_example());
        assert_eq!(req.headers()["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
        assert_eq!(req.headers()["expect"], "100-continue");

        let req = signer(PayloadMode::Chunked, false).build(&put, at_example());
        assert_eq!(req.headers()["x-amz-content-sha256"], STREAMING_PAYLOAD);
        assert_eq!(req.headers()["content-encoding"], "aws-chunked");
        assert_eq!(req.headers()["x-amz-decoded-content-length"], "100000");
        let wire = sigv4::chunk::encoded_length(100_000, CHUNK_PAYLOAD_BYTES);
        assert_eq!(req.headers()["content-length"], wire.to_string().as_str());
        assert_eq!(req.body().wire_length(), wire);
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains(
            "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;\
             x-amz-decoded-content-length,"
        ));
    }

    #[test]
    fn bodyless_requests_sign_the_empty_hash_unless_unsigned() {
        let get = Op::Get { key: "a".into() };
        let req = signer(PayloadMode::Chunked, true).build(&get, at_example());
        assert_eq!(req.headers()["x-amz-content-sha256"], EMPTY_SHA256_HEX);
        assert!(req.headers().get("expect").is_none());
        let req = signer(PayloadMode::Unsigned, false).build(&get, at_example());
        assert_eq!(req.headers()["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
    }

    #[test]
    fn list_query_is_encoded() {
        let list = Op::List {
            prefix: "run a/".into(),
            max_keys: 1000,
            continuation: None,
        };
        let req = signer(PayloadMode::Signed, false).build(&list, at_example());
        assert_eq!(
            req.uri(),
            "/bench?list-type=2&max-keys=1000&prefix=run%20a%2F"
        );
        let next = Op::List {
            prefix: "p/".into(),
            max_keys: 1000,
            continuation: Some("t+1/=".into()),
        };
        let req = signer(PayloadMode::Signed, false).build_in("other", &next, at_example());
        assert_eq!(
            req.uri(),
            "/other?continuation-token=t%2B1%2F%3D&list-type=2&max-keys=1000&prefix=p%2F"
        );
    }
}
