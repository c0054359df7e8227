-- +goose Up
-- An address change asked for on the account page, waiting for the link
-- mailed to the new address (SECURITY S9, R10): until it is used, the
-- account keeps its address and logs in with it. One per user: a new
-- request replaces the older one. confirm is the SHA-256 of the token
-- mailed to the new address, cancel that of the token in the notice to the
-- old one; the tokens themselves are never stored. old_email_key is the
-- address the change was asked from: if it is no longer the account's, the
-- change is void. Times are Unix milliseconds (UTC).
CREATE TABLE email_changes (
    user_id       INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    new_email     TEXT    NOT NULL,              -- as typed
    new_email_key TEXT    NOT NULL,              -- trimmed + lower-cased
    old_email_key TEXT    NOT NULL,
    confirm       BLOB    NOT NULL UNIQUE,
    cancel        BLOB    NOT NULL UNIQUE,
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX email_changes_expires ON email_changes(expires);
