//! One log line and one metric sample per request: method, route template,
//! status, latency and a request id — never the body, the headers or the
//! query (which is why the route template is logged, not the URI).
//!
//! The request id is the client's `X-Request-Id` when it is a short token
//! of safe characters (so it cannot forge log lines), otherwise a fresh
//! one; it is sent back in `X-Request-Id`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{HttpLabels, Metrics};

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

fn client_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID)?.to_str().ok()?;
    let safe = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    safe.then(|| value.to_owned())
}

/// A bounded set of method names for labels: anything unusual is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Logs and counts the request.
pub async fn log_request(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id =
        client_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let span =
        tracing::info_span!("http_request", request_id = %request_id, method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = took.as_secs_f64() * 1e3,
            "request answered"
        );
    });
    metrics.record_http(
        HttpLabels {
            method,
            route,
            status,
        },
        took,
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
