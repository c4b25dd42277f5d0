//! Request extractors that answer bad input with a clear IoTgo error, never a panic.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A JSON body; malformed JSON or wrong field types answer 400, too large 413.
pub(super) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(r: JsonRejection) -> ApiError {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected Content-Type: application/json".into(),
        ),
        _ => ApiError::BadRequest(r.body_text()),
    }
}

/// Query-string parameters as plain text, parsed by each handler.
pub(super) struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| QueryMap(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}
