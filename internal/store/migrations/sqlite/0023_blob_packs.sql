-- Postdesk schema, version 23 (SQLite): a blob of up to 4 MiB (almost
-- every raw message) is appended to a pack file in the data folder
-- (blobs/packs/<pack>.pack) instead of becoming a file of its own: one
-- file creation per message cost more CPU than parsing it. The row naming
-- a blob's place is written in the transaction of the row that names the
-- blob, after the pack was flushed to disk. Blobs written before (and any
-- larger one) stay files, found when no row here names them.
CREATE TABLE blob_locations (
    sha256 TEXT PRIMARY KEY,
    pack   INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    size   INTEGER NOT NULL
) WITHOUT ROWID;
