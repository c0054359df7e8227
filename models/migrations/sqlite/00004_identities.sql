-- +goose Up
-- Third-party sign-in identities: (provider, subject) names one account at
-- one provider (Google's "sub", LoopBack Passport's externalId) and belongs
-- to one user. Keyed by the pair, never by email. profile is the
-- provider's non-secret profile fields as a JSON object; no provider token
-- is ever stored. Times are Unix milliseconds (UTC).
CREATE TABLE identities (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT    NOT NULL,                  -- our provider id: google, github, facebook, an OIDC <ID> lower-cased
    subject  TEXT    NOT NULL,                  -- the provider's stable id for the account
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    profile  TEXT    NOT NULL DEFAULT '{}',     -- id, displayName, emails, name, provider: never credentials
    created  INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user ON identities(user_id);

-- 1: the address is a placeholder another system invented (LoopBack
-- Passport's <id>@loopback.<provider>.com): it never gets mail and never
-- matches an address for account linking.
ALTER TABLE users ADD COLUMN email_placeholder INTEGER NOT NULL DEFAULT 0;
