//! The server around the API: health, unknown paths, and the binary's first start.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn health_follows_the_database() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    app.state.store.close().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "database unavailable"})
        )
    );
}

#[tokio::test]
async fn unknown_paths() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/nothing/here", None).await,
        (StatusCode::NOT_FOUND, json!({"error": "Not found"}))
    );
    let res = app
        .client
        .get(format!("{}/devices/0100000001", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/?path=%2Fdevices%2F0100000001");
    let index = app
        .client
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().await.unwrap().contains("<title>IoTgo</title>"));
    let (status, _) = app.post("/api/user/device", &json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The web app is built into `web/dist` before the tests run (`scripts/test` does it).
#[tokio::test]
async fn the_web_app_is_served_from_the_binary() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let index = get("/").await.unwrap();
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    let html = index.text().await.unwrap();
    assert!(
        html.contains("<link rel=\"manifest\""),
        "web/dist is missing or stale: build the web app first (scripts/test does)\n{html}"
    );
    let manifest = get("/manifest.webmanifest").await.unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
    assert_eq!(manifest.headers()["cache-control"], "no-cache");
    let manifest: serde_json::Value = manifest.json().await.unwrap();
    assert_eq!(
        manifest["name"].as_str().map(|n| n.starts_with("IoTgo")),
        Some(true)
    );
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let asset = get(script).await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()["content-type"], "text/javascript");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let admin = get("/admin/users").await.unwrap().text().await.unwrap();
    assert_eq!(admin, html, "the admin panel is the same single-page app");
}

/// Starts the real binary on port 0 and returns it with its stderr+stdout lines so far.
fn start_binary(data_dir: &std::path::Path) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iotgo"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IOTGO_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("IOTGO_DATABASE_URL")
        .env_remove("IOTGO_ADMIN_EMAIL")
        .env_remove("IOTGO_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotgo");
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx2.send(l)))
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let ready = line.contains("admin login:");
        lines.push(line);
        if ready {
            // The one-time password block follows the last log line of start-up.
            while let Ok(more) = rx.recv_timeout(Duration::from_millis(300)) {
                lines.push(more);
            }
            break;
        }
    }
    (child, lines)
}

#[test]
fn first_start_creates_secrets_and_shows_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_binary(dir.path());
    let text = lines.join("\n");
    let password_line = lines
        .iter()
        .find(|l| l.contains("password:"))
        .unwrap_or_else(|| panic!("{text}"));
    let password = password_line.split_whitespace().last().unwrap().to_owned();
    assert!(text.contains("listening on http://127.0.0.1:"), "{text}");
    assert!(text.contains(&format!(
        "data directory: {}",
        dir.path().canonicalize().unwrap().display()
    )));
    assert!(text.contains("admin login: admin@iotgo.local"));
    child.kill().unwrap();
    child.wait().unwrap();

    let secret = std::fs::read_to_string(dir.path().join("jwt_secret")).unwrap();
    assert_eq!(secret.len(), 64);
    let admin = std::fs::read_to_string(dir.path().join("admin.toml")).unwrap();
    assert!(admin.contains("$argon2id$") && !admin.contains(&password));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt_secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (mut again, lines) = start_binary(dir.path());
    let text = lines.join("\n");
    assert!(
        !text.contains("password:") && !text.contains(&password),
        "{text}"
    );
    assert!(!text.contains(&secret), "the JWT secret is never logged");
    again.kill().unwrap();
    again.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jwt_secret")).unwrap(),
        secret,
        "kept"
    );
}
