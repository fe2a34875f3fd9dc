//! Per-request context: a request id on every response and log line, `client-request-id`
//! echoed, Graph's error envelope filled in, metrics recorded.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use tracing::Instrument;

use axum::response::IntoResponse;

use super::error::ErrorInfo;
use super::{ApiError, AppState};
use crate::telemetry::metrics_labels::{RequestLabels, RouteLabels};

/// A bounded method label for metrics.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A bounded route label for metrics.
fn route_label(path: &str) -> &'static str {
    if path.starts_with("/data/download/") {
        "download"
    } else if path.contains("/reports/") {
        "report"
    } else if path.starts_with("/admin/") {
        "ingest"
    } else if path == "/"
        || path.starts_with("/assets/")
        || ["/signin", "/signout", "/session"].contains(&path)
    {
        "dashboard"
    } else if path == "/healthz" {
        "healthz"
    } else if path == "/metrics" {
        "metrics"
    } else if path.starts_with("/discovery/") {
        "jwks"
    } else {
        "other"
    }
}

/// The path as logged: an erasure's user id is not written to the logs
/// (`/admin/v1/tenants/{tid}/users/{id}` is logged with `{id}` in its place), as the audit
/// trail names the user only by a keyed digest.
fn redacted(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/admin/v1/tenants/") {
        Some(rest) if rest.contains("/users/") => {
            let tid = rest.split('/').next().unwrap_or_default();
            std::borrow::Cow::Owned(format!("/admin/v1/tenants/{tid}/users/{{id}}"))
        }
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// The request's `request-id`, for handlers (the audit trail records it).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn request_context(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    // A v4 UUID from the thread's RNG: no system call per request.
    let request_id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 256)
        .map(str::to_string);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route_label(&path);
    let logged = redacted(&path);
    let span = tracing::info_span!("request", request_id = %request_id, %method, path = %logged);
    let started = Instant::now();
    let timeout = state.settings.request_timeout;
    let mut resp = match tokio::time::timeout(timeout, next.run(req).instrument(span.clone())).await
    {
        Ok(resp) => resp,
        Err(_) => ApiError::RequestTimeout(format!(
            "The request was not answered within {} seconds.",
            timeout.as_secs()
        ))
        .into_response(),
    };

    if let Some(info) = resp.extensions_mut().remove::<ErrorInfo>() {
        let body = json!({"error": {
            "code": info.code,
            "message": info.message,
            "innerError": {
                "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id,
                "client-request-id": client_request_id.clone().unwrap_or_else(|| request_id.clone()),
            }
        }});
        *resp.body_mut() = Body::from(body.to_string());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if let Some(v) = client_request_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("client-request-id", v);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method: method_label(&method),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    resp
}
