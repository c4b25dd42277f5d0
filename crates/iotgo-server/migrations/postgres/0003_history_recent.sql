-- Recent history: the device writer's batches append their history rows here (a heap
-- append and the end of the id index), instead of an insert into a random leaf of the
-- series index per row. Once this table holds enough rows the writer moves them into
-- `device_history` in one run sorted by series. Queries read both tables; this one is
-- small, so it needs no other index. `device_history` and its rows are unchanged.
CREATE TABLE device_history_recent (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deviceid TEXT NOT NULL,
    field    TEXT NOT NULL,
    at       BIGINT NOT NULL,
    ts       BIGINT,
    value    DOUBLE PRECISION NOT NULL
);
