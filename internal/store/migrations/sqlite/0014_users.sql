-- Postdesk schema, version 14 (SQLite): users managed in the web.
-- Each user has a time zone for the pages (an IANA name, '' = UTC), the
-- time of their last sign-in, and which emails they want to hear of: a new
-- ticket in a mailbox they follow, a customer's answer on a ticket assigned
-- to them, a ticket assigned to them.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_sign_in_at INTEGER;
ALTER TABLE users ADD COLUMN notify_new_ticket INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN notify_customer_reply INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN notify_assigned INTEGER NOT NULL DEFAULT 1;

-- The mailboxes whose new tickets a user hears of.
CREATE TABLE user_mailbox_follows (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, mailbox_id)
);
CREATE INDEX user_mailbox_follows_mailbox ON user_mailbox_follows (mailbox_id);

-- Invitations: a single-use link that lets a user set their own password
-- (a new user's first, or after an administrator's reset). Only the hash
-- of the link's token is kept; a user has at most one live invitation.
CREATE TABLE user_invitations (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX user_invitations_user ON user_invitations (user_id);
