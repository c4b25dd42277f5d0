-- History in chunks: the points of one series over a stretch of time in one row, written
-- by the device writer's folds (one chunk per series per fold) instead of one row per
-- point, which cost each point an index entry and a heap tuple. `data` holds the points
-- column by column as JSON: {"a":[at…],"v":[value…],"t":[ts…]} (times in ms, `t` only
-- when some point carries a device time).
CREATE TABLE device_history_chunks (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deviceid TEXT NOT NULL REFERENCES devices (deviceid) ON DELETE CASCADE,
    field    TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at  BIGINT NOT NULL,
    points   BIGINT NOT NULL,
    data     TEXT NOT NULL
);
-- A chart of one series over a range: the chunks that end in or after it.
CREATE INDEX device_history_chunks_series
    ON device_history_chunks (deviceid, field, last_at, first_at);
-- Retention: the chunks that end before the cutoff, and those across it.
CREATE INDEX device_history_chunks_last ON device_history_chunks (last_at, first_at);
-- The history log: one row per device-writer batch with all its points, committed with
-- the batch, emptied by each fold (see src/store/history/mod.rs).
CREATE TABLE device_history_log (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    data TEXT NOT NULL
);
-- A log row is written once and read only at start-up: stored out of line, uncompressed
-- (compressing every batch's points cost the device writer more than it saved).
ALTER TABLE device_history_log ALTER COLUMN data SET STORAGE EXTERNAL;
-- The rows of the two earlier tables become chunks of one series-day each.
INSERT INTO device_history_chunks (deviceid, field, first_at, last_at, points, data)
SELECT deviceid, field, MIN(at), MAX(at), COUNT(*),
       json_build_object('a', json_agg(at ORDER BY at, tier, id),
                         'v', json_agg(value ORDER BY at, tier, id),
                         't', json_agg(ts ORDER BY at, tier, id))::text
FROM (SELECT deviceid, field, at, ts, value, 0 AS tier, id FROM device_history
      UNION ALL
      SELECT deviceid, field, at, ts, value, 1 AS tier, id FROM device_history_recent) AS h
WHERE deviceid IN (SELECT deviceid FROM devices)
GROUP BY deviceid, field, at / 86400000
ORDER BY MIN(at);
DROP TABLE device_history_recent;
DROP TABLE device_history;
