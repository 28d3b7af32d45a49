-- Postdesk schema, version 1 (SQLite). Times are Unix milliseconds (UTC).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL DEFAULT '',
    ip           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL DEFAULT '',
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE mailboxes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE TABLE tickets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id        INTEGER NOT NULL REFERENCES mailboxes (id),
    subject           TEXT    NOT NULL DEFAULT '',
    requester_address TEXT    NOT NULL DEFAULT '',
    requester_name    TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'solved')),
    bulk              INTEGER NOT NULL DEFAULT 0,
    message_count     INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX tickets_status_updated ON tickets (status, updated_at DESC);
CREATE INDEX tickets_mailbox_updated ON tickets (mailbox_id, updated_at DESC);
CREATE INDEX tickets_requester ON tickets (requester_address);

-- Every ingested or sent email, kept with its raw source (a blob by SHA-256).
-- ticket_id is NULL for mail that opened no ticket (ignored_reason says why).
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id),
    ticket_id       INTEGER REFERENCES tickets (id),
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT    NOT NULL,
    ignored_reason  TEXT    NOT NULL DEFAULT '',
    dedupe_key      TEXT    NOT NULL,
    message_id      TEXT    NOT NULL DEFAULT '',
    in_reply_to     TEXT    NOT NULL DEFAULT '',
    refs            TEXT    NOT NULL DEFAULT '',
    from_address    TEXT    NOT NULL DEFAULT '',
    from_name       TEXT    NOT NULL DEFAULT '',
    to_list         TEXT    NOT NULL DEFAULT '',
    cc_list         TEXT    NOT NULL DEFAULT '',
    reply_to        TEXT    NOT NULL DEFAULT '',
    subject         TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER NOT NULL DEFAULT 0,
    received_at     INTEGER NOT NULL,
    text_body       TEXT    NOT NULL DEFAULT '',
    html_body       TEXT    NOT NULL DEFAULT '',
    raw_sha256      TEXT    NOT NULL DEFAULT '',
    raw_size        INTEGER NOT NULL DEFAULT 0,
    bulk            INTEGER NOT NULL DEFAULT 0,
    auto_reason     TEXT    NOT NULL DEFAULT '',
    no_auto_answer  INTEGER NOT NULL DEFAULT 0,
    problems        TEXT    NOT NULL DEFAULT '',
    author_user_id  INTEGER REFERENCES users (id),
    UNIQUE (mailbox_id, dedupe_key)
);
CREATE INDEX messages_mailbox_message_id ON messages (mailbox_id, message_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    content_id   TEXT    NOT NULL DEFAULT '',
    inline       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Internal notes by agents and system events (status changes, auto-replies seen).
CREATE TABLE notes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id      INTEGER NOT NULL REFERENCES tickets (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('note', 'event')),
    author_user_id INTEGER REFERENCES users (id),
    body           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX notes_ticket ON notes (ticket_id, id);
