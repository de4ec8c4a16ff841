//! `shoal-bench sink`: a trivial HTTP server that reads and discards every
//! request body and answers 200, for measuring the load generator's own
//! ceiling (run `put` against it). GETs of a key get `--object-size` bytes
//! from one reused buffer, so a `get` run can be measured the same way.
//! It checks no signature and stores nothing.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::BenchError;
use crate::limits::SINK_OBJECT_BYTES_MAX;

pub struct SinkConfig {
    pub addr: String,
    pub object_bytes: u64,
    /// Stop after this long; `None`: run until killed.
    pub run_for: Option<Duration>,
}

pub fn serve(config: SinkConfig) -> Result<(), BenchError> {
    if config.object_bytes > SINK_OBJECT_BYTES_MAX {
        return Err(BenchError::invalid(
            "--object-size",
            config.object_bytes,
            format!("at most {SINK_OBJECT_BYTES_MAX}"),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let object = Bytes::from(vec![0x42u8; config.object_bytes as usize]);
    runtime.block_on(async move {
        let fail = |source| BenchError::Sink {
            addr: config.addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&config.addr).await.map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        eprintln!("shoal-bench sink: listening on http://{local}");
        match config.run_for {
            Some(limit) => {
                let _ = tokio::time::timeout(limit, serve_on(listener, object)).await;
            }
            None => serve_on(listener, object).await,
        }
        Ok(())
    })
}

/// Accepts and serves connections on `listener` until dropped.
pub async fn serve_on(listener: TcpListener, object: Bytes) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("shoal-bench sink: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let object = object.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, object.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    object: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // `/bucket/key` is an object; `/bucket` (create, list) is not.
    let is_object = req.uri().path().trim_start_matches('/').contains('/');
    let body = if req.method() == Method::GET && is_object {
        object
    } else {
        Bytes::new()
    };
    let mut incoming = req.into_body();
    while let Some(frame) = incoming.frame().await {
        if frame.is_err() {
            break;
        }
    }
    Ok(Response::new(Full::new(body)))
}
