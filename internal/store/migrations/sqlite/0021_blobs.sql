-- Postdesk schema, version 21 (SQLite): an attachment is kept once, as a
-- part of its message's raw source: part_blob names the blob holding the
-- part, part_offset and part_length its encoded bytes there, part_encoding
-- its Content-Transfer-Encoding. An empty part_blob is a row from before:
-- its decoded content is the blob named by sha256. (On SQLite the blobs
-- stay files in the data folder; PostgreSQL's 0019 also adds the blobs and
-- blob_chunks tables that hold them there.)
ALTER TABLE attachments ADD COLUMN part_blob     TEXT    NOT NULL DEFAULT '';
ALTER TABLE attachments ADD COLUMN part_offset   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN part_length   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN part_encoding TEXT    NOT NULL DEFAULT '';
