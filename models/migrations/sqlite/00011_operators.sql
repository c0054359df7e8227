-- +goose Up
-- Operators (issue 13). is_admin: the account may use the admin pages
-- (granted by latchkey user grant-admin or create --admin). actor: who did
-- what an audit row records when it is not the account's owner: "cli" for
-- latchkey user …, "admin:<id>" for an admin's action on the admin pages,
-- "" for the account itself (or an anonymous request).
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
