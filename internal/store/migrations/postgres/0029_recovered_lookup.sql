-- Postdesk schema, version 29: originals recovered from agents' forwards,
-- found from any mailbox (an agent forwards what a broken mailbox missed
-- to one that works; the original arriving later in the first mailbox is
-- the same email, not a new ticket).
CREATE INDEX messages_recovered_sender ON messages (from_address, sent_at) WHERE recovered_from IS NOT NULL;
CREATE INDEX messages_recovered_key ON messages (dedupe_key) WHERE recovered_from IS NOT NULL;
