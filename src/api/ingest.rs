//! `POST /admin/v1/tenants/{tid}/ingest`: one NDJSON batch, applied atomically and durably.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use serde_json::{Value, json};

use super::audit_log::record;
use super::context::RequestId;
use super::reports::bearer_claims;
use super::{ApiError, AppState};
use crate::auth::policy;
use crate::engine::StreamOptions;
use crate::model::TenantId;

pub async fn ingest(
    State(state): State<Arc<AppState>>,
    req: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let path = req.uri().path().to_string();
    let tid_raw = path
        .strip_prefix("/admin/v1/tenants/")
        .and_then(|p| p.strip_suffix("/ingest"))
        .unwrap_or_default();
    let claims = bearer_claims(&state, req.headers()).await?;
    let rid = req.extensions().get::<RequestId>().cloned();
    let tid = TenantId::parse(tid_raw)
        .ok_or_else(|| ApiError::BadRequest(format!("'{tid_raw}' is not a valid tenant id.")))?;
    policy::write_report_data(&claims, &tid)?;

    let max = state.settings.max_body_bytes;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "The request body is larger than the limit of {max} bytes. Send several batches, or use `reportroot ingest` for bulk loads."
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let body = read_body(req.into_body(), max, declared)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => too_large(),
            BodyError::Read(e) => {
                ApiError::BadRequest(format!("The request body could not be read: {e}"))
            }
        })?;

    let st = state.clone();
    let claims_for_audit = claims.clone();
    let limits = state.settings.ingest_limits;
    let outcome = tokio::task::spawn_blocking(move || {
        // Big bodies are parsed on every core, in blocks pipelined with planning.
        let threads = if body.len() > 4 << 20 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        let opts = StreamOptions {
            limits,
            // No bigger than the body: the block buffer is zero-filled before each read.
            block_bytes: (16usize << 20).min(body.len().max(1)),
            threads,
            write_early: false,
        };
        // The registry fills in the batch's figures.
        let audit = record(&claims_for_audit, rid.as_ref(), "ingest", "", String::new());
        // At a lower priority: report calls come first on a busy machine.
        crate::engine::in_background(|| {
            st.registry
                .ingest_stream(&tid, &body[..], &opts, Some(&audit), |_| {})
        })
    })
    .await?;
    match outcome {
        Ok(o) => {
            state.metrics.ingested_batches.inc();
            state.metrics.ingested_records.inc_by(o.ingested as u64);
            tracing::info!(tenant = %claims.tid, records = o.ingested, version = o.version, "batch ingested");
            Ok(Json(json!({
                "ingested": o.ingested,
                "refreshDate": o.refresh_date.map(|d| d.to_string()),
            })))
        }
        Err(e) => {
            state.metrics.rejected_batches.inc();
            Err(e.into())
        }
    }
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Collects the body into one buffer sized from `Content-Length` up front, copying each
/// frame as it arrives. `axum::body::to_bytes` keeps the frames and joins them with one
/// copy of the whole batch in its last poll (256 MB: tens of milliseconds holding a runtime
/// worker while report calls queued behind it).
async fn read_body(body: Body, max: usize, declared: Option<u64>) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt;
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut out = Vec::with_capacity(hint);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
