-- +goose Up
-- The server's secrets (issue 13, SECURITY N1), when LATCHKEY_SECRET_KEY is
-- not set: one random key, made by the first replica that needs it, so
-- every replica (and a restart) signs and checks device cookies alike.
CREATE TABLE server_secrets (
    name    TEXT   PRIMARY KEY,  -- what the key is ("master": the others are derived from it)
    value   BYTEA  NOT NULL,     -- 32 random bytes
    created BIGINT NOT NULL      -- Unix milliseconds
);
