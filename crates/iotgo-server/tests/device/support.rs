//! Device API test helpers: HTTP requests, WebSocket clients, licenses.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message that must come.
pub(crate) const WAIT: Duration = Duration::from_secs(3);

pub(crate) use crate::helpers::{Owner, device, owner};

/// Makes a license of `kind`; returns (deviceid, factory apikey).
pub(crate) async fn license(app: &TestApp, kind: &str) -> (String, String) {
    let admin = app.admin_token().await;
    let (_, body) = app
        .post(
            "/api/admin/factorydevices/create",
            &json!({"name": "batch", "type": kind, "qty": 1}),
            Some(&admin),
        )
        .await;
    let l = &body[0];
    (
        l["deviceid"].as_str().unwrap().to_owned(),
        l["apikey"].as_str().unwrap().to_owned(),
    )
}

/// Claims a license for `owner`.
pub(crate) async fn claim(app: &TestApp, owner: &Owner, deviceid: &str, factory_key: &str) {
    let (_, body) = app
        .post(
            "/api/user/device/add",
            &json!({"name": "indie", "deviceid": deviceid, "apikey": factory_key}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(body["deviceid"], deviceid, "{body}");
}

/// The device key of `deviceid`, as the Web API shows it to its owner.
pub(crate) async fn device_key(app: &TestApp, owner: &Owner, deviceid: &str) -> String {
    let d = web_device(app, owner, deviceid).await;
    d["deviceKey"].as_str().expect("a device key").to_owned()
}

/// `POST /api/http` with a JSON body; the answer's status and exact text.
pub(crate) async fn http_raw(app: &TestApp, body: &Value) -> (u16, String) {
    let res = app
        .client
        .post(format!("{}/api/http", app.base))
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// `POST /api/http`; the answer as JSON (status 200 asserted).
pub(crate) async fn http(app: &TestApp, body: Value) -> Value {
    let (status, text) = http_raw(app, &body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The device as the Web API shows it.
pub(crate) async fn web_device(app: &TestApp, owner: &Owner, deviceid: &str) -> Value {
    let (_, body) = app
        .get(&format!("/api/user/device/{deviceid}"), Some(&owner.token))
        .await;
    body
}

/// Polls the Web API until `check` holds for the device (presence is persisted just
/// after the answer or push that announces it).
pub(crate) async fn web_device_until(
    app: &TestApp,
    owner: &Owner,
    deviceid: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = web_device(app, owner, deviceid).await;
        if check(&d) {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "never true: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends SIGTERM to `server` and waits up to `within` for its exit; returns its status
/// and its whole log, read to the end of its output (the exit comes before the reader
/// has the last lines).
pub(crate) async fn terminate(
    server: &mut Binary,
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let pid = server.child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(within, server.child.wait())
        .await
        .expect("exits")
        .unwrap();
    if let Some(reader) = server.reader.take() {
        tokio::time::timeout(WAIT, reader)
            .await
            .expect("the output ends with the process")
            .unwrap();
    }
    (status, server.log.lock().unwrap().join("\n"))
}

/// The stored `n` of device `id` (0 when it has none), by a Device API `query` over HTTP.
pub(crate) async fn query_n(base: &str, id: &str, apikey: &str) -> i64 {
    let q = json!({"action": "query", "deviceid": id, "apikey": apikey, "params": ["n"]});
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/http"))
        .json(&q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["params"]["n"].as_i64().unwrap_or(0)
}

/// The real binary, started by [`start_binary`].
pub(crate) struct Binary {
    /// The process (killed when dropped).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its log lines so far (kept reading, so the server never blocks on a full pipe).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The task that reads the log until the process's output ends.
    pub reader: Option<tokio::task::JoinHandle<()>>,
}

/// Starts `iotgo serve` on the test's data directory and database, with more `env`.
pub(crate) async fn start_binary(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> Binary {
    start_binary_under(&[], data_dir, database_url, env).await
}

/// [`start_binary`] under `wrapper` (e.g. `ip netns exec NS`), which must exec the server
/// (the process is the server's). A variable of `env` with an empty value is removed.
pub(crate) async fn start_binary_under(
    wrapper: &[&str],
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> Binary {
    let bin = env!("CARGO_BIN_EXE_iotgo");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .env("IOTGO_LISTEN", "127.0.0.1:0")
        .env("IOTGO_DATA_DIR", data_dir)
        .env("IOTGO_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("IOTGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        // As the test harness: the throttles off (these tests send flat out); a test of a
        // throttle turns them on in `env`.
        .env("IOTGO_RATE_LIMITS", "off")
        .envs(env.iter().copied().filter(|(_, v)| !v.is_empty()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        cmd.env("IOTGO_DATABASE_URL", url);
    }
    for (k, _) in env.iter().filter(|(_, v)| v.is_empty()) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("start iotgo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    // What it prints on stderr (the generated admin's password) goes into the log too.
    let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let keep = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            keep.lock().unwrap().push(line);
        }
    });
    let find = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let addr = line.split("listening on http://").nth(1).map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
            log.lock().unwrap().push(line);
            if addr.is_some() {
                return addr;
            }
        }
        None
    };
    let addr = tokio::time::timeout(Duration::from_secs(20), find)
        .await
        .expect("the server starts")
        .expect("the server logs its address");
    let keep = log.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            keep.lock().unwrap().push(line);
        }
    });
    Binary {
        child,
        base: format!("http://{addr}"),
        log,
        reader: Some(reader),
    }
}

/// A WebSocket client.
pub(crate) struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    /// Connects to `/api/ws`.
    pub(crate) async fn connect(app: &TestApp) -> Ws {
        Ws::connect_to(&app.base).await
    }

    /// Connects to `/api/ws` of the server at `base` (`http://…`).
    pub(crate) async fn connect_to(base: &str) -> Ws {
        let url = format!("{}/api/ws", base.replacen("http://", "ws://", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Ws(ws)
    }

    /// Sends a JSON text frame.
    pub(crate) async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Sends raw text.
    pub(crate) async fn send_text(&mut self, t: &str) {
        self.0.send(Message::text(t.to_owned())).await.unwrap();
    }

    /// The next JSON text frame, or `None` when the socket closed.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.0.next()).await.ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next JSON frame, which must come.
    pub(crate) async fn recv(&mut self) -> Value {
        self.next(WAIT).await.expect("a message")
    }

    /// Sends a request and returns the next frame (its answer).
    pub(crate) async fn call(&mut self, v: Value) -> Value {
        self.send(v).await;
        self.recv().await
    }

    /// Asserts that nothing came for this socket: it sends a request that can only be
    /// refused and expects its answer as the next frame. A socket's pushes and answers
    /// leave through one queue in order, so whatever was queued for it before (a push
    /// of an update already acked to its sender, a sysmsg) would come first. No waiting
    /// for a silence that a slow machine could break.
    pub(crate) async fn silent(&mut self) {
        self.send(json!({"action": "nothing-came?", "deviceid": "0100000001",
            "apikey": "00000000-0000-0000-0000-000000000000", "sequence": "barrier"}))
            .await;
        let next = self.recv().await;
        assert_eq!(
            (&next["error"], &next["sequence"]),
            (&json!(400), &json!("barrier")),
            "unexpected message {next}"
        );
    }

    /// Whether the server closes the socket within `wait`.
    pub(crate) async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}
