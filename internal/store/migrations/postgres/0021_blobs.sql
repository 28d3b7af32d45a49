-- Postdesk schema, version 21 (PostgreSQL): blobs live in the database, so
-- processes on several hosts share no disk. A blob is content-addressed by
-- the hex SHA-256 of its bytes and kept in chunks of at most 256 KiB
-- (blob_chunks, seq from 0), streamed in and out, never whole in memory.
-- A blob is written in the transaction of the first row that names it, so
-- no row names a missing blob and no blob is kept that no row named.
CREATE TABLE blobs (
    sha256     TEXT   PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
    sha256 TEXT    NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    data   BYTEA   NOT NULL,
    PRIMARY KEY (sha256, seq)
);
-- An attachment is kept once, as a part of its message's raw source:
-- part_blob names the blob holding the part, part_offset and part_length
-- its encoded bytes there, part_encoding its Content-Transfer-Encoding.
-- An empty part_blob is a row from before: its decoded content is the
-- blob named by sha256.
ALTER TABLE attachments ADD COLUMN part_blob     TEXT   NOT NULL DEFAULT '';
ALTER TABLE attachments ADD COLUMN part_offset   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN part_length   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN part_encoding TEXT   NOT NULL DEFAULT '';
