//! The `iotgo` command line: `serve`, and the operators' subcommands that work on the
//! configured database (users, licenses, backup), check the configuration or a running
//! server's health.
//!
//! Every subcommand takes the same `--config`, `--listen`, `--data-dir` and
//! `--database-url` as `serve` ([`ConfigArgs`]) and opens the database as the server does
//! ([`Store::connect`], migrations included). Results go to standard output, progress and
//! errors to standard error. Exit codes: 0 success, 1 failure, 2 wrong usage (clap's).

mod admin;
mod backup;
mod check_config;
mod healthcheck;
mod licenses;
mod user;

use crate::auth;
use crate::config::{Config, Overrides};
use crate::logging::LogFormat;
use crate::store::Store;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes: 0 success, 1 failure (the reason is on standard error), 2 wrong usage.

Examples:
  iotgo serve --config /etc/iotgo/iotgo.toml
  iotgo check-config --config /etc/iotgo/iotgo.toml
  echo -n 'a long password' | iotgo user create --email me@example.com
  iotgo backup /var/backups/iotgo-$(date +%F).db";

/// The command line.
#[derive(Parser)]
#[command(
    name = "iotgo",
    version,
    about = "IoTgo: a self-hosted IoT cloud platform",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Where the configuration comes from (shared by every subcommand).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Log lines as text or JSON (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        env = "IOTGO_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration flags every subcommand accepts; they win over the file and `IOTGO_*`.
#[derive(Args, Debug, Default)]
pub struct ConfigArgs {
    /// Configuration file (TOML; see iotgo.example.toml). Unknown keys are an error.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides IOTGO_LISTEN); `healthcheck` and `user delete`
    /// look for a running server there.
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (overrides IOTGO_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://… or postgres://… (overrides IOTGO_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

impl ConfigArgs {
    /// The flags as the configuration's top layer.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
        }
    }

    /// The effective configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), &self.overrides())
    }
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Start the server.
    #[command(
        after_help = "Example:\n  iotgo serve --listen 127.0.0.1:8080 --data-dir /var/lib/iotgo"
    )]
    Serve,
    /// List, create and delete user accounts; set a user's password.
    #[command(subcommand, after_help = user::HELP)]
    User(user::UserCommand),
    /// Revoke every admin token issued so far.
    #[command(subcommand, after_help = admin::HELP)]
    Admin(admin::AdminCommand),
    /// Create license batches for factory-made devices and export them as CSV.
    #[command(subcommand, after_help = licenses::HELP)]
    Licenses(licenses::LicensesCommand),
    /// Copy the SQLite database, consistently, while the server runs (not PostgreSQL: use pg_dump).
    #[command(after_help = backup::HELP)]
    Backup(backup::BackupArgs),
    /// Print the effective configuration, secrets masked, with where each value comes from.
    #[command(after_help = check_config::HELP)]
    CheckConfig,
    /// Ask a running server's /healthz; exit 0 when it answers 200 OK, 1 otherwise.
    #[command(after_help = healthcheck::HELP)]
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Read a password on standard input and print its Argon2id hash, for `[[admins]]`.
    #[command(after_help = "Example:\n  echo -n 'the admin password' | iotgo hash-password")]
    HashPassword,
}

/// Runs a subcommand other than `serve`.
pub async fn run(command: Command, args: &ConfigArgs) -> anyhow::Result<()> {
    match command {
        Command::Serve => anyhow::bail!("`serve` is started by main"),
        Command::User(cmd) => user::run(cmd, args).await,
        Command::Licenses(cmd) => licenses::run(cmd, args).await,
        Command::Admin(cmd) => admin::run(cmd, args).await,
        Command::Backup(a) => backup::run(a, args).await,
        Command::CheckConfig => check_config::run(args),
        Command::Healthcheck(a) => healthcheck::run(a, args).await,
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            anyhow::ensure!(!password.is_empty(), "empty password");
            println!("{}", auth::hash_password(password).await?);
            Ok(())
        }
    }
}

/// The process's exit code for a result, printing the error (with its causes) first.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configured database, migrated as the server does at start.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.database_url.is_none() {
        // The default SQLite file lives in the data directory; make it as `serve` would.
        crate::secrets::private_data_dir(config)?;
    }
    Store::connect(&config.database_url()).await
}

/// One line from standard input: a password (`set-password`, `user create`). On a
/// terminal it asks first; the input is not hidden there, so piping it is better.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as typed; better: echo -n … | iotgo …): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}
