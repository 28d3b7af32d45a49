-- Postdesk schema, version 30: the newest message of its ticket an agent
-- had seen when they chose Send again for a reply: a reply released after
-- a sign-in is "stale" only for a customer email newer than that (a
-- reply sent again after reading the customer's newer email, then held
-- by a second lapse of the sign-in, was stale again for the same email).
ALTER TABLE outbox ADD COLUMN answered_through BIGINT NOT NULL DEFAULT 0;
