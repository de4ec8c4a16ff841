//! The admin endpoint: `/healthz` and `/metrics` (Prometheus text).
//!
//! Served by the first core only, on its own address, so it never competes
//! with S3 listeners for a port and stays reachable when S3 is saturated.

use std::convert::Infallible;
use std::rc::Rc;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::metrics::Registry;
use crate::s3::{empty_response, full_body, Body};

pub async fn serve(
    registry: Rc<Registry>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            registry.render(),
        ),
        (&Method::GET, _) => empty_response(StatusCode::NOT_FOUND),
        _ => empty_response(StatusCode::METHOD_NOT_ALLOWED),
    };
    Ok(response)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}
