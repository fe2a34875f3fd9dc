//! `GET` and `DELETE /admin/v1/tenants/{tid}`: what is stored of a tenant, and its removal.
//! Authorised exactly as ingest: an app token of that tenant with `ReportData.ReadWrite.All`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::reports::bearer_claims;
use super::{ApiError, AppState};
use crate::auth::policy;
use crate::model::TenantId;
use crate::store::TenantStats;

/// The JSON of `GET /admin/v1/tenants/{tid}` and `reportroot tenants show`.
pub fn stats_json(tid: &TenantId, s: &TenantStats) -> Value {
    json!({
        "tenantId": tid.as_str(),
        "users": s.users,
        "activityDays": s.activity_days,
        "firstActivityDate": s.first_activity.map(|d| d.to_string()),
        "lastActivityDate": s.last_activity.map(|d| d.to_string()),
        "reportRefreshDate": s.meta.explicit_refresh.or(s.meta.max_activity).map(|d| d.to_string()),
        "dataVersion": s.meta.version,
        "bytesStored": s.bytes,
    })
}

/// The token check of ingest, for the tenant named in the path.
async fn authorise(
    state: &AppState,
    tid_raw: &str,
    headers: &HeaderMap,
) -> Result<TenantId, ApiError> {
    let claims = bearer_claims(state, headers).await?;
    let tid = TenantId::parse(tid_raw)
        .ok_or_else(|| ApiError::BadRequest(format!("'{tid_raw}' is not a valid tenant id.")))?;
    policy::write_report_data(&claims, &tid)?;
    Ok(tid)
}

fn not_found(tid: &TenantId) -> ApiError {
    ApiError::NotFound(format!("No data is stored for tenant '{tid}'."))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(tid_raw): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tid = authorise(&state, &tid_raw, &headers).await?;
    let st = state.clone();
    let t = tid.clone();
    let stats = tokio::task::spawn_blocking(move || st.registry.stats(&t)).await??;
    let stats = stats.ok_or_else(|| not_found(&tid))?;
    Ok(Json(stats_json(&tid, &stats)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(tid_raw): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let tid = authorise(&state, &tid_raw, &headers).await?;
    let st = state.clone();
    let t = tid.clone();
    let existed =
        tokio::task::spawn_blocking(move || st.registry.delete_tenant(&t, || st.cache.forget(&t)))
            .await??;
    if !existed {
        return Err(not_found(&tid));
    }
    tracing::info!(tenant = %tid, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}
