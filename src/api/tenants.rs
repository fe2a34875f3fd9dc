//! `GET` and `DELETE /admin/v1/tenants/{tid}`: what is stored of a tenant, and its removal;
//! `DELETE /admin/v1/tenants/{tid}/users/{id}`: the erasure of one user. Authorised exactly
//! as ingest: an app token of that tenant with `ReportData.ReadWrite.All`.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::audit_log::record;
use super::context::RequestId;
use super::reports::bearer_claims;
use super::{ApiError, AppState};
use crate::auth::{Claims, policy};
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
pub(super) async fn authorise(
    state: &AppState,
    tid_raw: &str,
    headers: &HeaderMap,
) -> Result<(TenantId, Claims), ApiError> {
    let claims = bearer_claims(state, headers).await?;
    let tid = TenantId::parse(tid_raw)
        .ok_or_else(|| ApiError::BadRequest(format!("'{tid_raw}' is not a valid tenant id.")))?;
    policy::write_report_data(&claims, &tid)?;
    Ok((tid, claims))
}

fn not_found(tid: &TenantId) -> ApiError {
    ApiError::NotFound(format!("No data is stored for tenant '{tid}'."))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(tid_raw): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (tid, _) = authorise(&state, &tid_raw, &headers).await?;
    let st = state.clone();
    let t = tid.clone();
    let stats = tokio::task::spawn_blocking(move || st.registry.stats(&t)).await??;
    let stats = stats.ok_or_else(|| not_found(&tid))?;
    Ok(Json(stats_json(&tid, &stats)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(tid_raw): Path<String>,
    rid: Option<Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (tid, claims) = authorise(&state, &tid_raw, &headers).await?;
    let audit = record(
        &claims,
        rid.as_deref(),
        "tenant.delete",
        tid.as_str(),
        "{}".into(),
    );
    let st = state.clone();
    let t = tid.clone();
    let existed = tokio::task::spawn_blocking(move || {
        st.registry
            .delete_tenant(&t, &audit, || st.cache.forget(&t))
    })
    .await??;
    if !existed {
        return Err(not_found(&tid));
    }
    tracing::info!(tenant = %tid, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /admin/v1/tenants/{tid}/users/{id}`: erases the user (see
/// [`crate::engine::Erasure`]). 204 when done (durably), 404 when the tenant holds no such
/// user. The audit entry names the user only by [`crate::audit::erasure_digest`].
pub async fn erase_user(
    State(state): State<Arc<AppState>>,
    Path((tid_raw, user_id)): Path<(String, String)>,
    rid: Option<Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (tid, claims) = authorise(&state, &tid_raw, &headers).await?;
    let digest = crate::audit::erasure_digest(
        state.verifier.authority().digest_secret(),
        tid.as_str(),
        &user_id,
    );
    let mut audit = record(
        &claims,
        rid.as_deref(),
        "user.erase",
        &digest,
        String::new(),
    );
    let st = state.clone();
    let t = tid.clone();
    let erased = tokio::task::spawn_blocking(move || {
        // The details name counts only; the version is the tenant's next.
        let version = st.registry.read(&t, |s| s.version() + 1)?;
        audit.details = format!("{{\"version\":{version}}}");
        st.registry
            .erase_user(&t, &user_id, &audit, || st.cache.forget(&t))
    })
    .await??;
    match erased {
        Some(e) => {
            tracing::info!(tenant = %tid, version = e.version, sites = e.sites, "user erased");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::NotFound(format!(
            "Tenant '{tid}' holds no user with that id."
        ))),
    }
}
