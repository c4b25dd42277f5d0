//! The MQTT transport: the Device API over MQTT 3.1.1 on `mqtt_listen` (docs/mqtt.md).
//!
//! Framing and topics only. Packets are read and written with rumqttc's v4 codec
//! (`rumqttc::mqttbytes::v4`); each connection has a device [`Session`] like a WebSocket
//! (`api/ws.rs`), which applies the Device API's rules: a device's CONNECT binds the
//! session to the device (online, presence, commands), an app's ties it to its user; a
//! publish on `iotgo/<deviceid>/up` or `…/set` becomes a Device API request; what the hub
//! queues for the connection (answers, commands, pushes, presence) is published on the
//! matching topic ([`topics`]). A QoS 1 publish of an update is acknowledged once its
//! batch committed, as the WebSocket's answer is. A device running stock Tasmota
//! (`tele/…`, `stat/…`, `cmnd/…` under its Tasmota topic) is mapped both ways by
//! [`tasmota`].
//!
//! Connections are held to the HTTP listener's caps (per address and in all, counted
//! together), CONNECT must come within `http_header_timeout`, a packet larger than
//! `max_body_bytes` or bytes that are no MQTT close the connection.
//!
//! [`Session`]: crate::device::Session

mod connection;
mod reader;
mod tasmota;
mod topics;
mod writer;

use crate::app::AppState;
use crate::net::{Http, Reads};
use crate::shutdown::Drain;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Binds the MQTT listener on `addr`; an address that cannot be bound is a start error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("MQTT: cannot listen on {addr} (mqtt_listen / IOTGO_MQTT_LISTEN)"))
}

/// Accepts MQTT connections on `listener` until the server shuts down: one task per
/// connection, admitted under the caps of `http` and counted in `drain`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    http: Arc<Http>,
    drain: Arc<Drain>,
) {
    let mut shutdown = state.devices.shutdown_signal();
    if *shutdown.borrow() {
        return;
    }
    loop {
        let (tcp, peer) = tokio::select! {
            conn = listener.accept() => match conn {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %e, "MQTT: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            // (It only ever turns true.)
            _ = shutdown.changed() => return,
        };
        let Some(slot) = http.admit(peer.ip(), drain.open_connections()) else {
            continue; // Refused: closed as it drops.
        };
        let io = drain.counted(tcp, slot, Reads::default());
        let span = tracing::info_span!(
            "mqtt",
            deviceid = tracing::field::Empty,
            user = tracing::field::Empty,
        );
        tokio::spawn(tracing::Instrument::instrument(
            connection::run(state.clone(), io, peer.ip()),
            span,
        ));
    }
}
