//! Operational endpoints and the fallbacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, AppState};

/// How long `/healthz` waits for the store's answer.
const STORE_CHECK: std::time::Duration = std::time::Duration::from_secs(3);

/// 200 when the store answers a trivial query, else 503 with `Retry-After` (a load
/// balancer takes the node out of rotation while its database is away).
pub async fn healthz(State(state): State<Arc<AppState>>) -> axum::response::Response {
    let store = state.registry.store().clone();
    let check = tokio::task::spawn_blocking(move || store.ping());
    let problem = match tokio::time::timeout(STORE_CHECK, check).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e.to_string()),
        Ok(Err(e)) => Some(format!("the store check failed: {e}")),
        Err(_) => Some(format!(
            "the store did not answer within {} s",
            STORE_CHECK.as_secs()
        )),
    };
    match problem {
        None => Json(json!({"status": "ok", "store": "ok"})).into_response(),
        Some(detail) => {
            tracing::warn!(%detail, "health check: the store is unreachable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({"status": "unavailable", "store": detail})),
            )
                .into_response()
        }
    }
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
