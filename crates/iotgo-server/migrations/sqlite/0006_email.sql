-- E-mail verification, password reset and e-mail change (issue 13).

-- Whether the account proved it receives mail at `email`. Accounts made before this
-- migration, or while `email_verification` is off, count as verified (1).
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 1;

-- Single-use tokens sent by e-mail. Only the SHA-256 of a token is kept (hex), so a copy
-- of the database cannot be used to reset a password. `kind` is `verify`, `reset` or
-- `change`; `email` is the address the link was sent to (for `change`, the new one).
-- Expired rows are deleted whenever a token is issued.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    apikey     TEXT NOT NULL REFERENCES users (apikey) ON DELETE CASCADE ON UPDATE CASCADE,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_tokens_apikey ON email_tokens (apikey, kind);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);
