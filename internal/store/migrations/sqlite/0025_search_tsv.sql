-- Postdesk schema, version 25: on PostgreSQL a ticket's tsvectors are
-- written by Postdesk, not generated; SQLite's FTS5 table is as it was.
SELECT 1;
