-- +goose Up
-- Throttling counters, shared by every replica: failed logins per account,
-- token buckets per client IP and per address for reset and verification
-- mail. Times are Unix milliseconds (UTC).

CREATE TABLE throttle (
    key     BYTEA            PRIMARY KEY,   -- SHA-256 (first 16 bytes) of kind + identifier or IP, never the identifier
    n       DOUBLE PRECISION NOT NULL,      -- accounts: consecutive failures; buckets: tokens left
    at      BIGINT           NOT NULL,      -- accounts: the last failure; buckets: when n was computed
    expires BIGINT           NOT NULL       -- from then on the row means nothing and is pruned
);
CREATE INDEX throttle_expires ON throttle(expires);
