//! `/api/user/email/…` and `/api/user/password/{forgot,reset}`: the account routes that
//! work by mail — verification of a new account's address, password reset, e-mail
//! change — and what sign-up and login ask of them (the mail at sign-up, `isActivated`).
//!
//! Each link carries a single-use token ([`crate::mail`]); these routes redeem it. They
//! answer `{}` or a business error like the other account routes; a forgotten-password
//! request answers `{}` whether the address has an account or not, and a request whose
//! mail is throttled answers as if it went out.

use super::extract::JsonBody;
use super::openapi::{BodyFailure, Empty, HashingBusy, OrError, Throttled, UserAuthFailure};
use super::user::Session;
use super::validate::{self, Required::NonBlank, Required::NonEmpty, required};
use crate::app::AppState;
use crate::auth::SignedInUser;
use crate::error::ApiError;
use crate::mail::token_hash;
use crate::net::ClientIp;
use crate::store::{StoreError, TokenKind, UserRecord};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(resend))
        .routes(routes!(forgot))
        .routes(routes!(reset))
        .routes(routes!(change))
        .routes(routes!(confirm))
}

const NO_MAIL: ApiError = ApiError::business("This server does not send e-mail.");
const BAD_LINK: ApiError =
    ApiError::business("This link is not valid: it was used already, or it expired.");
const TAKEN: ApiError =
    ApiError::business("Email address already exists, please choose another one.");

/// Whether `record` may use devices: always, unless `email_verification` is on and its
/// address is not verified. The JWT's `isActivated` says it.
pub(super) fn activated(state: &AppState, record: &UserRecord) -> bool {
    !state.config.email_verification || record.email_verified
}

/// A JWT for `record`.
pub(super) fn issue_jwt(state: &AppState, record: &UserRecord) -> Result<String, ApiError> {
    Ok(state
        .jwt
        .issue_user(&record.user, record.token_version, activated(state, record))?)
}

/// After a sign-up: mails the verification link when verification is on. A failure is
/// logged; the account stands, and the user can ask for the mail again.
pub(super) async fn welcome(state: &AppState, record: &UserRecord) {
    if activated(state, record) {
        return;
    }
    if let Err(e) = state.mail.send_verification(record).await {
        tracing::error!(error = %e, "cannot issue a verification token");
    }
}

/// A token from a mailed link.
#[derive(Deserialize, ToSchema)]
struct LinkToken {
    /// The `token` of the link.
    token: Option<String>,
}

impl LinkToken {
    /// The hash the database keys the token by.
    fn hash(&self) -> Result<String, ApiError> {
        let [token] = required(
            [NonBlank(self.token.as_deref())],
            "Token must not be empty!",
        )?;
        Ok(token_hash(token.trim()))
    }
}

/// Verifies the account's address with the token of the mailed link, and signs it in
/// (`isActivated: true`): the link proved the address, which could reset the password
/// anyway.
#[utoipa::path(post, path = "/api/user/email/verify", tag = "accounts",
    request_body = LinkToken,
    responses((status = 200, description = "A new session, or a business error",
        body = OrError<Session>), BodyFailure))]
async fn verify(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LinkToken>,
) -> Result<Json<Session>, ApiError> {
    let hash = body.hash()?;
    let redeemed = state.store.email_tokens().verify(&hash).await?;
    let Some(redeemed) = redeemed else {
        return Err(BAD_LINK);
    };
    let record = state.store.users().find_by_apikey(&redeemed.apikey).await?;
    let record = record.ok_or(BAD_LINK)?;
    let jwt = issue_jwt(&state, &record)?;
    Ok(Json(Session {
        jwt,
        user: record.user,
    }))
}

/// Mails the verification link again (throttled: a request too soon after the last
/// mail answers `{}` and sends nothing).
#[utoipa::path(post, path = "/api/user/email/resend", tag = "accounts",
    security(("user_jwt" = [])),
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        UserAuthFailure))]
async fn resend(
    State(state): State<AppState>,
    SignedInUser(me): SignedInUser,
) -> Result<Json<Empty>, ApiError> {
    if activated(&state, &me) {
        return Err(ApiError::business(
            "Your e-mail address needs no verification.",
        ));
    }
    state.mail.send_verification(&me).await?;
    Ok(Json(Empty {}))
}

/// An e-mail address.
#[derive(Deserialize, ToSchema)]
struct Address {
    /// The account's e-mail address.
    email: Option<String>,
}

/// Mails a password reset link (valid 30 minutes, once) to the account with this
/// address. Answers `{}` whether there is such an account or not, and sends nothing when
/// there is none or when the account had a mail too recently.
#[utoipa::path(post, path = "/api/user/password/forgot", tag = "accounts",
    request_body = Address,
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        BodyFailure, Throttled))]
async fn forgot(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(body): JsonBody<Address>,
) -> Result<Json<Empty>, ApiError> {
    let [email] = required(
        [NonBlank(body.email.as_deref())],
        "Email address must not be empty!",
    )?;
    let email = validate::email(email)?;
    if !state.mail.enabled() {
        return Err(NO_MAIL);
    }
    (state.throttles.forgot(client)).map_err(|retry_after| ApiError::Throttled { retry_after })?;
    state.mail.request_reset(email);
    Ok(Json(Empty {}))
}

/// The token of a reset link and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PasswordReset {
    /// The `token` of the link.
    token: Option<String>,
    /// The new password: at least 8 characters, at most 1024 bytes.
    new_password: Option<String>,
}

/// Sets a new password with the token of a reset link: the token works once, and every
/// token (JWT) of the account issued before stops working.
#[utoipa::path(post, path = "/api/user/password/reset", tag = "accounts",
    request_body = PasswordReset,
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        BodyFailure, HashingBusy))]
async fn reset(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PasswordReset>,
) -> Result<Json<Empty>, ApiError> {
    let [token, password] = required(
        [
            NonBlank(body.token.as_deref()),
            NonEmpty(body.new_password.as_deref()),
        ],
        "Token and new password must not be empty!",
    )?;
    validate::new_password(password)?;
    let hash = token_hash(token.trim());
    // A made-up token costs no password hash; the redemption below checks it again.
    if !state
        .store
        .email_tokens()
        .is_live(TokenKind::Reset, &hash)
        .await?
    {
        return Err(BAD_LINK);
    }
    let password_hash = state.passwords.hash(password.to_owned()).await?;
    // A lifecycle event: the sockets subscribed with an older token are cut too.
    let redeemed = state.devices.reset_password(&hash, &password_hash).await?;
    redeemed.ok_or(BAD_LINK)?;
    Ok(Json(Empty {}))
}

/// A new e-mail address, and the password that allows the change.
#[derive(Deserialize, ToSchema)]
struct EmailChange {
    /// The new address.
    email: Option<String>,
    /// The account's current password.
    password: Option<String>,
}

/// Asks to move the account to a new address: a link goes to the new address, and the
/// change happens when it is opened (the old address is then told). Throttled like the
/// other mails.
#[utoipa::path(post, path = "/api/user/email", tag = "accounts",
    request_body = EmailChange, security(("user_jwt" = [])),
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        UserAuthFailure, BodyFailure, HashingBusy))]
async fn change(
    State(state): State<AppState>,
    SignedInUser(me): SignedInUser,
    JsonBody(body): JsonBody<EmailChange>,
) -> Result<Json<Empty>, ApiError> {
    let [email, password] = required(
        [
            NonBlank(body.email.as_deref()),
            NonEmpty(body.password.as_deref()),
        ],
        "Email address and password must not be empty!",
    )?;
    let email = validate::email(email)?;
    if !state.mail.enabled() {
        return Err(NO_MAIL);
    }
    if !state
        .passwords
        .verify(password, Some(&me.password_hash))
        .await?
    {
        return Err(ApiError::business("Password is not correct!"));
    }
    if email == me.user.email {
        return Err(ApiError::business("This is your address already."));
    }
    if state.store.users().find_by_email(&email).await?.is_some() {
        return Err(TAKEN);
    }
    state.mail.send_change(&me, &email).await?;
    Ok(Json(Empty {}))
}

/// Moves the account to the new address with the token of the mailed link; the old
/// address gets a notice.
#[utoipa::path(post, path = "/api/user/email/confirm", tag = "accounts",
    request_body = LinkToken,
    responses((status = 200, description = "`{}`, or a business error", body = OrError<Empty>),
        BodyFailure))]
async fn confirm(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LinkToken>,
) -> Result<Json<Empty>, ApiError> {
    let hash = body.hash()?;
    match state.store.email_tokens().change_email(&hash).await {
        Ok(Some((redeemed, old))) => {
            state.mail.notify_changed(&old, &redeemed.email);
            Ok(Json(Empty {}))
        }
        Ok(None) => Err(BAD_LINK),
        Err(StoreError::Conflict) => Err(TAKEN),
        Err(e) => Err(e.into()),
    }
}
