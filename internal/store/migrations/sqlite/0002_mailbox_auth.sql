-- Postdesk schema, version 2 (SQLite): mailbox authorization, notices and
-- OAuth sign-in state. Times are Unix milliseconds (UTC), 0 for "never";
-- durations are milliseconds. Columns named *_sealed hold vault-sealed
-- secrets ("v1:<key id>:<base64>"), bound to their row and column.

-- How a mailbox signs in to its mail server, one row per mailbox that has
-- any. No row means auth kind 'none'.
CREATE TABLE mailbox_auth (
    mailbox_id             INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    kind                   TEXT    NOT NULL DEFAULT 'none' CHECK (kind IN ('oauth', 'password', 'none')),
    provider               TEXT    NOT NULL DEFAULT '',
    -- The account that signed in (a delegate, for a shared mailbox) or the
    -- password login name.
    account                TEXT    NOT NULL DEFAULT '',
    password_sealed        TEXT    NOT NULL DEFAULT '',
    refresh_token_sealed   TEXT    NOT NULL DEFAULT '',
    access_token_sealed    TEXT    NOT NULL DEFAULT '',
    access_expires_at      INTEGER NOT NULL DEFAULT 0,
    authorized_at          INTEGER NOT NULL DEFAULT 0,
    last_refresh_at        INTEGER NOT NULL DEFAULT 0,
    -- last successful refresh + the provider's inactivity window
    expires_at             INTEGER NOT NULL DEFAULT 0,
    -- NULL: the provider's default maximum age; 0: until revoked
    reauth_max_age         INTEGER,
    reauth_due_at          INTEGER NOT NULL DEFAULT 0,
    auth_state             TEXT    NOT NULL DEFAULT 'ok' CHECK (auth_state IN ('ok', 'expiring', 'needs_reauth', 'provider_fault')),
    auth_error             TEXT    NOT NULL DEFAULT '',
    auth_error_code        TEXT    NOT NULL DEFAULT '',
    auth_error_at          INTEGER NOT NULL DEFAULT 0,
    -- the state the admins were last told about (once-per-change notices)
    warned_state           TEXT    NOT NULL DEFAULT 'ok',
    updated_at             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mailbox_auth_provider ON mailbox_auth (provider);

-- Notices recorded for the admins (shown in the UI; mailed once outbound
-- mail exists).
CREATE TABLE notices (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER REFERENCES mailboxes (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX notices_mailbox ON notices (mailbox_id, id);
CREATE INDEX notices_unread ON notices (read_at, id);

-- Pending OAuth sign-ins: single use, short-lived, bound to the admin's
-- session and the mailbox. Only the SHA-256 of the state is stored.
CREATE TABLE oauth_states (
    state_hash           TEXT    PRIMARY KEY,
    mailbox_id           INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    session_id           INTEGER NOT NULL,
    provider             TEXT    NOT NULL,
    verifier_sealed      TEXT    NOT NULL,
    nonce                TEXT    NOT NULL,
    allow_address_change INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    used_at              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
