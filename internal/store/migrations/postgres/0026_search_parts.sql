-- Postdesk schema, version 26: on SQLite a ticket's search document grows by
-- adding rows; PostgreSQL's already grows in place (version 25).
SELECT 1;
