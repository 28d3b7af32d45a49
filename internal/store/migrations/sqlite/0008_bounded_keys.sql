-- Message-IDs are looked up by a bounded key (store.MessageIDKey): the id as
-- written up to 998 bytes, its SHA-256 beyond, so no email can make an index
-- row longer than PostgreSQL's btree allows (about 2,700 bytes) and threading
-- by a long id still works. message_id keeps the id as written, unindexed.
-- Ids stored so far were at most 998 bytes (the parser dropped longer ones),
-- so their key is the id itself. dedupe_key is bounded the same way
-- (store.DedupeKey); the addresses in indexes (tickets.requester_address,
-- messages.from_address) are normalized, at most 320 bytes.
ALTER TABLE messages ADD COLUMN message_id_key TEXT NOT NULL DEFAULT '';
UPDATE messages SET message_id_key = message_id;
DROP INDEX messages_mailbox_message_id;
CREATE INDEX messages_mailbox_message_id_key ON messages (mailbox_id, message_id_key);
