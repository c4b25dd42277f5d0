//! `/api/user/{register,login,password}`: accounts.

use super::account;
use super::extract::JsonBody;
use super::openapi::{BodyFailure, Empty, HashingBusy, OrError, Throttled, UserAuthFailure};
use super::validate::{
    self,
    Required::{NonBlank, NonEmpty},
    required,
};
use crate::app::AppState;
use crate::auth::SignedInUser;
use crate::captcha;
use crate::error::ApiError;
use crate::net::ClientIp;
use crate::store::{StoreError, User};
use crate::throttle::Realm;
use axum::Json;
use axum::extract::State;
use iotgo_protocol::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(password))
}

/// An e-mail address and a password.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    /// The e-mail address (trimmed and lowercased).
    email: Option<String>,
    /// The password: at least 8 characters, at most 1024 bytes for a new one.
    password: Option<String>,
    /// The captcha token (registration only, when the server asks for a captcha).
    response: Option<String>,
}

/// `{jwt, user}`, the answer of register, login and an apikey rotation.
#[derive(Serialize, ToSchema)]
pub(super) struct Session {
    /// The login token for `Authorization: Bearer`.
    pub(super) jwt: String,
    /// The signed-in user.
    pub(super) user: User,
}

fn non_empty(c: &Credentials) -> Result<[&str; 2], ApiError> {
    required(
        [
            NonBlank(c.email.as_deref()),
            NonEmpty(c.password.as_deref()),
        ],
        "Email address and password must not be empty!",
    )
}

/// Signs up: makes an account and signs it in.
#[utoipa::path(post, path = "/api/user/register", tag = "accounts", request_body = Credentials,
    responses((status = 200, description = "The new session, or a business error",
        body = OrError<Session>), BodyFailure, HashingBusy, Throttled))]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Session>, ApiError> {
    let [email, password] = non_empty(&body)?;
    let email = validate::email(email)?;
    validate::new_password(password)?;
    // Counted once the input is valid, before the captcha check and the hash it costs.
    (state.throttles.register(client))
        .map_err(|retry_after| ApiError::Throttled { retry_after })?;
    if let Some(secret) = &state.config.recaptcha_secret {
        let token = body.response.as_deref().unwrap_or_default();
        if token.is_empty() {
            return Err(ApiError::business("reCAPTCHA verification is required!"));
        }
        let url = &state.config.recaptcha_url;
        match captcha::verify(&state.http, url, secret, token).await {
            Ok(true) => {}
            Ok(false) => return Err(ApiError::business("reCAPTCHA verification failed!")),
            Err(e) => {
                tracing::warn!(error = %e, "captcha verifier failed; refusing the sign-up");
                return Err(ApiError::business(
                    "reCAPTCHA verification failed! Please try again later.",
                ));
            }
        }
    }
    let hash = state.passwords.hash(password.to_owned()).await?;
    let apikey = ApiKey::generate();
    let record = match state
        .store
        .users()
        .create(
            &email,
            apikey.as_str(),
            &hash,
            !state.config.email_verification,
        )
        .await
    {
        Err(StoreError::Conflict) => {
            return Err(ApiError::business(
                "Email address already exists, please choose another one.",
            ));
        }
        other => other?,
    };
    account::welcome(&state, &record).await;
    let jwt = account::issue_jwt(&state, &record)?;
    Ok(Json(Session {
        jwt,
        user: record.user,
    }))
}

/// Signs in with an e-mail address and password.
#[utoipa::path(post, path = "/api/user/login", tag = "accounts", request_body = Credentials,
    responses((status = 200, description = "The session, or a business error",
        body = OrError<Session>), BodyFailure, HashingBusy, Throttled))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Session>, ApiError> {
    let [email, password] = non_empty(&body)?;
    let wrong = || ApiError::business("Email address or password is not correct!");
    let email = email.trim().to_lowercase();
    let attempt = (state.throttles.login(Realm::User, client, &email))
        .map_err(|retry_after| ApiError::Throttled { retry_after })?;
    let record = state.store.users().find_by_email(&email).await?;
    // An unknown address is verified against a dummy hash: it answers no faster.
    let hash = record.as_ref().map(|r| r.password_hash.as_str());
    let verified = state.passwords.verify(password, hash).await?;
    let record = record.filter(|_| verified).ok_or_else(wrong)?;
    attempt.succeeded();
    let jwt = account::issue_jwt(&state, &record)?;
    Ok(Json(Session {
        jwt,
        user: record.user,
    }))
}

/// The current password and a new one.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PasswordChange {
    /// The current password.
    old_password: Option<String>,
    /// The new password: at least 8 characters, at most 1024 bytes.
    new_password: Option<String>,
}

/// Changes the caller's password; every older token of theirs stops working, and the
/// WebSockets subscribed with one are cut.
#[utoipa::path(post, path = "/api/user/password", tag = "accounts",
    request_body = PasswordChange, security(("user_jwt" = [])),
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        UserAuthFailure, BodyFailure, HashingBusy))]
async fn password(
    State(state): State<AppState>,
    SignedInUser(me): SignedInUser,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<Json<Empty>, ApiError> {
    let [old, new] = required(
        [
            NonEmpty(body.old_password.as_deref()),
            NonEmpty(body.new_password.as_deref()),
        ],
        "Old password and new password must not be empty!",
    )?;
    validate::new_password(new)?;
    if !state.passwords.verify(old, Some(&me.password_hash)).await? {
        return Err(ApiError::business("Old password is not correct!"));
    }
    let hash = state.passwords.hash(new.to_owned()).await?;
    // A lifecycle event: the sockets subscribed with an older token are cut too.
    state
        .devices
        .change_password(&me.user.apikey, &hash)
        .await?;
    Ok(Json(Empty {}))
}
