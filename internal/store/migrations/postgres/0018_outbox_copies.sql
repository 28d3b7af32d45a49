-- Postdesk schema, version 18 (PostgreSQL): copies of sent mail for the
-- Sent folder are tried a bounded number of times. A copy that could not be
-- appended stays pending until copy_retry_at (Unix ms); copy_attempts
-- counts the drains that could not append it, and after a few the copy is
-- given up (the mail itself was sent and is never sent again for it).
ALTER TABLE outbox ADD COLUMN copy_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN copy_retry_at BIGINT NOT NULL DEFAULT 0;
-- The copies still to append, per mailbox, oldest first (few rows: a copy
-- leaves the index once appended or given up).
CREATE INDEX outbox_copy_pending ON outbox (mailbox_id, message_id) WHERE copy_pending;
