//! The audit trail over HTTP: how a request becomes an [`AuditRecord`] (who: the token's
//! `appid`/`oid` and app name; the `request-id`), and `GET /admin/v1/tenants/{tid}/auditLog`,
//! the tenant's chain as paged JSON (`$top`, then `@odata.nextLink` with `$skiptoken` = the
//! last seq shown), each entry with its hashes so a reader can verify the chain.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::context::RequestId;
use super::{ApiError, AppState};
use crate::audit;
use crate::auth::Claims;
use crate::store::{AuditEntry, AuditRecord};

/// The record of a change made by the caller of this request.
pub fn record(
    claims: &Claims,
    rid: Option<&RequestId>,
    action: &str,
    target: &str,
    details: String,
) -> AuditRecord {
    AuditRecord {
        at_ms: audit::now_ms(),
        app_id: claims
            .appid
            .clone()
            .or_else(|| claims.azp.clone())
            .unwrap_or_default(),
        object_id: claims.oid.clone().unwrap_or_default(),
        actor_name: claims.app_displayname.clone().unwrap_or_default(),
        action: action.into(),
        target: target.into(),
        details,
        request_id: rid.map(|r| r.0.clone()).unwrap_or_default(),
    }
}

/// An entry as the API and `reportroot audit` show it.
pub fn entry_json(e: &AuditEntry) -> Value {
    let details: Value = serde_json::from_str(&e.record.details).unwrap_or(Value::Null);
    let at = chrono::DateTime::from_timestamp_millis(e.record.at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    json!({
        "tenantId": e.tenant,
        "sequence": e.seq,
        "activityDateTime": at,
        "action": e.record.action,
        "target": e.record.target,
        "initiatedBy": {
            "appId": e.record.app_id,
            "objectId": e.record.object_id,
            "displayName": e.record.actor_name,
        },
        "details": details,
        "requestId": e.record.request_id,
        "previousHash": audit::hex(&e.prev),
        "hash": audit::hex(&e.hash),
    })
}

const MAX_TOP: usize = 1000;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(tid_raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (tid, _) = super::tenants::authorise(&state, &tid_raw, &headers).await?;
    let top = match query.get("$top") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("$top must be a number from 1 to {MAX_TOP}."))
            })?,
    };
    let after = match query.get("$skiptoken") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest("The $skiptoken is not valid.".into()))?,
    };
    let st = state.clone();
    let t = tid.clone();
    let entries = tokio::task::spawn_blocking(move || {
        st.registry.store().audit_entries(Some(&t), after, top + 1)
    })
    .await?
    .map_err(crate::engine::EngineError::from)?;
    let more = entries.len() > top;
    let shown = &entries[..entries.len().min(top)];
    let mut body = json!({
        "@odata.context": format!("/admin/v1/tenants/{tid}/auditLog"),
        "value": shown.iter().map(entry_json).collect::<Vec<_>>(),
    });
    if more && let Some(last) = shown.last() {
        body["@odata.nextLink"] = json!(format!(
            "{}/admin/v1/tenants/{tid}/auditLog?$top={top}&$skiptoken={}",
            super::reports::base_url(&state, &headers),
            last.seq
        ));
    }
    Ok(Json(body))
}
