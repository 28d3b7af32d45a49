-- Postdesk schema, version 16 (SQLite): notifications by email. Every email
-- is an outgoing message (kind 'notification', no ticket) sent through the
-- outbox of a healthy mailbox; these tables only decide what is sent, once.

-- An agent's notifications waiting to be sent: the events a user hears of
-- are gathered for a short while (due_at, the same for one user's batch)
-- and sent as one email. A batch is taken (its rows deleted) in the
-- transaction that queues its email, so it is sent exactly once.
CREATE TABLE notification_pending (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id      INTEGER NOT NULL,
    -- the event's kind: ticket.created, ticket.customer_replied, ticket.assigned
    kind          TEXT    NOT NULL,
    ticket_id     INTEGER REFERENCES tickets (id) ON DELETE CASCADE,
    mailbox_id    INTEGER,
    actor_user_id INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    UNIQUE (user_id, event_id)
);
CREATE INDEX notification_pending_due ON notification_pending (due_at, user_id);

-- What became of a notice's email to the admins: '' not decided yet,
-- 'emailed' (queued to email_count admins through email_mailbox_id),
-- 'no_mailbox' (no healthy mailbox could send it: shown in the app only),
-- 'no_admin', 'not_emailed' (a kind nobody is emailed about), 'before'
-- (recorded before notices were emailed).
ALTER TABLE notices ADD COLUMN email_state TEXT NOT NULL DEFAULT '';
ALTER TABLE notices ADD COLUMN email_mailbox_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN email_count INTEGER NOT NULL DEFAULT 0;
UPDATE notices SET email_state = 'before';
CREATE INDEX notices_email_state ON notices (email_state, id);

-- Reminders to the admins before an authorization's deadline (3 days and 1
-- day before due_at), one row per mailbox, deadline and lead: the row is
-- written in the transaction that queues the emails, so each goes once.
-- email_state as on notices, or 'covered' (a later reminder or the first
-- warning already said it).
CREATE TABLE notice_reminders (
    mailbox_id       INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    due_at           INTEGER NOT NULL,
    lead_days        INTEGER NOT NULL,
    email_state      TEXT    NOT NULL,
    email_mailbox_id INTEGER NOT NULL DEFAULT 0,
    email_count      INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, due_at, lead_days)
);
