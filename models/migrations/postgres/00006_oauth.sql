-- +goose Up
-- Third-party sign-in flows in progress, kept server-side so a callback can
-- land on any replica. handle is the SHA-256 of the flow's state (or of a
-- pending link's handle); browser the SHA-256 of the cookie that binds the
-- flow to the browser that started it. Single use: taking a flow deletes
-- it. No provider token is ever stored; account is the provider account of
-- a pending link (provider, subject, email) as JSON. Times are Unix
-- milliseconds (UTC).
CREATE TABLE oauth_flows (
    handle    BYTEA   PRIMARY KEY,
    purpose   TEXT    NOT NULL,              -- login, link, reauth, pending-link
    provider  TEXT    NOT NULL,
    browser   BYTEA   NOT NULL,
    user_id   BIGINT  REFERENCES users(id) ON DELETE CASCADE, -- link, reauth: who started it
    session   BYTEA,                         -- link, reauth: the digest of the session that started it
    nonce     TEXT    NOT NULL DEFAULT '',
    verifier  TEXT    NOT NULL DEFAULT '',
    return_to TEXT    NOT NULL DEFAULT '',
    account   TEXT    NOT NULL DEFAULT '',
    created   BIGINT  NOT NULL,
    expires   BIGINT  NOT NULL
);
CREATE INDEX oauth_flows_expires ON oauth_flows(expires);

-- How a session signed in: '' a password, else the provider's id.
ALTER TABLE access_tokens ADD COLUMN method TEXT NOT NULL DEFAULT '';
-- When its owner last proved who they are in this session (a
-- re-authentication through a provider); NULL: when it was created.
ALTER TABLE access_tokens ADD COLUMN auth_at BIGINT;
