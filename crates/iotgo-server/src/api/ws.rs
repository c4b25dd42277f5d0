//! `/api/ws`: the Device API over WebSocket, one JSON object per text frame.
//!
//! This file only moves frames: each connection's [`Session`] (`device/session.rs`)
//! applies the Device API's rules — binding, subscriptions, presence, the pipeline of
//! updates whose answers keep the order of the requests. Here: the upgrade, reading
//! frames, the writer that empties the connection's outgoing queue onto the socket with
//! one flush per burst, a first-frame timeout and an idle timeout (pings keep a healthy
//! peer talking), and the expiry of the token a connection subscribed with.
//!
//! At shutdown a connection stops reading, answers what it read (its pipelined updates
//! once committed, its forwarded commands), sends a close frame 1001 (going away) and
//! reads on to the client's close frame, so the TCP connection ends cleanly.

use crate::app::AppState;
use crate::device::Session;
use crate::net::ClientIp;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

/// The route of this transport.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ws: WebSocketUpgrade,
) -> Response {
    if state.devices.is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let max = state.config.max_body_bytes;
    // Small buffers: the defaults (128 KiB to read, 128 KiB before a write) cost ~140 KiB
    // per idle device. The read buffer grows for a larger message when one comes.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            // The socket outlives the upgrade request and its span: it gets its own.
            let span = tracing::info_span!(
                "ws",
                deviceid = tracing::field::Empty,
                user = tracing::field::Empty,
            );
            run(state, socket, client).instrument(span)
        })
}

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 1024;
/// Bytes gathered before a write while the writer batches queued messages.
const WRITE_BUFFER: usize = 16 * 1024;
/// Most queued messages written with one flush.
const WRITE_BATCH: usize = 64;
/// How long a closing connection waits for its close frame to be written, and then for
/// the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

async fn run(state: AppState, socket: WebSocket, client: IpAddr) {
    let (config, api) = (state.config.clone(), state.devices.clone());
    let _open = api.track_socket();
    let mut shutdown = api.shutdown_signal();
    if *shutdown.borrow() {
        // Began between the upgrade and here: close at once.
        shutdown.mark_changed();
    }
    let (mut session, queue) = Session::open(api.clone(), config.ws_queue_len, client);
    let peer = session.peer().clone();
    let (mut sink, mut stream) = socket.split();
    // The writer owns the sink: a client that stops reading blocks only this task. What
    // is already queued goes out with one flush (one syscall for a burst of pushes).
    let mut writer = tokio::spawn(async move {
        'out: loop {
            let msg = queue.recv().await;
            let mut close = matches!(msg, Message::Close(_));
            let mut next = Some(msg);
            let mut batched = 0;
            while let Some(msg) = next.take() {
                if sink.feed(msg).await.is_err() {
                    break 'out;
                }
                batched += 1;
                if !close && batched < WRITE_BATCH {
                    next = queue.try_recv();
                    close = matches!(next, Some(Message::Close(_)));
                }
            }
            if sink.flush().await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let idle = config.ws_idle_timeout.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(Instant::now() + idle / 2, idle / 2);
    let first_deadline = Instant::now() + config.ws_first_frame_timeout;
    let mut first_seen = false;
    let mut last_heard = Instant::now();
    let polite = loop {
        // A connection subscribed with a token is cut when the token expires.
        let expiry = session.token_expiry();
        tokio::select! {
            msg = stream.next(), if session.takes_frames() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        first_seen = true;
                        // Boxed, as every rarely running await of this loop: the task of
                        // an idle connection then holds only what waiting needs.
                        Box::pin(session.receive(&text)).await;
                    }
                    Some(Ok(Message::Binary(_))) => first_seen = true,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
                }
            }
            () = session.answer_next() => {}
            _ = peer.killed() => break false,
            _ = shutdown.changed() => break true,
            _ = sleep_until(first_deadline), if !first_seen => break true,
            _ = sleep_until(last_heard + idle) => break true,
            _ = sleep_until(expiry.unwrap_or(last_heard)), if expiry.is_some() => break true,
            _ = ping.tick() => { peer.send(Message::Ping(Default::default())); }
        }
    };
    let going_away = polite && api.is_shutting_down();
    if going_away {
        Box::pin(session.answer_all()).await;
    }
    drop(session);
    let frame = going_away.then(|| CloseFrame {
        code: close_code::AWAY,
        reason: "server shutting down".into(),
    });
    if polite && peer.send(Message::Close(frame)) {
        if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
            writer.abort();
        }
        if going_away {
            // Closing with the client's close frame unread would reset the connection.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    } else {
        writer.abort();
    }
}
