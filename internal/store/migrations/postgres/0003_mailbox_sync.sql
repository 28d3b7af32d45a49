-- Postdesk schema, version 3 (PostgreSQL): how each mailbox is fetched, where
-- its sync stands (checkpoints), who syncs it (leases) and how it is doing.

-- Server settings of a mailbox. No row: not fetched (e.g. import only).
CREATE TABLE mailbox_servers (
    mailbox_id       BIGINT  PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    imap_host        TEXT    NOT NULL,
    imap_port        BIGINT  NOT NULL,
    imap_security    TEXT    NOT NULL CHECK (imap_security IN ('tls', 'starttls', 'none')),
    smtp_host        TEXT    NOT NULL DEFAULT '',
    smtp_port        BIGINT  NOT NULL DEFAULT 0,
    smtp_security    TEXT    NOT NULL DEFAULT 'starttls' CHECK (smtp_security IN ('tls', 'starttls', 'none')),
    -- xoauth2, oauthbearer, plain, login
    auth_method      TEXT    NOT NULL,
    -- login name when it differs from the address (password mailboxes)
    username         TEXT    NOT NULL DEFAULT '',
    folders          TEXT    NOT NULL DEFAULT 'INBOX',
    after_processing TEXT    NOT NULL DEFAULT 'leave' CHECK (after_processing IN ('leave', 'seen', 'move')),
    move_to          TEXT    NOT NULL DEFAULT '',
    initial_days     BIGINT  NOT NULL DEFAULT 14,
    max_age_days     BIGINT  NOT NULL DEFAULT 90,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at       BIGINT  NOT NULL
);

-- Where a folder's sync stands: everything up to last_uid under
-- uid_validity has been committed (together with this row).
CREATE TABLE sync_checkpoints (
    mailbox_id   BIGINT  NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder       TEXT    NOT NULL,
    uid_validity BIGINT  NOT NULL,
    last_uid     BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (mailbox_id, folder)
);

-- One syncing process per mailbox: a lease renewed while it runs.
CREATE TABLE sync_leases (
    mailbox_id BIGINT  PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    owner      TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);

-- How each mailbox's sync is doing, for Admin -> Emails and /metrics.
CREATE TABLE sync_status (
    mailbox_id      BIGINT  PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    state           TEXT    NOT NULL DEFAULT 'idle',
    owner           TEXT    NOT NULL DEFAULT '',
    last_success_at BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_error_at   BIGINT  NOT NULL DEFAULT 0,
    day             TEXT    NOT NULL DEFAULT '',
    messages_day    BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL DEFAULT 0
);
