//! Fault injection for client testing (`--chaos-rate`): a share of report calls and downloads
//! is answered with an error status in Graph's shape, with `Retry-After` on 429 and 503.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use super::{ApiError, AppState};

fn is_graph_call(path: &str) -> bool {
    path.starts_with("/v1.0/") || path.starts_with("/beta/") || path.starts_with("/data/download/")
}

pub async fn inject(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(chaos) = &state.settings.chaos
        && !chaos.codes.is_empty()
        && is_graph_call(req.uri().path())
    {
        let (hit, status, retry) = {
            let mut rng = rand::thread_rng();
            let hit = rng.gen_bool(chaos.rate.clamp(0.0, 1.0));
            let status = chaos.codes[rng.gen_range(0..chaos.codes.len())];
            (hit, status, rng.gen_range(1..=3u64))
        };
        if hit {
            let retry_after = matches!(status, 429 | 503).then_some(retry);
            tracing::info!(status, "injecting a fault");
            return ApiError::Injected {
                status,
                retry_after,
            }
            .into_response();
        }
    }
    next.run(req).await
}
