//! The in-memory reference server: the same Device API fan-out protocol as iotgo (WebSocket
//! `update` and `subscribe`, `POST /api/http` updates) with no storage and no auth. It is
//! the ceiling the runtime and socket layer allow on this machine; iotgo's figures are
//! reported as ratios against it. Connections get the same shape as iotgo's: a bounded
//! outgoing queue drained by a writer task, a push serialised once for all watchers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A subscribed connection: its id and outgoing queue.
type Subscriber = (u64, mpsc::Sender<Message>);

struct Hub {
    /// Outgoing messages queued per connection (iotgo's `ws_queue_len`).
    queue: usize,
    /// apikey → subscribed connections (id, queue).
    users: Mutex<HashMap<String, Vec<Subscriber>>>,
    next: AtomicU64,
}

type Shared = Arc<Hub>;

/// Serves until killed with `queue` outgoing messages per connection; prints
/// `listening on http://ADDR` like iotgo.
pub(crate) async fn serve(queue: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Small frames must leave at once, not wait for Nagle and the peer's delayed ack.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route("/api/ws", get(upgrade))
        .route("/api/http", post(http))
        .with_state(Arc::new(Hub {
            queue: queue.max(1),
            users: Mutex::default(),
            next: AtomicU64::new(0),
        }));
    axum::serve(listener, app).await?;
    Ok(())
}

/// Acks an update and pushes it to the owner's subscribers (except `me`).
fn update(hub: &Hub, raw: &Map<String, Value>, me: u64) -> Value {
    let (id, key) = (raw.get("deviceid"), raw.get("apikey"));
    let push =
        json!({"action": "update", "deviceid": id, "apikey": key, "params": raw.get("params")});
    let frame = Utf8Bytes::from(push.to_string());
    if let Some(Value::String(key)) = key
        && let Some(list) = hub.users.lock().unwrap_or_else(|e| e.into_inner()).get(key)
    {
        for (peer, tx) in list {
            if *peer != me {
                let _ = tx.try_send(Message::Text(frame.clone()));
            }
        }
    }
    let mut ack = json!({"error": 0, "deviceid": id, "apikey": key});
    if let Some(seq) = raw.get("sequence") {
        ack["sequence"] = seq.clone();
    }
    ack
}

async fn http(State(hub): State<Shared>, body: Bytes) -> Response {
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(raw)) => update(&hub, &raw, 0),
        _ => json!({"error": 400, "reason": "Bad Request"}),
    };
    ([("content-type", "application/json")], answer.to_string()).into_response()
}

async fn upgrade(State(hub): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| connection(hub, socket))
}

async fn connection(hub: Shared, socket: WebSocket) {
    let me = hub.next.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, mut rx) = mpsc::channel::<Message>(hub.queue);
    let (mut sink, mut stream) = socket.split();
    // As iotgo's writer: what is already queued goes out with one flush.
    let writer = tokio::spawn(async move {
        'out: while let Some(msg) = rx.recv().await {
            let mut next = Some(msg);
            let mut batched = 0;
            while let Some(msg) = next.take() {
                if sink.feed(msg).await.is_err() {
                    break 'out;
                }
                batched += 1;
                if batched < 64 {
                    next = rx.try_recv().ok();
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
    });
    let mut subscribed: Option<String> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(Value::Object(raw)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let answer = match raw.get("action").and_then(Value::as_str) {
            Some("update") => update(&hub, &raw, me),
            Some("subscribe") => {
                let key = raw
                    .get("apikey")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let mut users = hub.users.lock().unwrap_or_else(|e| e.into_inner());
                users
                    .entry(key.to_owned())
                    .or_default()
                    .push((me, tx.clone()));
                subscribed = Some(key.to_owned());
                json!({"error": 0, "apikey": key})
            }
            _ => json!({"error": 400, "reason": "Bad Request"}),
        };
        let _ = tx.try_send(Message::Text(answer.to_string().into()));
    }
    if let Some(key) = subscribed {
        let mut users = hub.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = users.get_mut(&key) {
            list.retain(|(p, _)| *p != me);
        }
    }
    writer.abort();
}
