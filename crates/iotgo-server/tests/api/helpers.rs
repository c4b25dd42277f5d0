//! The test harness: a real server on port 0 with a fresh database, and request helpers.
//!
//! SQLite by default (a temp data directory); PostgreSQL when `IOTGO_TEST_DATABASE_URL`
//! is set, with a fresh database per test, dropped when the test ends.
//!
//! Shared by several test binaries (`#[path]`), each of which uses only part of it.
#![allow(dead_code)]

use iotgo_server::config::{Config, Secret};
use iotgo_server::{App, AppState};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::oneshot;

/// The admin every test server has.
pub(crate) const ADMIN_EMAIL: &str = "admin@example.com";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "admin-password";
/// A password that passes the rules.
pub(crate) const PASSWORD: &str = "correct horse";

/// A running server and what the test needs to reach it.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The MQTT listener's address, when `mqtt_listen` is set.
    pub mqtt: Option<SocketAddr>,
    /// The server's state (to reach the store directly in a few tests).
    pub state: AppState,
    /// A plain HTTP client (no redirects followed).
    pub client: reqwest::Client,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    db: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh PostgreSQL database, dropped with this guard.
pub(crate) struct TestDatabase {
    admin_url: String,
    name: String,
}

/// A fresh PostgreSQL database of its own and its URL, when `IOTGO_TEST_DATABASE_URL` is
/// set (tests of several servers or stores on one database).
pub(crate) async fn postgres_database() -> Option<(TestDatabase, String)> {
    let url = std::env::var("IOTGO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let db = fresh_postgres(&url).await;
    let db_url = db_url(&url, &db.name);
    Some((db, db_url))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
}

async fn fresh_postgres(url: &str) -> TestDatabase {
    let name = format!("iotgo_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    TestDatabase {
        admin_url: url.to_owned(),
        name,
    }
}

fn db_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(base);
    format!("{root}/{name}{query}")
}

/// A server with the default test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose configuration `tweak` adjusts first.
pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        // Tests open many sockets and log in often from 127.0.0.1, as load tests do; the
        // tests of the limits turn them on.
        rate_limits: false,
        ..Config::default()
    };
    let db = match std::env::var("IOTGO_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let db = fresh_postgres(&url).await;
            config.database_url = Some(Secret::new(db_url(&url, &db.name)));
            Some(db)
        }
        _ => None,
    };
    tweak(&mut config);
    let mut app = start(config).await;
    app.db = db;
    app._dir = Some(dir);
    app
}

async fn start(config: Config) -> TestApp {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let app = App::build(config.clone()).await.expect("build app");
    let state = app.state.clone();
    let mqtt = app.state.mqtt_addr;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        base: format!("http://{addr}"),
        addr,
        mqtt,
        state,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        config,
        stop: Some(stop),
        task: Some(task),
        db: None,
        _dir: None,
    }
}

impl TestApp {
    /// The data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Stops the server and starts a new one on the same data directory and database.
    pub(crate) async fn restart(mut self) -> TestApp {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self.start_again().await
    }

    /// Ends the server as a crash would, without its shutdown drain (the history log
    /// keeps the recent points, devices stay marked online), and starts a new one on the
    /// same data directory and database.
    pub(crate) async fn restart_after_crash(mut self) -> TestApp {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.start_again().await
    }

    /// A new server on this one's data directory and database (this one has ended).
    async fn start_again(mut self) -> TestApp {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut next = start(config).await;
        next.db = self.db.take();
        next._dir = self._dir.take();
        next
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Value) {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// `GET path`, answer status and JSON body.
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)), token)
            .await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.send(
            self.client.post(format!("{}{path}", self.base)).json(body),
            token,
        )
        .await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.client.delete(format!("{}{path}", self.base)), token)
            .await
    }

    /// Registers `email` and returns its token and user object.
    pub(crate) async fn register(&self, email: &str) -> (String, Value) {
        let (status, body) = self
            .post(
                "/api/user/register",
                &serde_json::json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let jwt = body["jwt"]
            .as_str()
            .unwrap_or_else(|| panic!("no jwt in {body}"))
            .to_owned();
        (jwt, body["user"].clone())
    }

    /// An admin token.
    pub(crate) async fn admin_token(&self) -> String {
        let (status, body) = self
            .post(
                "/api/admin/login",
                &serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["jwt"].as_str().unwrap().to_owned()
    }

    /// Creates a DIY device and returns it.
    pub(crate) async fn create_device(&self, token: &str, name: &str, kind: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/user/device",
                &serde_json::json!({"name": name, "group": "g", "type": kind}),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("error").is_none(), "{body}");
        body
    }
}

impl TestApp {
    /// `GET /metrics` with the token the server generated into its data directory; the
    /// status and the text.
    pub(crate) async fn metrics(&self) -> (StatusCode, String) {
        let token = std::fs::read_to_string(self.data_dir().join("metrics_token"))
            .expect("metrics_token file");
        let res = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(token.trim())
            .send()
            .await
            .expect("request");
        (res.status(), res.text().await.expect("body"))
    }

    /// A scrape of `/metrics` (status 200 asserted).
    pub(crate) async fn scrape(&self) -> Scrape {
        let (status, text) = self.metrics().await;
        assert_eq!(status, StatusCode::OK, "{text}");
        Scrape(text)
    }
}

/// The text of a `/metrics` answer.
pub(crate) struct Scrape(pub String);

impl Scrape {
    /// The value of the sample `name` with exactly the labels `labels` (in any order);
    /// `None` when there is no such sample.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (n, mut got) = match series.split_once('{') {
                    Some((n, rest)) => (
                        n,
                        rest.trim_end_matches('}')
                            .split(',')
                            .map(str::to_owned)
                            .collect::<Vec<_>>(),
                    ),
                    None => (series, Vec::new()),
                };
                got.sort();
                (n == name && got == want).then(|| value.parse().expect("a number"))
            })
    }

    /// Like [`Scrape::get`], 0 when the sample is absent.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A signed-up user: their token and apikey.
pub(crate) struct Owner {
    /// The user's JWT.
    pub token: String,
    /// The user's apikey (the owner key of their devices).
    pub apikey: String,
}

/// Registers `email`.
pub(crate) async fn owner(app: &TestApp, email: &str) -> Owner {
    let (token, user) = app.register(email).await;
    Owner {
        token,
        apikey: user["apikey"].as_str().unwrap().to_owned(),
    }
}

/// Creates a DIY device of type `kind` for `owner`; returns its deviceid.
pub(crate) async fn device(app: &TestApp, owner: &Owner, kind: &str) -> String {
    let d = app.create_device(&owner.token, "dev", kind).await;
    d["deviceid"].as_str().unwrap().to_owned()
}
