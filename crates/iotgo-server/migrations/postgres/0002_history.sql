-- History of device data: one row per history-kept param (see the type registry in
-- iotgo-protocol) of every accepted update. `at` is the server time of the update (ms),
-- `ts` the device's own time when its params carried `ts`; on/off params are kept as 1/0.
CREATE TABLE device_history (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deviceid TEXT NOT NULL,
    field    TEXT NOT NULL,
    at       BIGINT NOT NULL,
    ts       BIGINT,
    value    DOUBLE PRECISION NOT NULL
);
-- One device's field over a time range: a range scan of this index. It includes `value`,
-- so min/avg/max per bucket are computed by an index-only scan.
CREATE INDEX device_history_series ON device_history (deviceid, field, at) INCLUDE (value);
-- The retention sweep deletes the oldest rows first.
CREATE INDEX device_history_at ON device_history (at);
