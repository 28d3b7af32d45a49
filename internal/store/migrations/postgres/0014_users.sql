-- Postdesk schema, version 14 (PostgreSQL): users managed in the web.
-- Each user has a time zone for the pages (an IANA name, '' = UTC), the
-- time of their last sign-in, and which emails they want to hear of: a new
-- ticket in a mailbox they follow, a customer's answer on a ticket assigned
-- to them, a ticket assigned to them.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_sign_in_at BIGINT;
ALTER TABLE users ADD COLUMN notify_new_ticket BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN notify_customer_reply BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN notify_assigned BOOLEAN NOT NULL DEFAULT TRUE;

-- The mailboxes whose new tickets a user hears of.
CREATE TABLE user_mailbox_follows (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, mailbox_id)
);
CREATE INDEX user_mailbox_follows_mailbox ON user_mailbox_follows (mailbox_id);

-- Invitations: a single-use link that lets a user set their own password
-- (a new user's first, or after an administrator's reset). Only the hash
-- of the link's token is kept; a user has at most one live invitation.
CREATE TABLE user_invitations (
    token_hash  TEXT   NOT NULL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX user_invitations_user ON user_invitations (user_id);
