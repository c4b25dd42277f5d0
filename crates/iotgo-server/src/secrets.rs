//! Secrets kept in the data directory: generated once, readable by the owner only; and
//! the data directory itself (0700) and the SQLite database's files (0600) kept private.

use crate::config::{Config, Secret};
use crate::store::Store;
use anyhow::Context;
use rand::Rng;
use rand::distr::Alphanumeric;
use std::io::Write;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

const JWT_SECRET_FILE: &str = "jwt_secret";
const METRICS_TOKEN_FILE: &str = "metrics_token";

/// Whether a secret a client gave is `expected`, compared in constant time: the time of
/// the answer tells nothing about how much of a guess was right. Used for every key and
/// token a request presents (apikeys, device keys, license keys, the metrics token).
pub fn same_secret(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A random alphanumeric string of `len` characters from the OS-seeded generator.
pub fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Writes `text` to a new file only the owner can read.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The configured JWT secret, or the one kept in the data directory (made on first use).
pub fn jwt_secret(configured: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Secret> {
    kept(
        configured,
        data_dir,
        JWT_SECRET_FILE,
        "IOTGO_JWT_SECRET",
        64,
    )
}

/// The configured bearer token of `/metrics`, or the one kept in the data directory
/// (made on first use; give it to Prometheus as its `credentials_file`).
pub fn metrics_token(configured: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Secret> {
    kept(
        configured,
        data_dir,
        METRICS_TOKEN_FILE,
        "IOTGO_METRICS_TOKEN",
        32,
    )
}

/// `configured` when set (at least 16 bytes, as `name` says), else the secret in the
/// data directory's `file`, first made as `len` random characters.
fn kept(
    configured: Option<&Secret>,
    data_dir: &Path,
    file: &str,
    name: &str,
    len: usize,
) -> anyhow::Result<Secret> {
    if let Some(s) = configured {
        anyhow::ensure!(s.expose().len() >= 16, "{name} must be at least 16 bytes");
        return Ok(s.clone());
    }
    let path = data_dir.join(file);
    if !path.exists() {
        write_private(&path, &random_token(len))?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let secret = text.trim();
    anyhow::ensure!(
        secret.len() >= 16,
        "{} is too short; delete it to regenerate",
        path.display()
    );
    Ok(Secret::new(secret))
}

/// Makes the data directory if missing and keeps it private: the directory 0700 and,
/// when the database is the default SQLite file, `iotgo.db` and its `-wal`, `-shm` and
/// `-journal` files 0600 (they hold every apikey, license key and password hash).
///
/// An existing install's wider modes are narrowed (group and other bits cleared), each
/// change logged once at info. The database file is made 0600 before SQLite opens it:
/// SQLite gives the `-wal` and `-shm` files it creates the main file's mode.
pub fn private_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    keep_private(dir);
    if config.database_url.is_some() {
        return Ok(());
    }
    let db = Store::sqlite_path(dir);
    if !db.exists() {
        // An empty file is an empty SQLite database.
        write_private(&db, "")?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = db.clone().into_os_string();
        file.push(suffix);
        let file = PathBuf::from(file);
        if file.exists() {
            keep_private(&file);
        }
    }
    Ok(())
}

/// Clears the group and other bits of `path`'s mode, logging a change; a failure (a
/// directory owned by someone else, say) is logged, and start-up goes on.
fn keep_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let result = std::fs::metadata(path).and_then(|meta| {
            let mode = meta.permissions().mode() & 0o7777;
            let private = mode & !0o077;
            if private != mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
                tracing::info!(
                    "{}: mode {mode:04o} -> {private:04o} (readable by the owner only)",
                    path.display()
                );
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot make {} private", path.display());
        }
    }
}
