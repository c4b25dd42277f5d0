//! The Device API over WebSocket, from the client side: connecting (optionally from a
//! chosen 127.0.0.x source address) and the subscribe-all handshake of an app.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A client WebSocket over plain TCP.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Opens `ws://addr/api/ws`, from `src` when given (to spread source addresses).
pub(crate) async fn connect(addr: SocketAddr, src: Option<IpAddr>) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    // Small buffers: the generator holds up to ~19,000 of these.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}/api/ws");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// Sends a text frame and waits for the next text frame (pings are skipped).
pub(crate) async fn call(ws: &mut Ws, text: String) -> anyhow::Result<String> {
    ws.send(Message::text(text)).await?;
    next_text(ws).await
}

/// The next text frame (pings are skipped).
async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await.context("socket closed")?? {
            Message::Text(t) => return Ok(t.to_string()),
            Message::Close(_) => bail!("socket closed"),
            _ => continue,
        }
    }
}

/// Connects an app and subscribes it to all devices of the owner of `apikey`.
///
/// The subscription starts before its answer is sent, so a presence push (`sysmsg`, for
/// instance a device of an earlier phase going offline) can come first: it is skipped.
pub(crate) async fn app(addr: SocketAddr, apikey: &str) -> anyhow::Result<Ws> {
    let mut ws = connect(addr, None).await?;
    let sub = format!(r#"{{"action":"subscribe","apikey":"{apikey}","userAgent":"app"}}"#);
    let mut answer = call(&mut ws, sub).await?;
    while answer.contains(r#""action":"sysmsg""#) {
        answer = next_text(&mut ws).await?;
    }
    if !answer.contains(r#""error":0"#) {
        bail!("subscribe answered {answer}");
    }
    Ok(ws)
}
