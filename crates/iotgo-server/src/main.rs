//! `iotgo`: parses the command line (`cli`), then serves or runs an operator's subcommand.

use clap::Parser;
use iotgo_server::App;
use iotgo_server::cli::{self, Cli, Command};
use iotgo_server::config::Config;
use iotgo_server::logging;
use iotgo_server::store::{Backend, Store};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Every file the binary creates is its owner's only: the data directory, the database
    // and the files SQLite adds beside it later (WAL, journal), backups, exports.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Serve => match cli.config.load() {
            Ok(config) => serve(config).await,
            Err(e) => Err(e),
        },
        command => cli::run(command, &cli.config).await,
    };
    cli::exit_code(result)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let app = App::build(config).await?;
    let state = &app.state;
    let data_dir = std::fs::canonicalize(&state.config.data_dir)?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    match state.mqtt_addr {
        Some(addr) => tracing::info!("MQTT: listening on {addr}"),
        None => tracing::info!("MQTT: off (set mqtt_listen, e.g. 0.0.0.0:1883)"),
    }
    tracing::info!("data directory: {}", data_dir.display());
    match state.store.backend() {
        Backend::Sqlite if state.config.database_url.is_none() => {
            tracing::info!(
                "database: SQLite {}",
                Store::sqlite_path(&data_dir).display()
            )
        }
        Backend::Sqlite => tracing::info!("database: SQLite (IOTGO_DATABASE_URL)"),
        Backend::Postgres => tracing::info!("database: PostgreSQL (IOTGO_DATABASE_URL)"),
    }
    match state.devices.bus() {
        Some(bus) => tracing::info!(
            "cluster: node {} (NATS {})",
            bus.node(),
            if bus.connected() {
                "connected"
            } else {
                "connecting"
            }
        ),
        None => tracing::info!("cluster: off (a single node; set nats_url to join one)"),
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
