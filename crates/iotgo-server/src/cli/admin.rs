//! `iotgo admin revoke-tokens`: signs every admin out, as `POST /api/admin/logout-all`
//! does, with no server needed (a lost or leaked admin token, or an admin removed from
//! the configuration whose token must die before it expires).

use super::ConfigArgs;
use crate::auth::AdminTokens;
use crate::store::Store;
use clap::Subcommand;

/// The `admin` group's help.
pub(super) const HELP: &str = "\
Every admin token issued so far stops working at once, on a running server too (it reads
the admin token version in the data directory on every admin request); admins sign in
again.

Example:
  iotgo admin revoke-tokens --data-dir /var/lib/iotgo";

/// The `admin` subcommands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Revoke every admin token issued so far (admins sign in again).
    RevokeTokens,
}

/// Runs an `admin` subcommand.
pub(super) async fn run(command: AdminCommand, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    match command {
        AdminCommand::RevokeTokens => {
            // On a cluster the version is the cluster's, in its database.
            let tokens = match &config.nats_url {
                Some(_) => AdminTokens::in_cluster(Store::connect(&config.database_url()).await?),
                None => AdminTokens::new(&config.data_dir),
            };
            let version = tokens.revoke().await?;
            println!("admin tokens revoked (admin token version {version})");
            Ok(())
        }
    }
}
