//! Secrets kept in the data directory: generated once, readable by the owner only.

use crate::config::Secret;
use anyhow::Context;
use rand::Rng;
use rand::distr::Alphanumeric;
use std::io::Write;
use std::path::Path;

const JWT_SECRET_FILE: &str = "jwt_secret";
const METRICS_TOKEN_FILE: &str = "metrics_token";

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
