//! The one place where errors become HTTP statuses and Graph error codes.
//!
//! Handlers return [`ApiError`]; its response carries an [`ErrorInfo`] extension, and the
//! request-context middleware turns that into Graph's envelope with the request's ids and date.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::engine::EngineError;
use crate::ingest::IngestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LinkDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A fault injected by `--chaos-rate`, with the status it chose.
    #[error(
        "Injected fault (--chaos-rate): the server answers {status} on purpose so clients can test their retry logic."
    )]
    Injected {
        status: u16,
        retry_after: Option<u64>,
    },
    /// The store cannot be reached; the client should retry later.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the envelope needs; attached to error responses for the middleware to render.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

/// Graph's code for a status, for injected faults.
fn injected_code(status: u16) -> (StatusCode, &'static str) {
    match status {
        429 => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
        502 => (StatusCode::BAD_GATEWAY, "BadGateway"),
        503 => (StatusCode::SERVICE_UNAVAILABLE, "ServiceNotAvailable"),
        504 => (StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
    }
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => {
                (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "S2SUnauthorized"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            ApiError::LinkDenied(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFound"),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge")
            }
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "RequestTimeout"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            ApiError::Injected { status, .. } => injected_code(*status),
            ApiError::ServiceUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceNotAvailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "An internal server error occurred.".to_string()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            ApiError::Injected { retry_after, .. } => *retry_after,
            ApiError::ServiceUnavailable(_) => Some(5),
            _ => None,
        };
        let mut resp = status.into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp.extensions_mut().insert(ErrorInfo { code, message });
        resp
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid(_) => ApiError::Unauthenticated(e.to_string()),
            AuthError::Forbidden(m) => ApiError::Forbidden(m),
            AuthError::KeyStore(m) => ApiError::Internal(m),
        }
    }
}

impl From<crate::auth::signin::SigninError> for ApiError {
    fn from(e: crate::auth::signin::SigninError) -> Self {
        use crate::auth::signin::SigninError;
        match e {
            SigninError::Invalid | SigninError::Expired | SigninError::Used => {
                ApiError::Unauthenticated(e.to_string())
            }
            SigninError::Io(m) => ApiError::Internal(m),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(e) => e.into(),
            EngineError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, "the store is unavailable");
                ApiError::ServiceUnavailable(
                    "The service is temporarily unavailable: its database cannot be reached. Retry later."
                        .into(),
                )
            }
            EngineError::Store(StoreError::Conflict(detail)) => {
                tracing::info!(%detail, "a batch met another node's write");
                ApiError::ServiceUnavailable(
                    "The tenant was changed by another node while this batch was planned; nothing of it was stored. Retry the batch."
                        .into(),
                )
            }
            EngineError::Store(e) => ApiError::Internal(e.to_string()),
            EngineError::Read(e) => {
                ApiError::BadRequest(format!("The request body could not be read: {e}"))
            }
        }
    }
}

impl From<crate::reports::ReportError> for ApiError {
    fn from(e: crate::reports::ReportError) -> Self {
        match e {
            crate::reports::ReportError::DateOutOfRange(_) => {
                ApiError::InvalidArgument(e.to_string())
            }
            crate::reports::ReportError::BadArgs { .. } => ApiError::BadRequest(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("background task failed: {e}"))
    }
}

/// Errors of the Entra-compatible token endpoint, in Entra's own shape (not Graph's):
/// `error`, `error_description`, `error_codes`, `timestamp`, `trace_id`, `correlation_id`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
    pub correlation_id: String,
}

impl OAuthError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        OAuthError {
            status,
            error,
            code,
            description: description.into(),
            correlation_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn invalid_request(code: u32, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, d)
    }
    pub fn invalid_client(code: u32, d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, d)
    }
    pub fn invalid_resource(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_resource", 500011, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, d)
    }

    pub fn with_correlation(mut self, id: Option<String>) -> Self {
        if let Some(id) = id {
            self.correlation_id = id;
        }
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = serde_json::json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {} Timestamp: {timestamp}",
                self.code, self.description, self.correlation_id
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": self.correlation_id,
        });
        (
            self.status,
            [
                (axum::http::header::CACHE_CONTROL, "no-store, no-cache"),
                (axum::http::header::PRAGMA, "no-cache"),
            ],
            axum::Json(body),
        )
            .into_response()
    }
}
