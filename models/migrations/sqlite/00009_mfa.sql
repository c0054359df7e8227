-- +goose Up
-- Second factors. A TOTP authenticator (RFC 6238: SHA-1, 6 digits, 30 s):
-- its secret (base32; never shown again after enrolment), whether the
-- enrolment was confirmed with a code, and the last time step accepted, so
-- a code is accepted once (SECURITY M1).
CREATE TABLE mfa_totp (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret    TEXT    NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0,
    created   INTEGER NOT NULL
);

-- Recovery codes: ten, shown once, stored as SHA-256 digests, each used
-- once (M3).
CREATE TABLE recovery_codes (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    digest  BLOB    NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, digest)
);

-- A login whose password was right and whose second step is pending: the
-- digest of the short-lived mfaToken, the user, and the lifetime the
-- session will get.
CREATE TABLE mfa_challenges (
    digest  BLOB    PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ttl     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_expires ON mfa_challenges(expires);

-- Passkeys (WebAuthn credentials): the credential id, its public key and
-- what the authenticator reports (sign counter, backup flags: SECURITY M5),
-- a name the user gave it. A passkey signs in without a password and
-- counts as a second factor.
CREATE TABLE webauthn_credentials (
    id               BLOB    PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    public_key       BLOB    NOT NULL,
    attestation_type TEXT    NOT NULL DEFAULT '',
    aaguid           BLOB,
    sign_count       INTEGER NOT NULL DEFAULT 0,
    backup_eligible  INTEGER NOT NULL DEFAULT 0,
    backup_state     INTEGER NOT NULL DEFAULT 0,
    transports       TEXT    NOT NULL DEFAULT '',
    created          INTEGER NOT NULL,
    last_used        INTEGER
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);
