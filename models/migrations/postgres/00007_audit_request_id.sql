-- +goose Up
-- The X-Request-Id of the request that caused the event ('' for events
-- from the command line): support finds an audit row from the "reference"
-- a user quotes off an error page, and the log lines of the same request.
ALTER TABLE audit_events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
