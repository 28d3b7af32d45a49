-- Postdesk schema, version 12: the outbox. Every outgoing email (an agent's
-- reply, an acknowledgement) is a messages row (direction 'out') whose raw
-- source, a blob, is the exact bytes sent; its delivery is an outbox row,
-- committed with it. Rows are the truth: jobs only wake the sender.
--
-- state: queued (waiting; next_attempt_at > now between retries), sending
-- (an attempt recorded BEFORE dialling), sent, held (the mailbox needs
-- re-authentication), failed (refused for good: last_error has the
-- server's words), unknown (a worker stopped between sending and recording,
-- and the Sent folder could not tell).
CREATE TABLE outbox (
    message_id         INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    mailbox_id         INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    ticket_id          INTEGER REFERENCES tickets (id),
    state              TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'held', 'failed', 'unknown')),
    envelope_from      TEXT    NOT NULL,
    -- envelope recipients, one per line, lowercase
    recipients         TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT    NOT NULL DEFAULT '',
    error_kind         TEXT    NOT NULL DEFAULT '',
    next_attempt_at    INTEGER NOT NULL DEFAULT 0,
    attempt_started_at INTEGER NOT NULL DEFAULT 0,
    -- the sender (outbox_leases.owner) that recorded the attempt
    attempt_owner      TEXT    NOT NULL DEFAULT '',
    sent_at            INTEGER NOT NULL DEFAULT 0,
    -- an acknowledgement, not an agent's reply
    auto               INTEGER NOT NULL DEFAULT 0,
    -- a copy is still to be appended to the Sent folder
    copy_pending       INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX outbox_mailbox_state ON outbox (mailbox_id, state, message_id);
CREATE INDEX outbox_state_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipients ON outbox (recipients, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id);

-- One sender per mailbox at a time, across processes: a lease renewed while
-- it drains the mailbox's outbox in order.
CREATE TABLE outbox_leases (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

-- APPEND a copy of sent mail to the Sent folder (servers that do not save
-- submitted mail themselves; on for existing password mailboxes).
ALTER TABLE mailbox_servers ADD COLUMN save_sent INTEGER NOT NULL DEFAULT 0;
UPDATE mailbox_servers SET save_sent = 1 WHERE auth_method IN ('plain', 'login');

-- Acknowledgements of new tickets (off by default) and their template,
-- with {{ticket}} and {{subject}}.
ALTER TABLE mailboxes ADD COLUMN ack_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN ack_template TEXT NOT NULL DEFAULT '';
