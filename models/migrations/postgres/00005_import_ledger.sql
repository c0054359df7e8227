-- +goose Up
-- What earlier imports brought in, so a re-run is a delta: a record whose
-- fingerprint is unchanged is left alone, a changed one updated, a new one
-- added, and one the source no longer has (a LoopBack logout, a deleted
-- user) removed. It outlives the rows it names on purpose: a token logged
-- out here, or a user deleted here, is never brought back by a re-run.
-- kind: user (key: the id, 8 bytes big-endian), token and link (key: the
-- SHA-256 digest), identity (key: provider NUL subject). fp: a 64-bit
-- fingerprint of what was imported (users only; 0 otherwise).
CREATE TABLE import_ledger (
    kind TEXT    NOT NULL,
    key  BYTEA   NOT NULL,
    fp   BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
);

-- Another id a user is known by: a LoopBack MongoDB user's ObjectId (24 hex
-- characters, lower-case), given a new integer id by the import. /api/users/
-- <alias> and tokens naming it resolve to the user.
CREATE TABLE user_aliases (
    alias   TEXT    PRIMARY KEY,
    user_id BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE
);
CREATE INDEX user_aliases_user ON user_aliases(user_id);
