//! Device state and presence, written by the Device API in grouped transactions.
//!
//! The device writer (`crate::device::writer`) collects the writes of many devices and
//! hands them here as one batch: one transaction, one commit, one fsync for all of them.

use super::history::{self, history_rows};
use super::{Millis, Store, StoreResult};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// One change to a device's row.
#[derive(Debug, Clone)]
pub enum StateWrite {
    /// Merge `params` into the stored state (keys replaced, others kept), set `last_modified`,
    /// and append the params its type keeps in history.
    Merge {
        /// The device.
        deviceid: String,
        /// The params of the update.
        params: Map<String, Value>,
        /// When the update came.
        at: Millis,
    },
    /// The device made a request.
    Seen {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
    /// The device connected (or started polling): online, connected and seen now.
    Online {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
    /// The device's connection ended (or its polling stopped).
    Offline {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
}

impl Store {
    /// Applies `writes` in order, in one transaction.
    ///
    /// Updates of the same device within the batch are merged in memory, so each device's
    /// params are read and written once per batch.
    pub async fn apply_state(&self, writes: &[StateWrite]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let mut merged: HashMap<&str, (Map<String, Value>, Millis)> = HashMap::new();
        // History rows join the same transaction; none for devices that are gone.
        let mut history = Vec::new();
        let mut missing: HashSet<&str> = HashSet::new();
        for w in writes {
            let (sql, id, at) = match w {
                StateWrite::Merge {
                    deviceid,
                    params,
                    at,
                } => {
                    if !merged.contains_key(deviceid.as_str()) {
                        let text: Option<String> =
                            sqlx::query_scalar("SELECT params FROM devices WHERE deviceid = $1")
                                .bind(deviceid.as_str())
                                .fetch_optional(&mut *tx)
                                .await?;
                        if text.is_none() {
                            missing.insert(deviceid);
                        }
                        let state = match text.as_deref().map(serde_json::from_str) {
                            Some(Ok(Value::Object(m))) => m,
                            _ => Map::new(),
                        };
                        merged.insert(deviceid, (state, *at));
                    }
                    if let Some((state, last)) = merged.get_mut(deviceid.as_str()) {
                        state.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
                        *last = *at;
                    }
                    if !missing.contains(deviceid.as_str()) {
                        history.extend(history_rows(deviceid, params, *at));
                    }
                    continue;
                }
                StateWrite::Seen { deviceid, at } => (
                    "UPDATE devices SET last_seen_at = $1 WHERE deviceid = $2",
                    deviceid,
                    at,
                ),
                StateWrite::Online { deviceid, at } => (
                    "UPDATE devices SET online = 1, last_connected_at = $1, last_seen_at = $1 \
                     WHERE deviceid = $2",
                    deviceid,
                    at,
                ),
                StateWrite::Offline { deviceid, at } => (
                    "UPDATE devices SET online = 0, last_disconnected_at = $1 WHERE deviceid = $2",
                    deviceid,
                    at,
                ),
            };
            sqlx::query(sql)
                .bind(at.0)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for (id, (state, at)) in merged {
            let text = serde_json::to_string(&state).unwrap_or_else(|_| "{}".into());
            sqlx::query("UPDATE devices SET params = $1, last_modified = $2 WHERE deviceid = $3")
                .bind(text)
                .bind(at.0)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        history::insert(&mut tx, &history).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The owner's apikey of a device, `None` when there is no such device.
    pub async fn owner_of(&self, deviceid: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT apikey FROM devices WHERE deviceid = $1")
                .bind(deviceid)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Whether a license with this (deviceid, factory apikey) pair exists.
    pub async fn license_exists(&self, deviceid: &str, apikey: &str) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM factory_devices WHERE deviceid = $1 AND apikey = $2")
                .bind(deviceid)
                .bind(apikey)
                .fetch_optional(&self.read)
                .await?;
        Ok(found.is_some())
    }

    /// At start-up nothing is connected yet: marks every device that was online offline.
    pub async fn reset_presence(&self, at: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET online = 0, last_disconnected_at = $1 WHERE online <> 0")
            .bind(at.0)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
