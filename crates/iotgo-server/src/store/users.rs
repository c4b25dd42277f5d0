//! The `users` table: sign-up, lookup, password change, the admin list and deletion.

use super::filter::Where;
use super::{Millis, StoreError, StoreResult, User, UserFilter, UserRecord};
use sqlx::AnyPool;

/// The columns of a [`UserRow`], spliced into the `SELECT`s below at compile time.
macro_rules! select_user {
    () => {
        "SELECT apikey, email, password_hash, token_version, created_at FROM users"
    };
}

const INSERT: &str = "INSERT INTO users (apikey, email, password_hash, token_version, created_at) \
                      VALUES ($1, $2, $3, 0, $4)";
const BY_EMAIL: &str = concat!(select_user!(), " WHERE email = $1");
const BY_APIKEY: &str = concat!(select_user!(), " WHERE apikey = $1");
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1, \
                            token_version = token_version + 1 \
                            WHERE apikey = $2 RETURNING token_version";
const LIST: &str = select_user!();
const COUNT: &str = "SELECT COUNT(*) FROM users";
const DELETE_DEVICES: &str = "DELETE FROM devices WHERE apikey = $1 RETURNING deviceid";
const DELETE: &str = "DELETE FROM users WHERE apikey = $1";

#[derive(sqlx::FromRow)]
struct UserRow {
    apikey: String,
    email: String,
    password_hash: String,
    token_version: i64,
    created_at: i64,
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
    pub async fn create(
        &self,
        email: &str,
        apikey: &str,
        password_hash: &str,
    ) -> StoreResult<UserRecord> {
        let now = Millis::now();
        sqlx::query(INSERT)
            .bind(apikey)
            .bind(email)
            .bind(password_hash)
            .bind(now.0)
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
