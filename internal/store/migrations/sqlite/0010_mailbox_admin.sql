-- Postdesk schema, version 10: what Admin -> Emails manages beside the
-- server settings. A mailbox's signature (appended to agents' replies sent
-- from it), and its recent activity: fetches with their counts, token
-- refreshes, errors and catch-ups, as admins read them on its card.
-- A removed mailbox that has tickets keeps its row for them (removed_at,
-- 0 = not removed), hidden from the lists; adding its address again
-- brings it back.
ALTER TABLE mailboxes ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN removed_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE mailbox_activity (
    id         INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    -- fetch, refresh, error, catch_up, auth
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    count      INTEGER NOT NULL DEFAULT 0,
    -- the arrival times a catch-up covered (0: none)
    from_at    INTEGER NOT NULL DEFAULT 0,
    to_at      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX mailbox_activity_mailbox ON mailbox_activity (mailbox_id, id);
