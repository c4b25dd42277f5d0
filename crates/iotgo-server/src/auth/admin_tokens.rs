//! The version of admin tokens: every admin token carries it, and one of an older version
//! is refused. Revoking admin tokens (`POST /api/admin/logout-all`, or the operator's
//! `iotgo admin revoke-tokens`, which needs no running server) bumps it.
//!
//! It lives in the data directory (`admin_token_version`, 0600, beside the other secrets)
//! so that it survives restarts and the command line can bump it while a server runs: the
//! server reads it on every admin request (a few bytes, and admin requests are rare), so
//! a revocation takes effect at once, with no restart. On a cluster it is the cluster's,
//! in the database (`cluster_shared`), read the same way.

use crate::secrets::write_private;
use crate::store::Store;
use anyhow::Context;
use std::path::{Path, PathBuf};

const FILE: &str = "admin_token_version";

/// The name of the version among the cluster's shared values.
const SHARED: &str = "admin_token_version";

/// The admin token version kept in a data directory, or a cluster's database.
#[derive(Clone)]
pub struct AdminTokens(Kept);

#[derive(Clone)]
enum Kept {
    File(PathBuf),
    Cluster(Store),
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kept::File(path) => write!(f, "AdminTokens({})", path.display()),
            Kept::Cluster(_) => f.write_str("AdminTokens(cluster)"),
        }
    }
}

impl AdminTokens {
    /// The version kept in `data_dir` (0 until first revoked).
    pub fn new(data_dir: &Path) -> Self {
        AdminTokens(Kept::File(data_dir.join(FILE)))
    }

    /// The cluster's version, in its database `store`.
    pub fn in_cluster(store: Store) -> Self {
        AdminTokens(Kept::Cluster(store))
    }

    /// The version in force.
    pub async fn current(&self) -> anyhow::Result<i64> {
        let path = match &self.0 {
            Kept::File(path) => path,
            Kept::Cluster(store) => {
                let v = store.nodes().shared(SHARED).await?;
                return v
                    .map_or(Ok(0), |v| v.parse())
                    .context("admin token version");
            }
        };
        match tokio::fs::read_to_string(path).await {
            Ok(text) => parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Revokes every admin token issued so far; the new version.
    pub async fn revoke(&self) -> anyhow::Result<i64> {
        let path = match &self.0 {
            Kept::File(path) => path,
            Kept::Cluster(store) => return Ok(store.nodes().bump(SHARED).await?),
        };
        let next = self.current().await? + 1;
        // Written beside and renamed over: a reader never sees a half-written file.
        let tmp = path.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, &next.to_string())?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(next)
    }
}

fn parse(text: &str, path: &Path) -> anyhow::Result<i64> {
    text.trim().parse().with_context(|| {
        format!(
            "{} is not a number; delete it to start over",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_version_starts_at_zero_and_each_revocation_bumps_it_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = AdminTokens::new(dir.path());
        assert_eq!(tokens.current().await.unwrap(), 0);
        assert_eq!(tokens.revoke().await.unwrap(), 1);
        assert_eq!(tokens.revoke().await.unwrap(), 2);
        assert_eq!(AdminTokens::new(dir.path()).current().await.unwrap(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_damaged_file_is_an_error_not_version_zero() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "x").unwrap();
        assert!(AdminTokens::new(dir.path()).current().await.is_err());
    }
}
