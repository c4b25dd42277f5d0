//! One error type for the Web API, answered in the IoTgo shape `{"error": "<message>"}`.
//!
//! Business failures (wrong password, unknown device, …) answer HTTP 200, as the original
//! did and as its clients expect; requests that cannot be read answer 4xx; internal
//! failures are logged with their cause and answered with a generic 500; a saturated
//! server answers 503 with `Retry-After`, a throttled request 429 with `Retry-After`.

use crate::auth::PasswordError;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;
use std::time::Duration;
use utoipa::ToSchema;

/// The body of every Web API failure: `{"error": "<message>"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words for people.
    pub error: String,
}

impl ErrorBody {
    fn json(error: impl Into<String>) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: error.into(),
        })
    }
}

/// Why a Web API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A business failure: HTTP 200 with the message.
    #[error("{0}")]
    Business(Cow<'static, str>),
    /// The request cannot be read (malformed JSON, wrong types, bad query values).
    #[error("{0}")]
    BadRequest(String),
    /// Another HTTP status with its message (413 body too large, 415 wrong content type).
    #[error("{1}")]
    Status(StatusCode, String),
    /// No, invalid or expired token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token without the needed role.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such API path.
    #[error("Not found")]
    NotFound,
    /// A failure of ours; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// The server is saturated (password hashing): HTTP 503, retry after this long.
    #[error("The server is busy, please try again in a moment.")]
    Busy {
        /// Sent as `Retry-After`, in whole seconds.
        retry_after: Duration,
    },
    /// A throttle refused the request (logins, sign-ups): HTTP 429, retry after this long.
    #[error("Too many attempts, please try again in {} seconds.", whole_seconds(*retry_after))]
    Throttled {
        /// Sent as `Retry-After`, in whole seconds (at least 1).
        retry_after: Duration,
    },
}

/// A wait in whole seconds, rounded up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

impl ApiError {
    /// A business failure with a fixed message.
    pub const fn business(msg: &'static str) -> Self {
        ApiError::Business(Cow::Borrowed(msg))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdsExhausted => ApiError::business("Not enough device ids available!"),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            // Not logged: under a flood that would be a line per request; the HTTP
            // metrics count the 503s by route.
            PasswordError::Busy { retry_after } => ApiError::Busy { retry_after },
            PasswordError::Failed(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Business(_) => StatusCode::OK,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Status(s, _) => *s,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Busy { retry_after } | ApiError::Throttled { retry_after } => {
                let seconds = whole_seconds(*retry_after);
                let status = match &self {
                    ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                };
                let mut res = (status, ErrorBody::json(self.to_string())).into_response();
                res.headers_mut().insert(RETRY_AFTER, seconds.into());
                return res;
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::json("Internal server error"),
                )
                    .into_response();
            }
        };
        (status, ErrorBody::json(self.to_string())).into_response()
    }
}
