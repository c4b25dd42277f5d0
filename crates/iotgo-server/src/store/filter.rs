//! List filters for the admin endpoints, turned into one portable `WHERE` clause.

use super::Millis;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;
use sqlx::{Any, AnyPool};

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
#[derive(Default)]
pub(super) struct Where {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn push(&mut self, condition: impl FnOnce(usize) -> String, bind: Bind) {
        self.binds.push(bind);
        self.conditions.push(condition(self.binds.len()));
    }

    /// `column = value`.
    pub(super) fn eq(&mut self, column: &str, value: &Option<String>) -> &mut Self {
        if let Some(v) = value {
            self.push(|n| format!("{column} = ${n}"), Bind::Text(v.clone()));
        }
        self
    }

    /// Case-insensitive substring match (LIKE with the wildcards escaped).
    pub(super) fn contains(&mut self, column: &str, value: &Option<String>) -> &mut Self {
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
    pub(super) fn range(&mut self, column: &str, range: &TimeRange) -> &mut Self {
        if let Some(from) = range.from {
            self.push(|n| format!("{column} >= ${n}"), Bind::Int(from.0));
        }
        if let Some(to) = range.to {
            self.push(|n| format!("{column} <= ${n}"), Bind::Int(to.0));
        }
        self
    }

    fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// How many rows match, with `select_count` = `SELECT COUNT(*) FROM table`.
    pub(super) async fn count(
        &self,
        pool: &AnyPool,
        select_count: &str,
    ) -> Result<i64, sqlx::Error> {
        let sql = format!("{select_count}{}", self.where_sql());
        let mut q = sqlx::query_scalar(AssertSqlSafe(sql));
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q.fetch_one(pool).await
    }

    /// The SQL after `SELECT … FROM table`: conditions, newest first, paging.
    /// `tiebreak` orders rows created in the same millisecond.
    pub(super) fn sql(&self, select: &str, tiebreak: &str) -> String {
        let mut sql = format!("{select}{}", self.where_sql());
        let n = self.binds.len();
        sql.push_str(&format!(
            " ORDER BY created_at DESC, {tiebreak} DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        sql
    }

    /// Binds the values (then limit and offset) to a query built from [`Where::sql`].
    pub(super) fn bind<'q, O>(
        self,
        mut q: QueryAs<'q, Any, O, AnyArguments>,
        page: ListFilter,
    ) -> QueryAs<'q, Any, O, AnyArguments> {
        for b in self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        q.bind(page.limit).bind(page.skip)
    }
}
