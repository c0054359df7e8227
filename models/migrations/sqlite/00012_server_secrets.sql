-- +goose Up
-- The server's secrets (issue 13, SECURITY N1), when LATCHKEY_SECRET_KEY is
-- not set: one random key, made by the first process that needs it, so
-- every replica (and a restart) signs and checks device cookies alike.
-- Anyone who can read this table can forge a device cookie, which lets
-- them skip the per-IP login bucket for one account — no more than a
-- database reader could do anyway.
CREATE TABLE server_secrets (
    name    TEXT    PRIMARY KEY,  -- what the key is ("master": the others are derived from it)
    value   BLOB    NOT NULL,     -- 32 random bytes
    created INTEGER NOT NULL      -- Unix milliseconds
) WITHOUT ROWID;
