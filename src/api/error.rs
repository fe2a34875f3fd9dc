//! The one place where errors become HTTP statuses and Graph error codes.
//!
//! Handlers return [`ApiError`]; its response carries an [`ErrorInfo`] extension, and the
//! request-context middleware turns that into Graph's envelope with the request's ids and date.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::engine::EngineError;
use crate::ingest::IngestError;

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
        let mut resp = status.into_response();
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

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(e) => e.into(),
            EngineError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("background task failed: {e}"))
    }
}
