-- Postdesk schema, version 5: the serve processes syncing mail, so each
-- takes a fair share of the mailboxes (a heartbeat per process; stale
-- rows are ignored and removed).
CREATE TABLE sync_processes (
    owner   TEXT    PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
