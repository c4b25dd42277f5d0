//! What an attacker on the internet must not get cheaply: the server's memory by
//! concurrent logins, a 500 when password hashing is saturated, which e-mail addresses
//! have accounts (by timing), and the data directory's files.

use crate::helpers::{ADMIN_EMAIL, TestApp, spawn_app, spawn_app_with};
use crate::support::{Binary, start_binary};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const WRONG: &str = "Email address or password is not correct!";

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`: the peak of `VmRSS`).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// `POST path` with `{email, password}`: the status, the `Retry-After` header and the body.
async fn login(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let res = client
        .post(format!("{base}{path}"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request");
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, res.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn concurrent_logins_keep_the_servers_memory_bounded() {
    // Arrange: the real binary (its own process, so its memory is its own), two hashes at
    // once, a queue long enough for every login to get its turn.
    let app = spawn_app().await;
    app.register("victim@example.com").await;
    let db = app.state.config.database_url.as_ref().map(|s| s.expose());
    let env = [
        ("IOTGO_PASSWORD_HASH_CONCURRENCY", "2"),
        ("IOTGO_PASSWORD_HASH_QUEUE_TIMEOUT", "60s"),
    ];
    let Binary { child, base, .. } = start_binary(&app.data_dir(), db, &env).await;
    let pid = child.id().expect("running");
    let before = proc_status_kib(pid, "VmRSS");

    // Act: 64 wrong logins at once (each Argon2 hash takes 19 MiB).
    let client = reqwest::Client::new();
    let logins = (0..64).map(|_| {
        login(
            &client,
            &base,
            "/api/user/login",
            "victim@example.com",
            "wrong password",
        )
    });
    let answers = futures_util::future::join_all(logins).await;

    // Assert: every login answered, and the peak stayed near two hashes' worth, ~45 MiB
    // (it grew by ~1.2 GiB with every hash running at once, and by 200-460 MiB with two
    // at once but a new 19 MiB allocation per hash).
    for (status, _, body) in answers {
        assert_eq!((status, body), (StatusCode::OK, json!({"error": WRONG})));
    }
    let grown_mib = (proc_status_kib(pid, "VmHWM").saturating_sub(before)) / 1024;
    assert!(grown_mib < 100, "the peak grew by {grown_mib} MiB");
}

#[tokio::test]
async fn saturated_hashing_answers_503_with_retry_after_never_500() {
    let app = spawn_app_with(|c| {
        c.password_hash_concurrency = 1;
        c.password_hash_queue_timeout = Duration::from_millis(1);
    })
    .await;
    app.register("busy@example.com").await;

    let logins = (0..16).map(|_| {
        login(
            &app.client,
            &app.base,
            "/api/user/login",
            "busy@example.com",
            "wrong password",
        )
    });
    let answers = futures_util::future::join_all(logins).await;

    let mut busy = 0;
    for (status, retry_after, body) in answers {
        match status {
            StatusCode::OK => assert_eq!(body, json!({"error": WRONG})),
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert_eq!(
                    body,
                    json!({"error": "The server is busy, please try again in a moment."})
                );
            }
            other => panic!("{other} {body}"),
        }
    }
    assert!((1..16).contains(&busy), "{busy} of 16 answered 503");
    // And the API's document says so, for every path that hashes.
    let (_, doc) = app.get("/api/openapi.json", None).await;
    for path in [
        "/api/user/register",
        "/api/user/login",
        "/api/user/password",
        "/api/admin/login",
    ] {
        let answer = &doc["paths"][path]["post"]["responses"]["503"];
        assert!(
            answer["headers"]["Retry-After"].is_object(),
            "{path}: {answer}"
        );
    }
}

/// One timed wrong login on `path`.
async fn timed_login(client: &reqwest::Client, base: &str, path: &str, email: &str) -> Duration {
    let start = Instant::now();
    let (status, _, body) = login(client, base, path, email, "wrong pw!").await;
    let took = start.elapsed();
    assert_eq!((status, body), (StatusCode::OK, json!({"error": WRONG})));
    took
}

/// Login with an unknown e-mail and with a known e-mail and a wrong password, on `path`:
/// the median times of both. The two alternate, so that a change in the machine's load
/// weighs on both alike.
async fn login_times(app: &TestApp, path: &str, known: &str) -> (Duration, Duration) {
    const N: usize = 9;
    let (client, base) = (&app.client, &app.base);
    let (mut unknown, mut wrong) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for _ in 0..N {
        unknown.push(timed_login(client, base, path, "nobody@example.com").await);
        wrong.push(timed_login(client, base, path, known).await);
    }
    unknown.sort();
    wrong.sort();
    (unknown[N / 2], wrong[N / 2])
}

#[tokio::test]
async fn an_unknown_email_takes_as_long_as_a_wrong_password() {
    let app = spawn_app().await;
    app.register("known@example.com").await;
    for (path, known) in [
        ("/api/user/login", "known@example.com"),
        ("/api/admin/login", ADMIN_EMAIL),
    ] {
        let (unknown, wrong) = login_times(&app, path, known).await;
        // One Argon2 verify each; before, an unknown address answered ~100 times faster.
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        assert!(
            ratio > 0.5,
            "{path}: unknown e-mail {unknown:?}, wrong password {wrong:?}"
        );
    }
}

/// The permission bits of `path`, in octal (`"700"`).
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The database files of the default SQLite database in `dir` that exist.
fn database_files(dir: &Path) -> Vec<std::path::PathBuf> {
    ["iotgo.db", "iotgo.db-wal", "iotgo.db-shm"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}

fn on_sqlite(app: &TestApp) -> bool {
    app.state.config.database_url.is_none()
}

#[tokio::test]
async fn the_data_directory_and_database_are_private_from_the_first_start() {
    // A data directory that does not exist yet (the temp directory itself is 0700).
    let app = spawn_app_with(|c| c.data_dir = c.data_dir.join("data")).await;
    app.register("files@example.com").await;

    let dir = app.data_dir();
    assert_eq!(mode(&dir), "700");
    let files = database_files(&dir);
    if on_sqlite(&app) {
        assert!(files.iter().any(|f| f.ends_with("iotgo.db")), "{files:?}");
    }
    for file in files {
        assert_eq!(mode(&file), "600", "{}", file.display());
    }
}

#[tokio::test]
async fn an_existing_install_is_made_private_at_start_and_says_so() {
    // Arrange: an install from before, readable by everyone.
    let app = spawn_app().await;
    app.register("old@example.com").await;
    let dir = app.data_dir();
    set_mode(&dir, 0o755);
    let files = database_files(&dir);
    for file in &files {
        set_mode(file, 0o644);
    }

    // Act: the real binary starts on it.
    let db = app.state.config.database_url.as_ref().map(|s| s.expose());
    let Binary { log, .. } = start_binary(&dir, db, &[]).await;

    // Assert: fixed, and logged.
    assert_eq!(mode(&dir), "700");
    for file in &files {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
    let log = log.lock().unwrap().join("\n");
    assert!(
        log.contains(&format!("{}: mode 0755 -> 0700", dir.display())),
        "{log}"
    );
    if on_sqlite(&app) {
        let db = dir.join("iotgo.db");
        assert!(
            log.contains(&format!("{}: mode 0644 -> 0600", db.display())),
            "{log}"
        );
    }
}
