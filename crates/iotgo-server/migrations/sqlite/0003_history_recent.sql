-- Recent history: the device writer's batches append their history rows here, in rowid
-- order, so a batch writes a few pages at the end of this table. Appending straight to
-- `device_history` wrote a leaf page of the series index per device series per batch
-- (most of what recording history cost the realtime path). Once this table holds enough
-- rows the writer moves them into `device_history` in one run sorted by series, so each
-- series' leaf page is written once per run instead of once per batch. Queries read both
-- tables; this one is small, so it needs no index. `device_history` and its rows are
-- unchanged.
CREATE TABLE device_history_recent (
    id       INTEGER PRIMARY KEY,
    deviceid TEXT NOT NULL,
    field    TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ts       INTEGER,
    value    REAL NOT NULL
);
