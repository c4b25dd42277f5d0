//! A connection's writer: empties its outgoing queue onto the socket as MQTT packets.

use super::connection::{Filters, Role};
use super::{tasmota, topics};
use crate::hub::Outbox;
use crate::shutdown::Counted;
use axum::extract::ws::Message;
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Publish;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, WriteHalf};

/// Bytes gathered before a write while the writer batches queued messages.
const WRITE_BUFFER: usize = 16 * 1024;
/// Most queued messages written with one write.
const WRITE_BATCH: usize = 64;

/// The writer: takes the connection's queue and writes it onto the socket, a burst with
/// one write. Binary messages are packets already encoded; text messages (Device API
/// JSON from the session and the hub) are published on their topic when subscribed
/// (for a Tasmota device: an app's update as Tasmota commands, never retained).
pub(super) async fn write_out(
    outbox: Outbox,
    mut io: WriteHalf<Counted>,
    role: Role,
    filters: Filters,
    tasmota: Arc<tasmota::Learned>,
) {
    let mut buf = BytesMut::new();
    loop {
        let mut next = Some(outbox.recv().await);
        let mut close = false;
        let mut batched = 0;
        while let Some(msg) = next.take() {
            match msg {
                Message::Binary(packet) => buf.extend_from_slice(&packet),
                Message::Text(text) => {
                    let routed: Vec<(String, Bytes)> = match &role {
                        // A Tasmota device: an app's update as its commands.
                        Role::Device { id, .. } => match tasmota.topic() {
                            Some(t) => {
                                let ty = id.device_type();
                                let params = tasmota::app_update(&text).unwrap_or_default();
                                // Committed: the device's state until it says otherwise.
                                tasmota.remember(ty, &params);
                                tasmota::commands(ty, t, &params)
                                    .into_iter()
                                    .map(|(topic, payload)| (topic, Bytes::from(payload)))
                                    .collect()
                            }
                            None => vec![(
                                format!("iotgo/{id}/down"),
                                Bytes::copy_from_slice(text.as_bytes()),
                            )],
                        },
                        Role::App { .. } => topics::for_app(&text).into_iter().collect(),
                    };
                    for (topic, payload) in routed {
                        if topics::wanted(&topic, &filters.lock()) {
                            let publish = Publish::from_bytes(topic, QoS::AtMostOnce, payload);
                            let _ = publish.write(&mut buf);
                        }
                    }
                }
                Message::Close(_) => close = true,
                Message::Ping(_) | Message::Pong(_) => {}
            }
            batched += 1;
            if !close && batched < WRITE_BATCH && buf.len() < WRITE_BUFFER {
                next = outbox.try_recv();
            }
        }
        if !buf.is_empty() && io.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
        if close {
            let _ = io.shutdown().await;
            return;
        }
    }
}
