-- IoTgo schema, PostgreSQL flavour. Times are milliseconds since the Unix epoch (UTC).

-- People who sign up. `apikey` (UUID v4) is their permanent id; it never changes.
-- `token_version` is carried in every JWT; a password change bumps it, so old tokens die.
CREATE TABLE users (
    apikey        TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    token_version BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_created_at ON users (created_at);

-- Devices owned by a user: DIY devices and claimed factory ("indie") devices.
-- `apikey` is the owner's apikey; `params` is the last known state as a JSON object.
CREATE TABLE devices (
    deviceid             TEXT PRIMARY KEY,
    apikey               TEXT NOT NULL,
    name                 TEXT NOT NULL,
    grp                  TEXT NOT NULL DEFAULT '',
    type                 TEXT NOT NULL,
    params               TEXT NOT NULL DEFAULT '{}',
    created_at           BIGINT NOT NULL,
    last_modified        BIGINT,
    online               BIGINT NOT NULL DEFAULT 0,
    last_seen_at         BIGINT,
    last_connected_at    BIGINT,
    last_disconnected_at BIGINT
);
CREATE INDEX devices_apikey ON devices (apikey);
CREATE INDEX devices_created_at ON devices (created_at);

-- Licenses: factory devices made in batches by an admin, with their own apikey printed on
-- them. A user claims one with that pair; the row stays so the device can `register`.
-- `batch` is the first deviceid of the batch the license was made in.
CREATE TABLE factory_devices (
    deviceid   TEXT PRIMARY KEY,
    apikey     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    batch      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX factory_devices_created_at ON factory_devices (created_at);
CREATE INDEX factory_devices_batch ON factory_devices (batch);

-- The last serial handed out per (type, half): half 0 is DIY, half 1 is factory.
-- Bumped in the same transaction that inserts the device, so ids never repeat.
CREATE TABLE device_counters (
    type TEXT NOT NULL,
    half BIGINT NOT NULL,
    last BIGINT NOT NULL,
    PRIMARY KEY (type, half)
);
