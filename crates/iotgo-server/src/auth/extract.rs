//! `Authorization: Bearer <jwt>` extractors for user and admin paths.

use crate::app::AppState;
use crate::error::ApiError;
use crate::store::UserRecord;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::Claims;

/// The signed-in user of a user path.
pub struct AuthUser(pub UserRecord);

/// The signed-in admin of an admin path (their e-mail address).
pub struct AuthAdmin(pub String);

fn claims(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized("Authorization required"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized(
            "Authorization must be: Bearer <token>",
        ))?;
    state
        .jwt
        .verify(token.trim())
        .ok_or(ApiError::Unauthorized("Invalid or expired token"))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = claims(parts, state)?;
        if c.is_admin {
            return Err(ApiError::Forbidden("Admin tokens cannot use user paths"));
        }
        match state.store.user_by_apikey(&c.sub).await? {
            // A password change bumps the version and retires every older token.
            Some(user) if user.token_version == c.ver => {
                tracing::Span::current().record("user", user.user.email.as_str());
                Ok(AuthUser(user))
            }
            _ => Err(ApiError::Unauthorized("Invalid or expired token")),
        }
    }
}

impl FromRequestParts<AppState> for AuthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = claims(parts, state)?;
        if !c.is_admin {
            return Err(ApiError::Forbidden("Admin only area"));
        }
        if !state.admins.contains(&c.email) {
            return Err(ApiError::Unauthorized("Invalid or expired token"));
        }
        tracing::Span::current().record("user", c.email.as_str());
        Ok(AuthAdmin(c.email))
    }
}
