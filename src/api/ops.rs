//! Operational endpoints and the fallbacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, AppState};

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let (tenants, bytes) = state.registry.memory();
    state.metrics.tenants_loaded.set(tenants as i64);
    state.metrics.tenant_state_bytes.set(bytes as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

pub async fn jwks(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(state.verifier.authority().jwks())
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "Resource not found for the segment '{}'.",
        uri.path()
    ))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("The HTTP method is not allowed for this resource.".into())
}
