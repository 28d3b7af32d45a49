-- Postdesk schema, version 17 (SQLite): webhooks. An admin registers a URL
-- (and a secret, sealed by the vault as "webhook:<id>:secret") for some
-- event kinds; the dispatcher's webhook consumer writes one delivery per
-- matching webhook and event, with its JSON payload frozen, and a job
-- POSTs it, signed, with retries. The deliveries are the webhook's log.
CREATE TABLE webhooks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    url            TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    secret_sealed  TEXT    NOT NULL,
    -- event kinds, space-separated (ticket.created ticket.customer_replied ...)
    events         TEXT    NOT NULL DEFAULT '',
    -- the payload carries message bodies (off: ids and states only)
    include_bodies INTEGER NOT NULL DEFAULT 0,
    enabled        INTEGER NOT NULL DEFAULT 1,
    created_by     INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- state: pending (waiting for an attempt or a retry at next_attempt_at),
-- delivered (a 2xx answer), failed (refused for good: a 4xx, or out of
-- attempts). event_id 0 is a test event.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_id) WHERE event_id <> 0;
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, id);
