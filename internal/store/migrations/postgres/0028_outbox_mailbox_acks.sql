-- Postdesk schema, version 28: a mailbox's acknowledgements by time, to
-- count them against its hourly budget (desk.MaxAcksPerMailboxHour).
CREATE INDEX outbox_mailbox_acks ON outbox (mailbox_id, created_at) WHERE auto;
