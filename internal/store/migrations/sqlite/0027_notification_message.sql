-- Postdesk schema, version 27: the message a pending notification is
-- about (an agent's reply that was not delivered: ticket.reply_failed),
-- so its email can name the recipients and the server's words.
ALTER TABLE notification_pending ADD COLUMN message_id BIGINT NOT NULL DEFAULT 0;
