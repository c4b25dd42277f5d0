//! List filters for the admin endpoints, turned into one portable `WHERE` clause.

use super::Millis;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, FromRow};

/// An optional closed time interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub from: Option<Millis>,
    /// Inclusive upper bound.
    pub to: Option<Millis>,
}

/// Paging: newest first, `skip` rows, then at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter {
    /// At most this many rows.
    pub limit: i64,
    /// Rows to pass over first.
    pub skip: i64,
}

/// Filters of the admin user list.
#[derive(Debug, Clone)]
pub struct UserFilter {
    /// Paging.
    pub page: ListFilter,
    /// Sign-up time.
    pub created: TimeRange,
    /// Case-insensitive substring of the e-mail address.
    pub email: Option<String>,
}

/// Filters of the admin device and license lists (the original's, plus `batch`).
#[derive(Debug, Clone)]
pub struct DeviceFilter {
    /// Paging.
    pub page: ListFilter,
    /// Creation time.
    pub created: TimeRange,
    /// Time of the last params change (devices only).
    pub last_modified: TimeRange,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Exact type.
    pub kind: Option<String>,
    /// Case-insensitive substring of the deviceid.
    pub deviceid: Option<String>,
    /// Exact apikey (the owner's for devices, the factory one for licenses).
    pub apikey: Option<String>,
    /// Exact batch (licenses only).
    pub batch: Option<String>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A `WHERE … ORDER BY … LIMIT` clause with `$N` placeholders and their values.
///
/// The only SQL of the table repositories (users, devices, licenses) put together at run
/// time: which conditions an admin list has depends on the filters given. It stays safe
/// because every piece of text spliced in is `&'static str` written in this crate (the
/// repositories' `SELECT`s and column names) or a generated `$N` placeholder; every value
/// a client sent is bound, never spliced.
#[derive(Default)]
pub(crate) struct Where {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    /// The conditions of the admin user list.
    pub(crate) fn users(filter: &UserFilter) -> Where {
        let mut w = Where::default();
        w.range("created_at", &filter.created)
            .contains("email", &filter.email);
        w
    }

    /// The conditions of the admin device list.
    pub(crate) fn devices(filter: &DeviceFilter) -> Where {
        let mut w = Where::default();
        w.range("created_at", &filter.created)
            .range("last_modified", &filter.last_modified)
            .contains("name", &filter.name)
            .eq("type", &filter.kind)
            .contains("deviceid", &filter.deviceid)
            .eq("apikey", &filter.apikey);
        w
    }

    /// The conditions of the admin license list.
    pub(crate) fn licenses(filter: &DeviceFilter) -> Where {
        let mut w = Where::default();
        w.range("created_at", &filter.created)
            .contains("name", &filter.name)
            .eq("type", &filter.kind)
            .contains("deviceid", &filter.deviceid)
            .eq("apikey", &filter.apikey)
            .eq("batch", &filter.batch);
        w
    }

    fn push(&mut self, condition: impl FnOnce(usize) -> String, bind: Bind) {
        self.binds.push(bind);
        self.conditions.push(condition(self.binds.len()));
    }

    /// `column = value`.
    fn eq(&mut self, column: &'static str, value: &Option<String>) -> &mut Self {
        if let Some(v) = value {
            self.push(|n| format!("{column} = ${n}"), Bind::Text(v.clone()));
        }
        self
    }

    /// Case-insensitive substring match (LIKE with the wildcards escaped).
    fn contains(&mut self, column: &'static str, value: &Option<String>) -> &mut Self {
        if let Some(v) = value {
            let escaped = v
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            self.push(
                |n| format!("lower({column}) LIKE ${n} ESCAPE '\\'"),
                Bind::Text(format!("%{escaped}%")),
            );
        }
        self
    }

    /// `from <= column <= to`, each bound optional.
    fn range(&mut self, column: &'static str, range: &TimeRange) -> &mut Self {
        if let Some(from) = range.from {
            self.push(|n| format!("{column} >= ${n}"), Bind::Int(from.0));
        }
        if let Some(to) = range.to {
            self.push(|n| format!("{column} <= ${n}"), Bind::Int(to.0));
        }
        self
    }

    /// One page of the matching rows, newest first, and how many rows match in all.
    ///
    /// `count` is `SELECT COUNT(*) FROM table` and `select` is `SELECT … FROM table`;
    /// `tiebreak` orders rows created in the same millisecond.
    pub(super) async fn fetch_page<O>(
        self,
        pool: &AnyPool,
        count: &'static str,
        select: &'static str,
        tiebreak: &'static str,
        page: ListFilter,
    ) -> Result<(Vec<O>, i64), sqlx::Error>
    where
        O: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        let where_sql = self.clause();
        let mut q = sqlx::query_scalar(spliced(&[count, &where_sql]));
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        let total = q.fetch_one(pool).await?;

        let order = self.order(tiebreak);
        let mut q = sqlx::query_as(spliced(&[select, &where_sql, &order]));
        for b in self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.bind(page.limit).bind(page.skip).fetch_all(pool).await?;
        Ok((rows, total))
    }
}

impl Where {
    /// ` WHERE a AND b …`, or nothing without conditions.
    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The order and the paging placeholders, numbered after the conditions' values.
    fn order(&self, tiebreak: &str) -> String {
        let n = self.binds.len();
        format!(
            " ORDER BY created_at DESC, {tiebreak} DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        )
    }

    /// The page query's text after its `SELECT`, and its values (the paging values
    /// last), for the fuzz targets' checks.
    pub(crate) fn rendered(&self) -> (String, Vec<String>) {
        let values = self.binds.iter().map(|b| match b {
            Bind::Text(s) => s.clone(),
            Bind::Int(i) => i.to_string(),
        });
        (
            format!("{}{}", self.clause(), self.order("id")),
            values.collect(),
        )
    }
}

/// SQL text joined at run time from the pieces [`Where`] makes: the table repositories'
/// one `AssertSqlSafe` (see [`Where`] for why it is safe).
fn spliced(parts: &[&str]) -> AssertSqlSafe<String> {
    AssertSqlSafe(parts.concat())
}
