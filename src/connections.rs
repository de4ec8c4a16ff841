//! Accepting HTTP connections on one core and serving each with hyper:
//! at most [`CONNECTIONS_PER_CORE_MAX`] at once, every request tagged with
//! its client's address, and an orderly close when the core stops.
//!
//! On a TLS port each connection first completes its handshake, within
//! [`TLS_HANDSHAKE_TIMEOUT`], on its own task (a slow client never holds
//! up the accept loop).
//!
//! When the core's [`StopLatch`] is set, the accept loop ends (dropping
//! the listener, so new connections are refused) and every open connection
//! finishes the request in progress, then closes; an idle keep-alive
//! connection closes at once. [`Connections::open`] tells the shutdown how
//! many are left.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use http_body::Body as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use shoal_shard::tls::TcpOrTls;

use crate::http_io::{set_slots_scarce, GlommioIo, GlommioTimer};
use crate::http_io::{Body, RemoteAddr};
use crate::limits::{
    CONNECTIONS_PER_CORE_MAX, CONNECTION_SLOTS_SCARCE_BELOW, HEADER_READ_TIMEOUT,
    HTTP_READ_BUFFER_BYTES_MAX, LINGER_BYTES_MAX, LINGER_READ_BYTES, LINGER_TIME_MAX,
    RESPONSE_WRITE_IDLE_TIMEOUT, TLS_HANDSHAKE_TIMEOUT,
};
use crate::shutdown::StopLatch;
use crate::tls::S3Tls;

/// The connections one listener of one core has open.
#[derive(Clone)]
pub struct Connections {
    slots: Rc<glommio::sync::Semaphore>,
    /// Whether this listener's slots decide when header waits are cut
    /// short (the S3 listener's; see `http_io::set_slots_scarce`).
    reports_scarcity: bool,
    /// Set when the shutdown timeout has passed: every connection still
    /// open is dropped, request in progress or not.
    cut: StopLatch,
    /// How long a response may stay blocked on a client that reads nothing.
    write_idle: Duration,
    /// The port's TLS; `None`: plain HTTP.
    tls: Option<std::sync::Arc<S3Tls>>,
}

impl Connections {
    /// The admin endpoint's connections: the default write stall limit,
    /// and no say in when the core's slots are scarce.
    pub fn admin() -> Connections {
        Connections {
            reports_scarcity: false,
            ..Connections::new(RESPONSE_WRITE_IDLE_TIMEOUT, None)
        }
    }

    /// Connections whose responses give up after `write_idle` without a
    /// byte read by the client, under `tls` when given.
    pub fn new(write_idle: Duration, tls: Option<std::sync::Arc<S3Tls>>) -> Connections {
        Connections {
            slots: Rc::new(glommio::sync::Semaphore::new(CONNECTIONS_PER_CORE_MAX)),
            reports_scarcity: true,
            cut: StopLatch::default(),
            write_idle,
            tls,
        }
    }

    /// Tells the core's header waits whether slots are scarce now.
    fn report_scarcity(&self) {
        if self.reports_scarcity {
            set_slots_scarce(self.slots.available() < CONNECTION_SLOTS_SCARCE_BELOW);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        CONNECTIONS_PER_CORE_MAX - self.slots.available()
    }

    /// Drops every open connection (each at its next poll).
    pub fn cut_all(&self) {
        self.cut.set();
    }
}

type Served = Pin<Box<dyn Future<Output = Result<hyper::Response<Body>, Infallible>>>>;

/// Accepts and serves connections until `stop` is set.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    connections: Connections,
    stop: StopLatch,
    handler: F,
) where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Unpin + 'static,
    Fut: Future<Output = Result<hyper::Response<Body>, Infallible>> + 'static,
{
    loop {
        let next = async {
            let slot = connections.slots.acquire_static_permit(1).await.ok()?;
            Some((slot, listener.accept().await))
        };
        let stopped = async {
            stop.wait().await;
            None
        };
        let Some((slot, accepted)) = futures_lite::future::or(stopped, next).await else {
            return;
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let remote = stream.peer_addr().ok();
        let handler = handler.clone();
        let stop = stop.clone();
        let cut = connections.cut.clone();
        connections.report_scarcity();
        let ended = connections.clone();
        glommio::spawn_local(async move {
            let served = async {
                let Some(stream) = open(stream, ended.tls.as_deref(), remote).await else {
                    return;
                };
                serve(
                    GlommioIo::new(stream, ended.write_idle),
                    remote,
                    stop,
                    handler,
                )
                .await;
            };
            futures_lite::future::or(served, cut.wait()).await;
            drop(slot);
            ended.report_scarcity();
        })
        .detach();
    }
}

/// The accepted connection, after its TLS handshake on a TLS port; `None`
/// when the handshake failed or took too long.
async fn open(
    stream: TcpStream,
    tls: Option<&S3Tls>,
    remote: Option<SocketAddr>,
) -> Option<TcpOrTls> {
    let Some(tls) = tls else {
        return Some(TcpOrTls::Plain(stream));
    };
    let acceptor = tls.acceptor();
    let handshake = glommio::timer::timeout(TLS_HANDSHAKE_TIMEOUT, async {
        Ok(acceptor.accept(stream).await)
    });
    match handshake.await {
        Ok(Ok(session)) => Some(TcpOrTls::Tls(Box::new(futures_rustls::TlsStream::Server(
            session,
        )))),
        Ok(Err(e)) => {
            tracing::debug!(?remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?remote, "TLS handshake timed out");
            None
        }
    }
}

/// Serves one connection until the client closes it, an error ends it, or
/// the core stops (after the request in progress).
async fn serve<F, Fut>(io: GlommioIo, remote: Option<SocketAddr>, stop: StopLatch, handler: F)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Unpin + 'static,
    Fut: Future<Output = Result<hyper::Response<Body>, Infallible>> + 'static,
{
    // Whether the last request came with a body and was refused, so the
    // body may not have been read.
    let refused_body = Rc::new(Cell::new(false));
    let refused = Rc::clone(&refused_body);
    // Boxed so the connection is `Unpin` and can be told to close while
    // it is polled (`poll_without_shutdown` needs an `Unpin` future).
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        if let Some(addr) = remote {
            req.extensions_mut().insert(RemoteAddr(addr));
        }
        let has_body = !req.body().is_end_stream();
        let response = handler(req);
        let refused = Rc::clone(&refused);
        Box::pin(async move {
            let response = response.await;
            if let Ok(response) = &response {
                refused.set(has_body && !response.status().is_success());
            }
            response
        }) as Served
    });
    let mut connection = http1::Builder::new()
        .timer(GlommioTimer)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(HTTP_READ_BUFFER_BYTES_MAX)
        .serve_connection(io, service);
    let mut stopping = Box::pin(stop.wait());
    let mut closing = false;
    let ended = std::future::poll_fn(|cx| {
        if !closing && stopping.as_mut().poll(cx).is_ready() {
            closing = true;
            Pin::new(&mut connection).graceful_shutdown();
        }
        connection.poll_without_shutdown(cx)
    })
    .await;
    match ended {
        // A connection closed for the shutdown whose last request was
        // answered whole has nothing left to drain: an idle client would
        // only keep the stop waiting.
        Ok(()) if closing && !refused_body.get() => {}
        Ok(()) => linger(connection.into_parts().io.stream.into_tcp()).await,
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
    }
}

/// Closes a connection the way a client that is still sending can read
/// the answer: stop writing, then read and discard what keeps coming for a
/// short while. A PUT refused before its body was read (503 SlowDown, 403,
/// 404) would otherwise close with unread bytes, and the kernel's reset
/// would destroy the response before the client read it.
async fn linger(stream: glommio::net::TcpStream) {
    use futures_lite::io::AsyncReadExt;
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let mut stream = stream;
    let mut scratch = vec![0u8; LINGER_READ_BYTES];
    let drain = async {
        let mut drained = 0u64;
        while drained < LINGER_BYTES_MAX {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n as u64,
            }
        }
    };
    futures_lite::future::or(drain, glommio::timer::sleep(LINGER_TIME_MAX)).await;
}
