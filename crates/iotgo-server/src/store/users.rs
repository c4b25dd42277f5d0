//! Users: sign-up, lookup, password change, the admin list and deletion.

use super::filter::Where;
use super::{Millis, Store, StoreError, StoreResult, User, UserFilter, UserRecord};
use sqlx::AssertSqlSafe;

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

const SELECT_USER: &str =
    "SELECT apikey, email, password_hash, token_version, created_at FROM users";

impl Store {
    /// Creates a user; [`StoreError::Conflict`] when the e-mail address is taken.
    pub async fn create_user(
        &self,
        email: &str,
        apikey: &str,
        password_hash: &str,
    ) -> StoreResult<UserRecord> {
        let now = Millis::now();
        sqlx::query(
            "INSERT INTO users (apikey, email, password_hash, token_version, created_at) \
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(apikey)
        .bind(email)
        .bind(password_hash)
        .bind(now.0)
        .execute(&self.write)
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
    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> =
            sqlx::query_as(AssertSqlSafe(format!("{SELECT_USER} WHERE email = $1")))
                .bind(email)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(Into::into))
    }

    /// The user with this apikey.
    pub async fn user_by_apikey(&self, apikey: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> =
            sqlx::query_as(AssertSqlSafe(format!("{SELECT_USER} WHERE apikey = $1")))
                .bind(apikey)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(Into::into))
    }

    /// Replaces the password hash and bumps the token version; returns the new version.
    pub async fn set_password(&self, apikey: &str, password_hash: &str) -> StoreResult<i64> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1, token_version = token_version + 1 \
             WHERE apikey = $2 RETURNING token_version",
        )
        .bind(password_hash)
        .bind(apikey)
        .fetch_one(&self.write)
        .await?;
        Ok(version)
    }

    /// Users matching `filter`, newest first, with the number of matches before paging.
    pub async fn list_users(&self, filter: &UserFilter) -> StoreResult<(Vec<User>, i64)> {
        let mut w = Where::default();
        w.range("created_at", &filter.created)
            .contains("email", &filter.email);
        let total = w.count(&self.read, "SELECT COUNT(*) FROM users").await?;
        let sql = w.sql(SELECT_USER, "apikey");
        let rows: Vec<UserRow> = w
            .bind(sqlx::query_as(AssertSqlSafe(sql)), filter.page)
            .fetch_all(&self.read)
            .await?;
        Ok((
            rows.into_iter().map(|r| UserRecord::from(r).user).collect(),
            total,
        ))
    }

    /// Deletes a user, every device they own and its history, in one transaction; the
    /// user as they were and the deleted deviceids (`DeviceApi::delete_user` calls it,
    /// then clears the caches).
    pub(crate) async fn delete_user(
        &self,
        apikey: &str,
    ) -> StoreResult<Option<(User, Vec<String>)>> {
        let mut tx = self.write.begin().await?;
        let row: Option<UserRow> =
            sqlx::query_as(AssertSqlSafe(format!("{SELECT_USER} WHERE apikey = $1")))
                .bind(apikey)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let devices: Vec<String> =
            sqlx::query_scalar("DELETE FROM devices WHERE apikey = $1 RETURNING deviceid")
                .bind(apikey)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM users WHERE apikey = $1")
            .bind(apikey)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((UserRecord::from(row).user, devices)))
    }
}
