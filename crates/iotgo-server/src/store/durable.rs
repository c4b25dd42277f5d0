//! Durability of the device writer's batches on SQLite: commit now, `fsync` beside.
//!
//! With `synchronous = FULL` every commit waits for the WAL's `fsync`, and the writer
//! can do nothing else meanwhile. The writer's connection instead commits its batches
//! with `synchronous = NORMAL` (the commit is written to the WAL, not yet synced) and the
//! device writer syncs the WAL file itself ([`Store::sync_wal`]) on another thread before
//! it acks the batch — while it already runs the next batch. One `fsync` then covers every
//! batch committed before it started. An acked update is as durable as with `FULL`; a
//! reader may see a committed update for the length of one `fsync` before it is durable
//! (the device's ack and the apps' pushes wait for it).
//!
//! Every other write (the Web API's) keeps `synchronous = FULL`: the connection is set
//! back after each batch, and closed if that fails.

use super::{Backend, Store, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Executor};
use std::io;
use std::path::{Path, PathBuf};

impl Store {
    /// Whether batches committed through [`Store::apply_state`] must be made durable with
    /// [`Store::sync_wal`] before they are acked.
    pub fn defers_sync(&self) -> bool {
        self.db_file.is_some()
    }

    /// Makes every batch committed so far durable: an `fsync` of the WAL file. Blocking.
    pub fn sync_wal(&self) -> io::Result<()> {
        match &self.db_file {
            Some(path) => sync_file(path),
            None => Ok(()),
        }
    }

    /// Takes the write connection for a device batch, committing without waiting for the
    /// `fsync` when the sync is deferred.
    pub(super) async fn batch_connection(&self) -> StoreResult<PoolConnection<Any>> {
        let mut conn = self.write.acquire().await?;
        if self.defers_sync() {
            conn.execute("PRAGMA synchronous = NORMAL").await?;
        }
        Ok(conn)
    }

    /// Gives the write connection back with `synchronous = FULL` for everyone else; a
    /// connection that cannot be set back is closed.
    pub(super) async fn end_batch(&self, mut conn: PoolConnection<Any>) {
        if self.defers_sync() && conn.execute("PRAGMA synchronous = FULL").await.is_err() {
            conn.close_on_drop();
        }
    }
}

/// The file of the main database as SQLite reports it (absolute), when the batches of
/// this store defer their sync: SQLite with a database file.
pub(super) async fn database_file(store: &Store) -> StoreResult<Option<PathBuf>> {
    if store.backend != Backend::Sqlite {
        return Ok(None);
    }
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(&store.write)
            .await?;
    Ok(file.filter(|f| !f.is_empty()).map(PathBuf::from))
}

/// Syncs the WAL of the database `db`.
fn sync_file(db: &Path) -> io::Result<()> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::File::open(&wal) {
        Ok(file) => file.sync_data(),
        // SQLite removes the WAL when its last connection closes, after checkpointing it
        // into the database file; syncing that file then makes what it held durable.
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::File::open(db)?.sync_data(),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_file_defers_its_sync_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&Store::sqlite_url(dir.path())).await.unwrap();
        let file = store.db_file.as_deref().expect("a database file");
        assert_eq!(file.file_name().unwrap(), "iotgo.db");
        assert!(file.is_absolute(), "{file:?}");
        assert!(store.defers_sync());
        store.sync_wal().unwrap();
        // The batch connection goes back with synchronous = FULL (2) for the Web API.
        let conn = store.batch_connection().await.unwrap();
        store.end_batch(conn).await;
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.write)
            .await
            .unwrap();
        assert_eq!(level, 2);
    }
}
