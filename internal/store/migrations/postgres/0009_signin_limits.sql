-- Postdesk schema, version 6: sign-in limits. Failed sign-ins per account
-- (the email typed, whether or not a user has it) and per client IP, so
-- every serve process sharing the database applies one back-off; and an
-- optional expiry on API keys.
CREATE TABLE signin_throttles (
    kind           TEXT    NOT NULL, -- 'account' or 'ip'
    subject        TEXT    NOT NULL, -- the lower-cased email, or the IP address
    failures       INTEGER NOT NULL,
    last_failed_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, subject)
);

ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
