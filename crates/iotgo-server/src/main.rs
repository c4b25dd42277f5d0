//! `iotgo`: the command line. Parses flags, loads the configuration and runs the server.

use clap::{Parser, Subcommand};
use iotgo_server::config::{Config, Overrides};
use iotgo_server::logging::{self, LogFormat};
use iotgo_server::store::Backend;
use iotgo_server::{App, auth};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "iotgo",
    version,
    about = "IoTgo: a self-hosted IoT cloud platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or JSON (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        env = "IOTGO_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Configuration file (TOML); see iotgo.example.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides IOTGO_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (overrides IOTGO_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Database URL (overrides IOTGO_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Read a password on standard input and print its Argon2id hash, for `[[admins]]`.
    HashPassword,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            database_url,
        } => {
            let flags = Overrides {
                listen,
                data_dir,
                database_url,
            };
            serve(Config::load(config.as_deref(), &flags)?).await
        }
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let app = App::build(config).await?;
    let state = &app.state;
    let data_dir = std::fs::canonicalize(&state.config.data_dir)?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!("data directory: {}", data_dir.display());
    match state.store.backend() {
        Backend::Sqlite if state.config.database_url.is_none() => {
            tracing::info!("database: SQLite {}", data_dir.join("iotgo.db").display())
        }
        Backend::Sqlite => tracing::info!("database: SQLite (IOTGO_DATABASE_URL)"),
        Backend::Postgres => tracing::info!("database: PostgreSQL (IOTGO_DATABASE_URL)"),
    }
    tracing::info!(
        "admin login: {} at /admin",
        state.admins.emails().join(", ")
    );
    if let Some(admin) = &app.generated_admin {
        // Shown once, on the terminal only; the data directory keeps just its hash.
        eprintln!(
            "\n  First start: created the admin account\n    e-mail:   {}\n    password: {}\n  \
             Write it down: it is not shown again (its hash is in {}).\n",
            admin.email,
            admin.password.expose(),
            data_dir.join("admin.toml").display()
        );
    }
    app.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
