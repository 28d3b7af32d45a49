-- Postdesk schema, version 6: quarantined messages. A fetched or imported
-- message that cannot be stored (its parse or its write fails) is kept here,
-- with its raw source in the blob store, so the mailbox's checkpoint can move
-- past it and an admin can retry it once the cause is fixed.
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id   INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    origin       TEXT    NOT NULL CHECK (origin IN ('sync', 'import')),
    folder       TEXT    NOT NULL DEFAULT '',
    uid_validity INTEGER NOT NULL DEFAULT 0,
    uid          INTEGER NOT NULL DEFAULT 0,
    -- where an import read it from (a file, or file#n in an mbox)
    source_name  TEXT    NOT NULL DEFAULT '',
    raw_sha256   TEXT    NOT NULL,
    raw_size     INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    -- open: never retried; retried: retried and failed again; resolved: stored
    state        TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'retried', 'resolved')),
    attempts     INTEGER NOT NULL DEFAULT 1,
    received_at  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    resolved_at  INTEGER NOT NULL DEFAULT 0,
    -- the stored message once resolved (no foreign key: messages are never deleted)
    message_id   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX quarantine_mailbox ON quarantine (mailbox_id, state, id);
