//! `GET`/`PATCH /{v1.0|beta}/admin/reportSettings`: whether detail reports conceal user
//! names (`displayConcealedNames`, on by default as in Graph since 2021).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::reports::{base_url, bearer_claims};
use super::{ApiError, AppState};
use crate::auth::policy;
use crate::store::ReportSettings;

fn version_of(uri: &Uri) -> Result<&'static str, ApiError> {
    match uri.path().trim_start_matches('/').split('/').next() {
        Some("v1.0") => Ok("v1.0"),
        Some("beta") => Ok("beta"),
        _ => Err(ApiError::NotFound(format!(
            "Resource not found for the segment '{}'.",
            uri.path()
        ))),
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = version_of(&uri)?;
    let claims = bearer_claims(&state, &headers).await?;
    let tid = policy::report_settings(&claims, false)?;
    let st = state.clone();
    let settings = tokio::task::spawn_blocking(move || st.registry.report_settings(&tid)).await??;
    let base = base_url(&state, &headers);
    Ok(Json(json!({
        "@odata.context": format!("{base}/{version}/$metadata#admin/reportSettings/$entity"),
        "displayConcealedNames": settings.display_concealed_names,
    }))
    .into_response())
}

pub async fn patch(
    State(state): State<Arc<AppState>>,
    rid: Option<axum::Extension<super::context::RequestId>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    version_of(&uri)?;
    let claims = bearer_claims(&state, &headers).await?;
    let tid = policy::report_settings(&claims, true)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(props) = value else {
        return Err(ApiError::BadRequest(
            "The request body must be a JSON object.".into(),
        ));
    };
    let mut concealed = None;
    for (k, v) in props {
        match (k.as_str(), v) {
            ("displayConcealedNames", Value::Bool(b)) => concealed = Some(b),
            ("displayConcealedNames", other) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid value {other} for the property 'displayConcealedNames': use true or false."
                )));
            }
            ("@odata.type" | "@odata.context" | "id", _) => {}
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "The property '{other}' does not exist on type 'microsoft.graph.adminReportSettings'."
                )));
            }
        }
    }
    if let Some(display_concealed_names) = concealed {
        let st = state.clone();
        let audit = super::audit_log::record(
            &claims,
            rid.as_deref(),
            "reportSettings.update",
            "",
            format!("{{\"displayConcealedNames\":{display_concealed_names}}}"),
        );
        tokio::task::spawn_blocking(move || {
            st.registry.set_report_settings(
                &tid,
                ReportSettings {
                    display_concealed_names,
                },
                &audit,
            )
        })
        .await??;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
