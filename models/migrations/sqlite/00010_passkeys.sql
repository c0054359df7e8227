-- +goose Up
-- Passkeys (the credentials themselves are webauthn_credentials, 00009).
--
-- The user handle a passkey carries for its account: random bytes made at
-- the first registration, never the id or the email, so a passkey tells
-- nothing about the account it signs in to. A discoverable sign-in finds
-- the account by it.
CREATE TABLE webauthn_handles (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    handle  BLOB    NOT NULL UNIQUE
);

-- WebAuthn ceremonies in progress, kept server-side so the finish can land
-- on any replica (as oauth_flows). challenge is the SHA-256 of the
-- challenge sent to the browser; browser the SHA-256 of the cookie that
-- binds the ceremony to the browser that began it. Single use: finishing
-- deletes it, whatever the outcome (SECURITY M5). bound is the digest of
-- the session (register) or of the pending mfaToken (mfa) it belongs to;
-- data the library's SessionData as JSON. Times are Unix milliseconds.
CREATE TABLE webauthn_ceremonies (
    challenge BLOB    PRIMARY KEY,
    browser   BLOB    NOT NULL,
    purpose   TEXT    NOT NULL,              -- register, login, mfa
    user_id   INTEGER REFERENCES users(id) ON DELETE CASCADE,
    bound     BLOB,
    name      TEXT    NOT NULL DEFAULT '',   -- register: the passkey's name
    data      TEXT    NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires);
