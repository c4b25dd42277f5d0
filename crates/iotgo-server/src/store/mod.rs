//! Storage: one API over two backends, embedded SQLite (default) and PostgreSQL.
//!
//! Both backends go through sqlx's `Any` driver with the same SQL (`$N` placeholders work
//! on both); where the dialects differ the backend is asked. Times are stored as
//! milliseconds since the epoch and JSON as text, so every column maps the same way.
//! Each backend has its own migrations folder, applied at start-up.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one connection
//! (no `SQLITE_BUSY` between our own writers) while reads use several.

mod devices;
mod email_tokens;
mod filter;
mod history;
mod leases;
mod licenses;
mod models;
mod nodes;
mod state;
mod users;

#[cfg(test)]
pub(crate) mod testing;

pub use devices::{ClaimError, Devices};
pub use email_tokens::{EmailTokens, Redeemed, TokenKind};
pub(crate) use filter::Where;
pub use filter::{DeviceFilter, ListFilter, TimeRange, UserFilter};
pub(crate) use history::{ChunkSpan, Chunks, HistoryView};
pub use history::{HistoryLog, HistoryRow, RawPoint, cluster_log_rows, history_rows};
pub use leases::Leases;
pub use licenses::Licenses;
pub use models::{Device, License, Millis, User, UserRecord};
pub use nodes::{Buried, Join, Nodes};
pub use state::{Applied, DeviceState, StateCache, StateLimits, StateWrite};
pub use users::{Rotated, Users};

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A failure the caller can explain to a user, or an internal one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (an e-mail address, a deviceid) is already taken.
    #[error("already exists")]
    Conflict,
    /// A type has used up its half of the serial space.
    #[error("Not enough device ids available!")]
    IdsExhausted,
    /// The database failed; logged, never shown to clients.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    fn from_db(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Db(e),
        }
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database behind the platform: stateless SQL over its pools and backend, with one
/// repository per table ([`Store::users`], [`Store::devices`], [`Store::licenses`])
/// owning that table's SQL. What lives in memory is its owners' (the history's recent
/// points are `crate::history`'s).
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// This node's id in cluster mode (`Store::in_cluster`): presence writes then say
    /// which node holds a device, and the device writer reads params under row locks.
    node: Option<Arc<str>>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("cannot connect to PostgreSQL")?;
            Store {
                read: pool.clone(),
                write: pool,
                backend: Backend::Postgres,
                node: None,
            }
        } else {
            anyhow::bail!("unsupported database URL (expected sqlite://… or postgres://…)");
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The default SQLite database's file inside `data_dir`.
    pub fn sqlite_path(data_dir: &Path) -> PathBuf {
        data_dir.join("iotgo.db")
    }

    /// The URL of the default SQLite database inside `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            Self::sqlite_path(data_dir).display()
        )
    }

    async fn connect_sqlite(url: &str) -> anyhow::Result<Self> {
        let pool = |max, cache: &'static str| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                // A file database does not drop connections: no ping (a round trip to
                // the connection's worker thread) before every use.
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        conn.execute(cache).await?;
                        Ok(())
                    })
                })
                .connect(url)
        };
        // The writer's page cache holds the pages a history fold writes; readers keep
        // SQLite's default.
        let write = pool(1, "PRAGMA cache_size = -32768")
            .await
            .context("cannot open the SQLite database")?;
        let read = pool(4, "PRAGMA cache_size = -2000")
            .await
            .context("cannot open the SQLite database")?;
        Ok(Store {
            read,
            write,
            backend: Backend::Sqlite,
            node: None,
        })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.write)
            .await
            .context("database migration failed")?;
        Ok(())
    }

    /// The `users` table.
    pub fn users(&self) -> Users<'_> {
        Users {
            read: &self.read,
            write: &self.write,
        }
    }

    /// The `email_tokens` table (and the `users` columns its tokens change).
    pub fn email_tokens(&self) -> EmailTokens<'_> {
        EmailTokens { write: &self.write }
    }

    /// The `devices` table.
    pub fn devices(&self) -> Devices<'_> {
        Devices {
            read: &self.read,
            write: &self.write,
        }
    }

    /// The `factory_devices` table: licenses.
    pub fn licenses(&self) -> Licenses<'_> {
        Licenses {
            read: &self.read,
            write: &self.write,
        }
    }

    /// The `leases` table: work claimed once per cluster (`leases.rs`).
    pub fn leases(&self) -> Leases<'_> {
        Leases { write: &self.write }
    }

    /// The `nodes` table, and the presence of the devices a node held (cluster mode).
    pub fn nodes(&self) -> Nodes<'_> {
        Nodes { write: &self.write }
    }

    /// This store as node `node` of a cluster (PostgreSQL only): a device's presence
    /// records which node holds it, and a node's writes to it cannot clobber another's.
    pub fn in_cluster(mut self, node: Arc<str>) -> Self {
        self.node = Some(node);
        self
    }

    /// This node's id, in cluster mode.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers within two seconds.
    pub async fn ping(&self) -> bool {
        let q = sqlx::query("SELECT 1").execute(&self.read);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), q).await,
            Ok(Ok(_))
        )
    }

    /// Writes a consistent copy of the SQLite database to the new file `path` with
    /// `VACUUM INTO`: one read transaction, so a server writing meanwhile neither waits
    /// nor tears the copy. SQLite refuses to overwrite a file that has content.
    pub async fn vacuum_into(&self, path: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.backend == Backend::Sqlite,
            "VACUUM INTO is SQLite's; back up PostgreSQL with pg_dump"
        );
        let target = path
            .to_str()
            .context("the backup path is not valid UTF-8")?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.read)
            .await
            .context("VACUUM INTO failed")?;
        Ok(())
    }

    /// Each pool's connections, open and idle: SQLite's `read` and `write` pools, or
    /// PostgreSQL's one `shared` pool.
    pub fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        let of = |name, pool: &AnyPool| (name, pool.size(), pool.num_idle());
        match self.backend {
            Backend::Sqlite => vec![of("read", &self.read), of("write", &self.write)],
            Backend::Postgres => vec![of("shared", &self.write)],
        }
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
