//! `Authorization: Bearer <jwt>` extractors for user and admin paths, and the one rule
//! that says which user a token names ([`signed_in_user`]).

use crate::app::AppState;
use crate::error::ApiError;
use crate::store::{Store, StoreError, UserRecord};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{Claims, Jwt};

/// The signed-in user of a user path. While `email_verification` is on, an account
/// that has not verified its address is refused (403): it may sign in and use the
/// account routes that take a [`SignedInUser`], not its devices.
pub struct AuthUser(pub UserRecord);

/// The signed-in user of an account path, verified or not (password and e-mail change,
/// re-sending the verification mail).
pub struct SignedInUser(pub UserRecord);

/// The signed-in admin of an admin path (their e-mail address).
pub struct AuthAdmin(pub String);

/// Why a token names no signed-in user.
#[derive(Debug)]
pub enum TokenRefused {
    /// Not signed by this server, expired, or retired by a password change (or its
    /// user is gone).
    Invalid,
    /// An admin's token, where a user's is needed.
    Admin,
    /// The database failed.
    Store(StoreError),
}

/// A user signed in by a token.
pub struct SignedIn {
    /// The user as stored now.
    pub user: UserRecord,
    /// When the token expires (seconds since the epoch): an open socket subscribed with
    /// it is cut then.
    pub expires: i64,
}

/// The user a token names: its signature and expiry are checked, and its version against
/// the user's row, so a password change, an apikey rotation or "sign out everywhere"
/// retires every older token. The Web API's user paths ([`AuthUser`]) and the
/// WebSocket's `subscribe` by token both ask here. The user's e-mail address goes into
/// the current span.
pub async fn signed_in_user(
    jwt: &Jwt,
    store: &Store,
    token: &str,
) -> Result<SignedIn, TokenRefused> {
    let claims = jwt.verify(token).ok_or(TokenRefused::Invalid)?;
    if claims.is_admin {
        return Err(TokenRefused::Admin);
    }
    match store.users().find_by_apikey(&claims.sub).await {
        Ok(Some(user)) if user.token_version == claims.ver => {
            tracing::Span::current().record("user", user.user.email.as_str());
            Ok(SignedIn {
                user,
                expires: claims.exp,
            })
        }
        Ok(_) => Err(TokenRefused::Invalid),
        Err(e) => Err(TokenRefused::Store(e)),
    }
}

/// The token of the `Authorization: Bearer <token>` header.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
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
    Ok(token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let SignedInUser(user) = SignedInUser::from_request_parts(parts, state).await?;
        if state.config.email_verification && !user.email_verified {
            return Err(ApiError::Forbidden(
                "Please verify your e-mail address first: open the link we mailed you.",
            ));
        }
        Ok(AuthUser(user))
    }
}

impl FromRequestParts<AppState> for SignedInUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match signed_in_user(&state.jwt, &state.store, bearer(parts)?).await {
            Ok(signed_in) => Ok(SignedInUser(signed_in.user)),
            Err(TokenRefused::Invalid) => Err(ApiError::Unauthorized("Invalid or expired token")),
            Err(TokenRefused::Admin) => {
                Err(ApiError::Forbidden("Admin tokens cannot use user paths"))
            }
            Err(TokenRefused::Store(e)) => Err(e.into()),
        }
    }
}

impl FromRequestParts<AppState> for AuthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c: Claims = state
            .jwt
            .verify(bearer(parts)?)
            .ok_or(ApiError::Unauthorized("Invalid or expired token"))?;
        if !c.is_admin {
            return Err(ApiError::Forbidden("Admin only area"));
        }
        if !state.admins.contains(&c.email) {
            return Err(ApiError::Unauthorized("Invalid or expired token"));
        }
        // Revoked admin tokens (an older version) are refused.
        if c.ver != state.admins.tokens().current().await? {
            return Err(ApiError::Unauthorized("Invalid or expired token"));
        }
        tracing::Span::current().record("user", c.email.as_str());
        Ok(AuthAdmin(c.email))
    }
}
