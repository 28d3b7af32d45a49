-- Postdesk schema, version 23: SQLite keeps small blobs in pack files
-- (blob_locations). PostgreSQL keeps every blob in the database (0019), so
-- this version changes nothing here; it keeps both schemas' numbers equal.
SELECT 1;
