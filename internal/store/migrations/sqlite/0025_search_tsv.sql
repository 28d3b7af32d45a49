-- Postdesk schema, version 25: on PostgreSQL a ticket's search tsvector
-- grows by appending; SQLite's FTS5 table is as it was.
SELECT 1;
