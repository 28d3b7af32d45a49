-- Postdesk schema, version 4 (PostgreSQL): customer emails recovered from an
-- agent's forward. The recovered original is a message of its own on the
-- customer's ticket; recovered_from names the stored forward (kind
-- 'forward', kept with its raw source) and recovered_by the agent.
ALTER TABLE messages ADD COLUMN recovered_from BIGINT REFERENCES messages (id);
ALTER TABLE messages ADD COLUMN recovered_by_user_id BIGINT REFERENCES users (id);
ALTER TABLE messages ADD COLUMN recovered_by TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_mailbox_from_subject ON messages (mailbox_id, from_address, sent_at);
