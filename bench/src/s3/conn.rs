//! One keep-alive HTTP/1.1 connection (hyper 1 client over a tokio
//! `TcpStream`, or TLS over it for an `https://` endpoint) and one attempt on it: send, read the whole response,
//! classify it as an [`Outcome`]. A worker owns its connection and opens a
//! new one when the last failed or the server closed it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::RequestBody;
use super::response::{error_code, Verifier};
use super::{Endpoint, Outcome, TransportKind};
use crate::limits::ERROR_BODY_BYTES_MAX;

pub struct Connection {
    sender: SendRequest<RequestBody>,
}

impl Connection {
    pub async fn open(endpoint: &Endpoint) -> Result<Connection, Outcome> {
        let authority = &endpoint.authority;
        let connect_failed = |e: &dyn std::fmt::Display| Outcome::Transport {
            kind: TransportKind::Connect,
            message: format!("connect {authority}: {e}"),
        };
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| connect_failed(&e))?;
        stream.set_nodelay(true).map_err(|e| connect_failed(&e))?;
        let Some((tls, host)) = endpoint.tls() else {
            return Self::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| connect_failed(&e));
        };
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| connect_failed(&e))?;
        let session = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(tls))
            .connect(name, stream)
            .await
            .map_err(|e| connect_failed(&e))?;
        Self::handshake(TokioIo::new(session))
            .await
            .map_err(|e| connect_failed(&e))
    }

    async fn handshake<Io>(io: Io) -> Result<Connection, hyper::Error>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        // Drives the connection; ends when the sender is dropped or the
        // peer closes. Its error, if any, surfaces on the next request.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// What to do with a 2xx body.
#[derive(Clone)]
pub enum BodyCheck {
    /// Count its bytes.
    Count,
    /// Count and compare with these bytes.
    Verify(Bytes),
    /// Count and keep up to this many bytes (a listing page).
    Keep(usize),
}

/// What one attempt came to, and when its first body byte arrived.
#[derive(Debug)]
pub struct Reply {
    pub outcome: Outcome,
    /// When the first body byte arrived (the response head, for an empty
    /// body); `None` without a response.
    pub first_byte: Option<Instant>,
    /// A 2xx body asked for with [`BodyCheck::Keep`] that fit.
    pub body: Option<Bytes>,
}

impl From<Outcome> for Reply {
    fn from(outcome: Outcome) -> Reply {
        Reply {
            outcome,
            first_byte: None,
            body: None,
        }
    }
}

/// One attempt: reuses `slot`'s connection or opens one, sends `request`,
/// reads the response. Leaves `slot` empty when the connection is unusable.
pub async fn attempt(
    slot: &mut Option<Connection>,
    endpoint: &Endpoint,
    request: Request<RequestBody>,
    check: BodyCheck,
    timeout: Duration,
) -> Reply {
    match tokio::time::timeout(timeout, attempt_inner(slot, endpoint, request, check)).await {
        Ok(reply) => reply,
        Err(_) => {
            *slot = None;
            Reply::from(Outcome::Transport {
                kind: TransportKind::Timeout,
                message: format!("no complete response within {timeout:?}"),
            })
        }
    }
}

async fn attempt_inner(
    slot: &mut Option<Connection>,
    endpoint: &Endpoint,
    request: Request<RequestBody>,
    check: BodyCheck,
) -> Reply {
    // A kept connection the server has since closed (say after an early
    // error reply) is replaced, not counted: this request never used it.
    if let Some(conn) = slot.as_mut() {
        if conn.is_closed() || conn.sender.ready().await.is_err() {
            *slot = None;
        }
    }
    if slot.is_none() {
        match Connection::open(endpoint).await {
            Ok(conn) => *slot = Some(conn),
            Err(outcome) => return outcome.into(),
        }
    }
    let conn = slot.as_mut().expect("opened above");
    let io_failed = |e: hyper::Error| Outcome::Transport {
        kind: TransportKind::Io,
        message: e.to_string(),
    };
    if let Err(e) = conn.sender.ready().await {
        *slot = None;
        return io_failed(e).into();
    }
    let response = match conn.sender.send_request(request).await {
        Ok(response) => response,
        Err(e) => {
            *slot = None;
            return io_failed(e).into();
        }
    };
    let head_at = Instant::now();
    let status = response.status().as_u16();
    let closes = response
        .headers()
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut reply = read_body(status, response.into_body(), check).await;
    if closes || matches!(reply.outcome, Outcome::Transport { .. }) {
        *slot = None;
    }
    reply.first_byte = Some(reply.first_byte.unwrap_or(head_at));
    reply
}

/// The outcome, when the first data frame arrived (if any did), and the
/// body when asked to keep it.
async fn read_body(status: u16, mut body: Incoming, check: BodyCheck) -> Reply {
    let success = (200..300).contains(&status);
    let keep = match check {
        BodyCheck::Keep(max) if success => max,
        _ => 0,
    };
    let mut verifier = match check {
        BodyCheck::Verify(expected) if success => Some(Verifier::new(expected)),
        _ => None,
    };
    let mut kept = BytesMut::new();
    let mut page = BytesMut::new();
    let mut page_fits = true;
    let mut body_bytes = 0u64;
    let mut first_data = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                let failed = Outcome::Transport {
                    kind: TransportKind::Io,
                    message: format!("reading the body of an HTTP {status}: {e}"),
                };
                return Reply {
                    outcome: failed,
                    first_byte: first_data,
                    body: None,
                };
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if first_data.is_none() && !data.is_empty() {
            first_data = Some(Instant::now());
        }
        body_bytes += data.len() as u64;
        if let Some(v) = verifier.as_mut() {
            v.feed(&data);
        }
        if keep > 0 && page_fits {
            page_fits = page.len() + data.len() <= keep;
            if page_fits {
                page.extend_from_slice(&data);
            }
        }
        if !success && kept.len() < ERROR_BODY_BYTES_MAX {
            let room = ERROR_BODY_BYTES_MAX - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let outcome = Outcome::Response {
        status,
        body_bytes,
        error_code: (!success)
            .then(|| error_code(&kept).map(Into::into))
            .flatten(),
        verified: verifier.map(|v| v.finish()),
    };
    Reply {
        outcome,
        first_byte: first_data,
        body: (keep > 0 && page_fits).then(|| page.freeze()),
    }
}
