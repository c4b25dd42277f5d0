-- Cluster mode (issue 14): history recorded by several nodes on one database, and one place
-- to claim periodic work cluster-wide (src/store/history/cluster.rs, src/store/leases.rs).

-- A node's log rows carry its node id, one row per device per batch, so a node reads
-- another's not-yet-folded points of one device, folds only its own rows, and a survivor
-- folds a dead node's. A single node writes one row per batch, both columns NULL, as
-- before: the partial indexes cost its writes nothing.
ALTER TABLE device_history_log ADD COLUMN node TEXT;
ALTER TABLE device_history_log ADD COLUMN deviceid TEXT;
CREATE INDEX device_history_log_device ON device_history_log (deviceid)
    WHERE deviceid IS NOT NULL;
CREATE INDEX device_history_log_node ON device_history_log (node) WHERE node IS NOT NULL;

-- Work that runs once per cluster (retention, later schedules): a named lease, held by
-- one holder until `until_ms` (epoch ms), taken over once it ended.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
