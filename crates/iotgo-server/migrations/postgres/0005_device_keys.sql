-- Per-device keys (issue 13, "Credentials"). A device key is a UUID v4 like an apikey; it
-- lets one device act as itself on the Device API (update, query, register of that
-- deviceid), so a device need not hold its owner's apikey. Existing devices get one now
-- (`gen_random_uuid`, built in since PostgreSQL 13).
ALTER TABLE devices ADD COLUMN device_key TEXT;
UPDATE devices SET device_key = gen_random_uuid()::text;
ALTER TABLE devices ALTER COLUMN device_key SET NOT NULL;
CREATE UNIQUE INDEX devices_device_key ON devices (device_key);
