-- Postdesk schema, version 13 (SQLite): what happened, for whoever must
-- hear of it. A change worth telling someone (a new ticket, a customer's
-- answer, an assignment, a mailbox's sign-in state, a failing sync, a
-- quarantined email) adds an event in the transaction of the change; a
-- dispatcher hands each event, once, to the consumers (webhooks, email
-- notifications, the ticket list's refresh) and marks it dispatched.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- ticket.created, ticket.customer_replied, ticket.assigned,
    -- mailbox.auth_state_changed, mailbox.sync_failed, message.quarantined
    kind          TEXT    NOT NULL,
    ticket_id     INTEGER,
    mailbox_id    INTEGER,
    message_id    INTEGER,
    -- the user the event is about (the assignee), 0: none
    user_id       INTEGER NOT NULL DEFAULT 0,
    -- who caused it, 0: the system or a customer
    actor_user_id INTEGER NOT NULL DEFAULT 0,
    -- a JSON object of ids and states; never tokens or message bodies
    data          TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    dispatched_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_undispatched ON events (dispatched_at, id);
