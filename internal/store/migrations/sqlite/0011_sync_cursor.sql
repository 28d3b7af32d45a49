-- Postdesk schema, version 10: a folder's checkpoint is an opaque cursor,
-- written and read only by the transport that fetches the mailbox (IMAP
-- today, Microsoft Graph later). Existing IMAP checkpoints become IMAP
-- cursors: 'imap:' UIDVALIDITY ':' last UID.
ALTER TABLE sync_checkpoints ADD COLUMN fetch_cursor TEXT NOT NULL DEFAULT '';
UPDATE sync_checkpoints SET fetch_cursor = 'imap:' || uid_validity || ':' || last_uid;
ALTER TABLE sync_checkpoints DROP COLUMN uid_validity;
ALTER TABLE sync_checkpoints DROP COLUMN last_uid;
