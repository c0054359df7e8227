-- +goose Up
-- IF NOT EXISTS: a database made before goose (its versions were kept in
-- schema_migrations) already has these; goose then only records them.
-- Throttling counters: failed logins per account, token buckets per client IP
-- and per address for reset and verification mail. Kept in SQLite so a
-- restart does not hand an attacker a fresh allowance (and so replicas can
-- share them later). Times are Unix milliseconds (UTC).

CREATE TABLE IF NOT EXISTS throttle (
    key     BLOB    PRIMARY KEY,   -- SHA-256 (first 16 bytes) of kind + identifier or IP: never the identifier itself,
                                   -- since people type passwords into the email field
    n       REAL    NOT NULL,      -- accounts: consecutive failures; buckets: tokens left
    at      INTEGER NOT NULL,      -- accounts: the last failure; buckets: when n was computed
    expires INTEGER NOT NULL       -- from then on the row means nothing (a full bucket, a forgotten account) and is pruned
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS throttle_expires ON throttle(expires);
