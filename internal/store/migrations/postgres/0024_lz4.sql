-- Postdesk schema, version 24 (PostgreSQL): the large values Postdesk
-- writes are compressed with lz4 rather than pglz, PostgreSQL's default.
-- In a 10,000-message sync (scripts/bench-sync -postgres) pglz_compress
-- was the largest single function of PostgreSQL's CPU (perf: 8% of the
-- machine, about a fifth of PostgreSQL's share), compressing each raw
-- message's chunks, bodies and growing search documents; lz4 compresses
-- several times faster for a little less saved. Values already stored stay
-- as they are (both read back the same). A server without lz4 (before
-- PostgreSQL 14, or built without it) keeps pglz: it is asked, rather
-- than an error caught, so that any other failure still fails.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 AND EXISTS (
        SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE messages ALTER COLUMN text_body SET COMPRESSION lz4, ALTER COLUMN html_body SET COMPRESSION lz4;
        ALTER TABLE ticket_search ALTER COLUMN subject SET COMPRESSION lz4, ALTER COLUMN people SET COMPRESSION lz4,
            ALTER COLUMN body SET COMPRESSION lz4, ALTER COLUMN notes SET COMPRESSION lz4,
            ALTER COLUMN tsv SET COMPRESSION lz4, ALTER COLUMN people_tsv SET COMPRESSION lz4;
    ELSE
        RAISE NOTICE 'this PostgreSQL has no lz4: large values stay compressed with pglz';
    END IF;
END
$$;
