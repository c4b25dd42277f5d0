//! `iotgo backup FILE`: a consistent copy of the SQLite database, taken with `VACUUM INTO`
//! while the server runs (a file copy of a database in WAL mode can be torn).

use super::{ConfigArgs, open_store};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `backup` subcommand's help.
pub(super) const HELP: &str = "\
The copy is one read transaction of SQLite's VACUUM INTO: consistent even while a server
writes, compacted, and readable by itself (no -wal file). The file is made with mode 0600
(it holds password hashes and apikeys); an existing file is never overwritten.
Restore: stop the server, put the copy in place of <data dir>/iotgo.db (and delete
iotgo.db-wal and iotgo.db-shm), start the server.

PostgreSQL: this command refuses; use pg_dump, e.g.
  pg_dump --format=custom --file=iotgo.dump postgres://iotgo@127.0.0.1/iotgo

Example:
  iotgo backup /var/backups/iotgo-$(date +%F).db";

/// Arguments of `backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// The new file to write (must not exist).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Runs `backup`.
pub(super) async fn run(backup: BackupArgs, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let url = config.database_url();
    anyhow::ensure!(
        url.starts_with("sqlite:"),
        "the database is PostgreSQL: back it up with pg_dump \
         (e.g. pg_dump --format=custom --file=iotgo.dump <database url>)"
    );
    let file = &backup.file;
    anyhow::ensure!(
        !file.exists(),
        "{} exists; a backup never overwrites a file",
        file.display()
    );
    // Made empty first, owner-only (and never over a file made meanwhile: create_new);
    // VACUUM INTO accepts an empty file.
    crate::secrets::write_private(file, "")?;
    let result = copy(&config, file).await;
    if result.is_err() {
        let _ = std::fs::remove_file(file);
    }
    result
}

async fn copy(config: &crate::Config, file: &Path) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    eprintln!("backing up to {}…", file.display());
    let started = Instant::now();
    store.vacuum_into(file).await?;
    let took = started.elapsed();
    store.close().await;
    let bytes = std::fs::metadata(file)?.len();
    println!(
        "backed up to {}: {:.1} MiB ({bytes} bytes) in {:.2} s",
        file.display(),
        bytes as f64 / (1024.0 * 1024.0),
        took.as_secs_f64()
    );
    Ok(())
}
