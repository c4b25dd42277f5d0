//! Integration tests of the `iotgo` command line: the real binary, run as an operator
//! would, against the database of a real server (SQLite in a temp data directory, or a
//! fresh PostgreSQL database when `IOTGO_TEST_DATABASE_URL` is set).

#[path = "../api/helpers.rs"]
mod helpers;

mod admin;
mod backup;
mod config;
mod licenses;
mod users;

use helpers::TestApp;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// What a run of the binary gave.
pub(crate) struct Output {
    /// The exit code.
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

/// Runs `iotgo` on the database of one test server.
pub(crate) struct Cli {
    data_dir: PathBuf,
    database_url: Option<String>,
    /// Where nothing listens: `user delete` finds no server unless a test says otherwise.
    listen: String,
}

/// An address where nothing listens (bound, then released).
pub(crate) fn closed_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().to_string()
}

impl Cli {
    /// The command line configured for `app`'s data directory and database.
    pub(crate) fn of(app: &TestApp) -> Cli {
        Cli {
            data_dir: app.data_dir(),
            database_url: app
                .state
                .config
                .database_url
                .as_ref()
                .map(|s| s.expose().to_owned()),
            listen: closed_address(),
        }
    }

    /// Runs `iotgo ARGS` with the test's data directory and database, `stdin` as input.
    pub(crate) async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = base_command(args);
        cmd.env("IOTGO_DATA_DIR", &self.data_dir)
            .env("IOTGO_LISTEN", &self.listen);
        if let Some(url) = &self.database_url {
            cmd.env("IOTGO_DATABASE_URL", url);
        }
        run(cmd, stdin).await
    }
}

/// `iotgo ARGS` with no `IOTGO_*` configuration from the test's environment.
pub(crate) fn base_command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_iotgo"));
    for (key, _) in std::env::vars() {
        if key.starts_with("IOTGO_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).env("RUST_LOG", "warn");
    cmd
}

/// Runs `cmd` to its end with `stdin` as input.
pub(crate) async fn run(mut cmd: tokio::process::Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start iotgo");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // A command that refuses its arguments exits before reading its input: the pipe
        // is then broken, and the exit code and stderr below say what happened.
        if let Err(e) = input.write_all(text.as_bytes()).await {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    drop(input);
    let out = child.wait_with_output().await.expect("run iotgo");
    Output {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Whether the tests run on PostgreSQL.
pub(crate) fn on_postgres() -> bool {
    std::env::var("IOTGO_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// A path inside a new temp directory (kept until the returned guard drops).
pub(crate) fn temp_path(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// The path as a `&str` for an argument list.
pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}
