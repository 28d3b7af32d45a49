-- Postdesk schema, version 20 (SQLite): Microsoft Graph as a second
-- transport. A mailbox fetches ('imap' or 'graph') and sends ('smtp' or
-- 'graph') through the transport its server settings name; the defaults
-- keep every existing mailbox on IMAP and SMTP.
ALTER TABLE mailbox_servers ADD COLUMN fetch_transport TEXT NOT NULL DEFAULT 'imap';
ALTER TABLE mailbox_servers ADD COLUMN send_transport TEXT NOT NULL DEFAULT 'smtp';
-- One refresh token serves every resource (it is tied to the user and the
-- application); each resource has its own access token. The mail servers'
-- stays in access_token_sealed, Graph's is here (Unix ms expiry).
ALTER TABLE mailbox_auth ADD COLUMN graph_access_token_sealed TEXT NOT NULL DEFAULT '';
ALTER TABLE mailbox_auth ADD COLUMN graph_access_expires_at INTEGER NOT NULL DEFAULT 0;
-- The scopes the last sign-in asked for (space-separated; '' before this
-- version): a change of transport asks for a new sign-in only when it needs
-- scopes the mailbox was not granted.
ALTER TABLE mailbox_auth ADD COLUMN granted_scopes TEXT NOT NULL DEFAULT '';
