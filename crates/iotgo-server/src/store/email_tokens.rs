//! The `email_tokens` table: single-use tokens mailed for e-mail verification, password
//! reset and e-mail change, kept as SHA-256 hashes only.

use super::{Millis, StoreError, StoreResult};
use sqlx::AnyPool;

/// What a mailed token is for (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Proves that a new account receives mail at its address.
    Verify,
    /// Lets the holder set a new password.
    Reset,
    /// Confirms a new e-mail address of an account.
    Change,
}

impl TokenKind {
    /// The value of the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Verify => "verify",
            TokenKind::Reset => "reset",
            TokenKind::Change => "change",
        }
    }
}

/// What a consumed token was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    /// The account's apikey.
    pub apikey: String,
    /// The address the link was mailed to (for [`TokenKind::Change`], the new address).
    pub email: String,
}

const PURGE_EXPIRED: &str = "DELETE FROM email_tokens WHERE expires_at <= $1";
const DELETE_KIND: &str = "DELETE FROM email_tokens WHERE apikey = $1 AND kind = $2";
const INSERT: &str = "INSERT INTO email_tokens \
                      (token_hash, kind, apikey, email, created_at, expires_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
const TAKE: &str = "DELETE FROM email_tokens WHERE token_hash = $1 AND kind = $2 \
                    RETURNING apikey, email, expires_at";
const VERIFY_USER: &str = "UPDATE users SET email_verified = 1 WHERE apikey = $1 AND email = $2";
const RESET_PASSWORD: &str = "UPDATE users SET password_hash = $1, email_verified = 1, \
                              token_version = token_version + 1 \
                              WHERE apikey = $2 AND email = $3 RETURNING token_version";
const OLD_EMAIL: &str = "SELECT email FROM users WHERE apikey = $1";
const CHANGE_EMAIL: &str = "UPDATE users SET email = $1, email_verified = 1 WHERE apikey = $2";

const LIVE: &str = "SELECT COUNT(*) FROM email_tokens \
                    WHERE token_hash = $1 AND kind = $2 AND expires_at > $3";

/// The `email_tokens` table (`Store::email_tokens`): borrows the store's write pool.
#[derive(Clone, Copy)]
pub struct EmailTokens<'a> {
    pub(super) write: &'a AnyPool,
}

impl EmailTokens<'_> {
    /// Keeps `token_hash` as the one live token of `kind` for the account, valid until
    /// `expires_at`: older tokens of that kind for the account, and every expired token,
    /// are deleted in the same transaction.
    pub async fn issue(
        &self,
        kind: TokenKind,
        apikey: &str,
        email: &str,
        token_hash: &str,
        expires_at: Millis,
    ) -> StoreResult<()> {
        let now = Millis::now();
        let mut tx = self.write.begin().await?;
        sqlx::query(PURGE_EXPIRED)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_KIND)
            .bind(apikey)
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT)
            .bind(token_hash)
            .bind(kind.as_str())
            .bind(apikey)
            .bind(email)
            .bind(now.0)
            .bind(expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_db)?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a token of `kind` with this hash exists and has not expired (without using
    /// it): a reset checks it before the costly hash of the new password.
    pub async fn is_live(&self, kind: TokenKind, token_hash: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(LIVE)
            .bind(token_hash)
            .bind(kind.as_str())
            .bind(Millis::now().0)
            .fetch_one(self.write)
            .await?;
        Ok(n > 0)
    }

    /// Deletes the token and returns what it was issued for, if it existed and had not
    /// expired: a token works once, whatever the outcome.
    async fn take(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        kind: TokenKind,
        token_hash: &str,
    ) -> StoreResult<Option<Redeemed>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(TAKE)
            .bind(token_hash)
            .bind(kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row
            .filter(|(_, _, expires_at)| *expires_at > Millis::now().0)
            .map(|(apikey, email, _)| Redeemed { apikey, email }))
    }

    /// Redeems a verification token: marks the account verified if its address is still
    /// the one the link was mailed to. `None` when the token is unknown, used or expired.
    pub async fn verify(&self, token_hash: &str) -> StoreResult<Option<Redeemed>> {
        let mut tx = self.write.begin().await?;
        let Some(r) = Self::take(&mut tx, TokenKind::Verify, token_hash).await? else {
            return Ok(None);
        };
        let changed = sqlx::query(VERIFY_USER)
            .bind(&r.apikey)
            .bind(&r.email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((changed == 1).then_some(r))
    }

    /// Redeems a reset token: sets the password hash, bumps the token version (every
    /// older JWT dies), marks the address verified (the link proved it) and deletes the
    /// account's other reset tokens. `None` when the token is unknown, used or expired,
    /// or the account's address changed since the link was mailed; else the account and
    /// its new token version.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> StoreResult<Option<(Redeemed, i64)>> {
        let mut tx = self.write.begin().await?;
        let Some(r) = Self::take(&mut tx, TokenKind::Reset, token_hash).await? else {
            return Ok(None);
        };
        let version: Option<i64> = sqlx::query_scalar(RESET_PASSWORD)
            .bind(password_hash)
            .bind(&r.apikey)
            .bind(&r.email)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(DELETE_KIND)
            .bind(&r.apikey)
            .bind(TokenKind::Reset.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version.map(|v| (r, v)))
    }

    /// Redeems an e-mail change token: the account takes the new address (verified);
    /// returns the token's account and new address, and the old address. `Ok(None)` when
    /// the token is unknown, used or expired; [`StoreError::Conflict`] when another
    /// account took the address meanwhile (the token is spent either way).
    pub async fn change_email(&self, token_hash: &str) -> StoreResult<Option<(Redeemed, String)>> {
        let mut tx = self.write.begin().await?;
        let Some(r) = Self::take(&mut tx, TokenKind::Change, token_hash).await? else {
            return Ok(None);
        };
        let old: Option<String> = sqlx::query_scalar(OLD_EMAIL)
            .bind(&r.apikey)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(old) = old else { return Ok(None) };
        let updated = sqlx::query(CHANGE_EMAIL)
            .bind(&r.email)
            .bind(&r.apikey)
            .execute(&mut *tx)
            .await;
        match updated.map_err(StoreError::from_db) {
            Ok(done) => {
                tx.commit().await?;
                Ok((done.rows_affected() == 1).then_some((r, old)))
            }
            Err(StoreError::Conflict) => {
                // Spend the token in its own statement: the failed one aborted the
                // PostgreSQL transaction.
                drop(tx);
                sqlx::query("DELETE FROM email_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(self.write)
                    .await?;
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e),
        }
    }
}
