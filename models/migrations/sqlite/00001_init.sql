-- +goose Up
-- IF NOT EXISTS: a database made before goose (its versions were kept in
-- schema_migrations) already has these; goose then only records them.
-- Users, access tokens (sessions and reset tokens), email verification tokens,
-- the mail outbox and the audit trail. Times are Unix milliseconds (UTC).

CREATE TABLE IF NOT EXISTS users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT    NOT NULL,               -- as the user typed it
    email_key      TEXT    NOT NULL UNIQUE,        -- trimmed + lower-cased: lookups are case-insensitive
    username       TEXT,
    username_key   TEXT    UNIQUE,                 -- lower-cased username, NULL when there is none
    password_hash  TEXT    NOT NULL,               -- bcrypt ($2a$/$2b$) or $argon2id$ PHC string
    password_nfkc  INTEGER NOT NULL DEFAULT 0,     -- 1: hash was made over the NFKC form; 0: raw bytes (imported LoopBack hashes)
    email_verified INTEGER,                        -- NULL: never set (LoopBack omits the field), 0/1 otherwise
    realm          TEXT,
    profile        TEXT    NOT NULL DEFAULT '{}',  -- extra fields a LoopBack client sent, a JSON object in request order
    created        INTEGER NOT NULL,
    updated        INTEGER NOT NULL,
    disabled_at    INTEGER
);

CREATE TABLE IF NOT EXISTS access_tokens (
    digest     BLOB    PRIMARY KEY,                -- SHA-256 of the 64-character token; the token itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ttl        INTEGER NOT NULL,                   -- seconds; -1 = eternal (only when enabled)
    created    INTEGER NOT NULL,
    expires    INTEGER,                            -- created + ttl*1000; NULL = eternal
    scopes     TEXT    NOT NULL DEFAULT '',        -- '' for a session, 'reset-password' for a reset token
    last_used  INTEGER,
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS access_tokens_user    ON access_tokens(user_id);
CREATE INDEX IF NOT EXISTS access_tokens_expires ON access_tokens(expires) WHERE expires IS NOT NULL;

CREATE TABLE IF NOT EXISTS verification_tokens (
    digest  BLOB    PRIMARY KEY,                   -- SHA-256 of the 128-hex-character token
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email   TEXT    NOT NULL,                      -- the address the link was sent to
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verification_tokens_user ON verification_tokens(user_id);

CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,              -- reset-password, password-changed, verify-email, ...
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    html            TEXT    NOT NULL DEFAULT '',   -- cleared once sent (it may carry a token)
    text            TEXT    NOT NULL DEFAULT '',
    created         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER,
    dead_at         INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at) WHERE sent_at IS NULL AND dead_at IS NULL;

CREATE TABLE IF NOT EXISTS audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    kind       TEXT    NOT NULL,                   -- login.ok, login.failed, logout, password.changed, ...
    user_id    INTEGER,                            -- no foreign key: the trail outlives the user
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''         -- never a password or a token
);
CREATE INDEX IF NOT EXISTS audit_events_user ON audit_events(user_id, time);
