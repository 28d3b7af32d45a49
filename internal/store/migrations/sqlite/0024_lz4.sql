-- Postdesk schema, version 24: on PostgreSQL, large values are compressed
-- with lz4. SQLite compresses nothing; this version changes nothing here.
SELECT 1;
