-- +goose Up
-- A sender claims a message for a while before it sends it, so that with
-- several processes each message is sent by one of them; a sender that dies
-- mid-send lets its claim lapse and another sends it (at least once).
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;

-- The versions of the migrations before goose, now recorded by goose.
DROP TABLE IF EXISTS schema_migrations;
