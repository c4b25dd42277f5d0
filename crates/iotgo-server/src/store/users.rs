//! The `users` table: sign-up, lookup, password change, the admin list and deletion.

use super::filter::Where;
use super::{Millis, StoreError, StoreResult, User, UserFilter, UserRecord};
use sqlx::AnyPool;

/// The columns of a [`UserRow`], spliced into the `SELECT`s below at compile time.
macro_rules! select_user {
    () => {
        "SELECT apikey, email, password_hash, token_version, created_at, email_verified FROM users"
    };
}

const INSERT: &str = "INSERT INTO users \
                      (apikey, email, password_hash, token_version, created_at, email_verified) \
                      VALUES ($1, $2, $3, 0, $4, $5)";
const BY_EMAIL: &str = concat!(select_user!(), " WHERE email = $1");
const BY_APIKEY: &str = concat!(select_user!(), " WHERE apikey = $1");
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1, \
                            token_version = token_version + 1 \
                            WHERE apikey = $2 RETURNING token_version";
const BUMP_VERSION: &str = "UPDATE users SET token_version = token_version + 1 \
                            WHERE apikey = $1 RETURNING token_version";
const ROTATE: &str = "UPDATE users SET apikey = $1, token_version = token_version + 1 \
                      WHERE apikey = $2 RETURNING token_version";
const ROTATE_DEVICES: &str =
    "UPDATE devices SET apikey = $1 WHERE apikey = $2 RETURNING deviceid, device_key";
const LIST: &str = select_user!();
const COUNT: &str = "SELECT COUNT(*) FROM users";
const DELETE_DEVICES: &str = "DELETE FROM devices WHERE apikey = $1 RETURNING deviceid";
const DELETE: &str = "DELETE FROM users WHERE apikey = $1";

/// What an apikey rotation changed.
#[derive(Debug)]
pub struct Rotated {
    /// The user's new token version.
    pub token_version: i64,
    /// The user's devices: (deviceid, device key).
    pub devices: Vec<(String, String)>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    apikey: String,
    email: String,
    password_hash: String,
    token_version: i64,
    created_at: i64,
    email_verified: i64,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        UserRecord {
            user: User {
                email: r.email,
                apikey: r.apikey,
                created_at: Millis(r.created_at),
            },
            password_hash: r.password_hash,
            token_version: r.token_version,
            email_verified: r.email_verified != 0,
        }
    }
}

/// The `users` table (`Store::users`): borrows the store's pools.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub(super) read: &'a AnyPool,
    pub(super) write: &'a AnyPool,
}

impl Users<'_> {
    /// Creates a user; [`StoreError::Conflict`] when the e-mail address is taken.
    /// `email_verified` is false only for a sign-up that must verify its address.
    pub async fn create(
        &self,
        email: &str,
        apikey: &str,
        password_hash: &str,
        email_verified: bool,
    ) -> StoreResult<UserRecord> {
        let now = Millis::now();
        sqlx::query(INSERT)
            .bind(apikey)
            .bind(email)
            .bind(password_hash)
            .bind(now.0)
            .bind(i64::from(email_verified))
            .execute(self.write)
            .await
            .map_err(StoreError::from_db)?;
        Ok(UserRecord {
            user: User {
                email: email.to_owned(),
                apikey: apikey.to_owned(),
                created_at: now,
            },
            password_hash: password_hash.to_owned(),
            token_version: 0,
            email_verified,
        })
    }

    /// The user with this (lowercased) e-mail address.
    pub async fn find_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(BY_EMAIL)
            .bind(email)
            .fetch_optional(self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    /// The user with this apikey.
    pub async fn find_by_apikey(&self, apikey: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(BY_APIKEY)
            .bind(apikey)
            .fetch_optional(self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Replaces the password hash and bumps the token version; returns the new version.
    pub async fn set_password(&self, apikey: &str, password_hash: &str) -> StoreResult<i64> {
        let version: i64 = sqlx::query_scalar(SET_PASSWORD)
            .bind(password_hash)
            .bind(apikey)
            .fetch_one(self.write)
            .await?;
        Ok(version)
    }

    /// Bumps the token version ("sign out everywhere"): every token of the user dies.
    /// The new version, `None` when there is no such user.
    pub async fn bump_token_version(&self, apikey: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(BUMP_VERSION)
            .bind(apikey)
            .fetch_optional(self.write)
            .await?)
    }

    /// Replaces the user's apikey `old` with `new`, on the user and as the owner of each of
    /// their devices, and bumps the token version, in one transaction
    /// (`DeviceApi::rotate_apikey` calls it, then updates the caches). The new token
    /// version and the user's devices (deviceid, device key); `None` when there is no such
    /// user.
    pub(crate) async fn rotate_apikey(&self, old: &str, new: &str) -> StoreResult<Option<Rotated>> {
        let mut tx = self.write.begin().await?;
        let version: Option<i64> = sqlx::query_scalar(ROTATE)
            .bind(new)
            .bind(old)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_db)?;
        let Some(token_version) = version else {
            return Ok(None);
        };
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(ROTATE_DEVICES)
            .bind(new)
            .bind(old)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let devices = rows
            .into_iter()
            .map(|(id, key)| (id, key.unwrap_or_default()))
            .collect();
        Ok(Some(Rotated {
            token_version,
            devices,
        }))
    }

    /// Users matching `filter`, newest first, with the number of matches before paging.
    pub async fn list(&self, filter: &UserFilter) -> StoreResult<(Vec<User>, i64)> {
        let w = Where::users(filter);
        let (rows, total): (Vec<UserRow>, i64) = w
            .fetch_page(self.read, COUNT, LIST, "apikey", filter.page)
            .await?;
        Ok((
            rows.into_iter().map(|r| UserRecord::from(r).user).collect(),
            total,
        ))
    }

    /// Deletes a user, every device they own and its history, in one transaction; the
    /// user as they were and the deleted deviceids (`DeviceApi::delete_user` calls it,
    /// then clears the caches).
    pub(crate) async fn delete(&self, apikey: &str) -> StoreResult<Option<(User, Vec<String>)>> {
        let mut tx = self.write.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(BY_APIKEY)
            .bind(apikey)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        // The devices' history chunks go with their rows (foreign key, cascade).
        let devices: Vec<String> = sqlx::query_scalar(DELETE_DEVICES)
            .bind(apikey)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query(DELETE).bind(apikey).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((UserRecord::from(row).user, devices)))
    }
}
