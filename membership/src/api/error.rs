//! The API's error type: every error is a JSON body `{"error": {"status", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::cache::CacheError;
use crate::db::DbError;

/// An HTTP error with a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "status": self.status.as_u16(), "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, m),
            DbError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            DbError::Invalid(m) => Self::bad_request(m),
            other => {
                tracing::error!("database failure: {other}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal database error")
            }
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::BadPattern(m) => Self::bad_request(m),
            CacheError::Disabled => Self::new(StatusCode::CONFLICT, e.to_string()),
            other => Self::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        }
    }
}

/// Parses a positive integer id from a path segment.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "invalid {what} {raw:?}: must be a positive integer"
        ))),
    }
}
