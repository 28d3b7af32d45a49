-- Postdesk schema, version 26: when a message was last queued (written,
-- released after a sign-in, or sent again by an agent). Temporary
-- failures give up a while after it, not after the message was written:
-- a reply held for days is tried again for as long as a new one.
ALTER TABLE outbox ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0;
UPDATE outbox SET queued_at = created_at;
