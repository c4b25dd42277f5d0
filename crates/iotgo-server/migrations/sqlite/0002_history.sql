-- History of device data: one row per history-kept param (see the type registry in
-- iotgo-protocol) of every accepted update. `at` is the server time of the update (ms),
-- `ts` the device's own time when its params carried `ts`; on/off params are kept as 1/0.
CREATE TABLE device_history (
    id       INTEGER PRIMARY KEY,
    deviceid TEXT NOT NULL,
    field    TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ts       INTEGER,
    value    REAL NOT NULL
);
-- One device's field over a time range: a range scan of this index. It carries `value`,
-- so min/avg/max per bucket are computed from the index alone.
CREATE INDEX device_history_series ON device_history (deviceid, field, at, value);
-- The retention sweep deletes the oldest rows first.
CREATE INDEX device_history_at ON device_history (at);
