-- Postdesk schema, version 6: a refresh lease per mailbox authorization, so
-- one process at a time asks the provider for new tokens (a rotated refresh
-- token presented twice is a reuse, and strict providers revoke the grant).
-- refresh_owner is the process refreshing ('' : none), refresh_until when
-- its claim lapses (Unix ms) should it die without releasing it.
ALTER TABLE mailbox_auth ADD COLUMN refresh_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE mailbox_auth ADD COLUMN refresh_until BIGINT NOT NULL DEFAULT 0;
