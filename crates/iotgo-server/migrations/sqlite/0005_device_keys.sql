-- Per-device keys (issue 13, "Credentials"). A device key is a UUID v4 like an apikey; it
-- lets one device act as itself on the Device API (update, query, register of that
-- deviceid), so a device need not hold its owner's apikey. Existing devices get one now:
-- each part of the UUID is drawn from SQLite's CSPRNG (`randomblob`), evaluated per row.
ALTER TABLE devices ADD COLUMN device_key TEXT;
UPDATE devices SET device_key =
    lower(hex(randomblob(4))) || '-' ||
    lower(hex(randomblob(2))) || '-4' ||
    substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + (abs(random()) % 4), 1) ||
    substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6)));
CREATE UNIQUE INDEX devices_device_key ON devices (device_key);
