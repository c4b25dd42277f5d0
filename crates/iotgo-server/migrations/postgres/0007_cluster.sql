-- Cluster mode (issue 14): the nodes of a cluster and their leases, and which node holds
-- each device's connection. Unused by a single node (`node` stays NULL).

-- A node renews its lease every third of `cluster_lease`; a node whose lease ended is
-- dead: a survivor marks its devices offline and deletes its row.
CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    lease_until BIGINT NOT NULL,
    started_at  BIGINT NOT NULL
);

-- The node holding the device's socket (or seeing it poll over HTTP) while it is online.
ALTER TABLE devices ADD COLUMN node TEXT;
CREATE INDEX devices_node ON devices (node) WHERE node IS NOT NULL;

-- Values every node must share: secrets made by the first node that needs one (the JWT
-- signing key unless `jwt_secret` is configured, so a token signed by one node is good on
-- all; the generated admin unless admins are configured) and the admin token version.
CREATE TABLE cluster_shared (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
