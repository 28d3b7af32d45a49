-- Postdesk schema, version 14 (SQLite): who owns a ticket. A ticket is
-- assigned to one agent or to nobody (NULL); a removed user's tickets
-- become unassigned. The index serves the views "Mine" and "Unassigned",
-- newest activity first.
ALTER TABLE tickets ADD COLUMN assignee_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX tickets_assignee_updated ON tickets (assignee_user_id, updated_at DESC);
