//! Commands to indie devices: an app's update for an indie device is not stored at once
//! but forwarded to the device's socket; the device's answer (`{"error":…,"sequence":…}`
//! on its own connection) completes the app's request. Its success stores and pushes the
//! update like any other; 503 when the device has no socket, 504 when it does not answer
//! within the pending-request timeout, as in the original.

use super::{Access, DeviceApi, Outcome, Reply, answer_code};
use crate::metrics::DeviceAction;
use crate::store::Millis;
use axum::extract::ws::Utf8Bytes;
use iotgo_protocol::message::indie_command;
use iotgo_protocol::{DeviceId, ErrorCode, Request};
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

/// An app's update forwarded to an indie device, waiting for the device's answer.
pub(super) struct Forwarded {
    api: Arc<DeviceApi>,
    wait: oneshot::Receiver<Value>,
    key: String,
    req: Request,
    params: Map<String, Value>,
    access: Access,
    except: Option<u64>,
}

/// The text form of a sequence, for matching a device's answer to its command.
fn sequence_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Forwarded {
    /// The device commanded.
    pub(super) fn deviceid(&self) -> &DeviceId {
        &self.req.deviceid
    }

    /// Waits for the device: its success stores and pushes the update; its error is passed
    /// on as is; no answer within the pending-request timeout is 504; a shutdown while it
    /// waits is 503 (the device's socket closes with the server).
    pub(super) async fn finish(self) -> Reply {
        let api = self.api.clone();
        let answer = match tokio::time::timeout(api.pending_timeout, self.wait).await {
            Ok(Ok(answer)) => answer,
            // The server shuts down: the device's socket closes with it.
            Ok(Err(_)) if api.hub.is_shutting_down() => {
                api.metrics
                    .device_request(DeviceAction::Update, ErrorCode::DeviceOffline.code());
                let answer = self.req.echo.error(ErrorCode::DeviceOffline);
                return Reply::plain(self.req.deviceid, answer);
            }
            _ => {
                api.hub.cancel_answer(self.req.deviceid.as_str(), &self.key);
                api.metrics
                    .device_request(DeviceAction::Update, ErrorCode::Timeout.code());
                let answer = self.req.echo.error(ErrorCode::Timeout);
                return Reply::plain(self.req.deviceid, answer);
            }
        };
        if answer.get("error").and_then(Value::as_i64) != Some(0) {
            api.metrics
                .device_request(DeviceAction::Update, answer_code(&answer));
            return Reply {
                answer,
                deviceid: self.req.deviceid,
                access: Some(self.access),
            };
        }
        let access = self.access.clone();
        let mut reply = api
            .submit_update(self.req, self.params, access, self.except)
            .await
            .finish(&api)
            .await;
        reply.access = Some(self.access);
        reply
    }
}

impl DeviceApi {
    /// Forwards an app's update to the indie device's socket (503 when it has none).
    pub(super) fn forward(
        self: &Arc<Self>,
        mut req: Request,
        raw: &Map<String, Value>,
        params: Map<String, Value>,
        access: Access,
        except: Option<u64>,
    ) -> Outcome {
        let id = req.deviceid.as_str().to_owned();
        let here = self.hub.is_connected(&id);
        if !here && self.bus.is_none() {
            let answer = req.echo.error(ErrorCode::DeviceOffline);
            return Outcome::Done(Reply {
                access: Some(access),
                ..Reply::plain(req.deviceid, answer)
            });
        }
        let sequence = req
            .echo
            .sequence
            .clone()
            .unwrap_or_else(|| Value::from(Millis::now().0.to_string()));
        req.echo.sequence = Some(sequence.clone());
        let key = sequence_key(&sequence);
        let mut command = raw.clone();
        command.insert("sequence".into(), sequence);
        let command = indie_command(command);
        // A device bound by its device key gets the command with that key: it never sees
        // the owner's apikey.
        let mut keyed = command.clone();
        keyed.insert("apikey".into(), Value::from(&*access.keys.device));
        let frame = Utf8Bytes::from(Value::Object(command).to_string());
        let keyed = Utf8Bytes::from(Value::Object(keyed).to_string());
        let wait = if here {
            let wait = self.hub.expect_answer(&id, &key);
            if !self.hub.send_to_device(&id, &frame, &keyed) {
                self.hub.cancel_answer(&id, &key);
                let answer = req.echo.error(ErrorCode::DeviceOffline);
                return Outcome::Done(Reply::plain(req.deviceid, answer));
            }
            wait
        } else {
            // Cluster mode: the node that holds the device's socket (if any) forwards it.
            let (done, wait) = oneshot::channel();
            let offline = req.echo.error(ErrorCode::DeviceOffline).to_value();
            let (api, sequence) = (self.clone(), key.clone());
            tokio::spawn(async move {
                let frames = (&frame, &keyed);
                let answer = api.command_elsewhere(&id, &sequence, frames, offline).await;
                // No answer in time: dropped, the app's wait ends in 504.
                if let Some(answer) = answer {
                    let _ = done.send(answer);
                }
            });
            wait
        };
        Outcome::Forwarded(Box::new(Forwarded {
            api: self.clone(),
            wait,
            key,
            req,
            params,
            access,
            except,
        }))
    }

    /// An answer from a device's connection to a forwarded command; `bound` are the
    /// devices that connection speaks for.
    pub(super) fn device_answered<'a>(
        &self,
        bound: impl IntoIterator<Item = &'a String>,
        answer: &Map<String, Value>,
    ) {
        let Some(seq) = answer.get("sequence") else {
            return;
        };
        let key = sequence_key(seq);
        for id in bound {
            if self.hub.answer(id, &key, Value::Object(answer.clone())) {
                return;
            }
        }
    }
}
