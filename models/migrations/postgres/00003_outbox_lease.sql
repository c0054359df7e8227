-- +goose Up
-- A sender claims a message for a while before it sends it, so that with
-- several replicas each message is sent by one of them; a replica that dies
-- mid-send lets its claim lapse and another sends it (at least once).
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
