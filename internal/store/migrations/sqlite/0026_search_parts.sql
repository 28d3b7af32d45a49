-- Postdesk schema, version 26 (SQLite): a ticket's search document grows by
-- adding a row to ticket_search, not by writing its whole text again.
--
-- FTS5 updates a row as a delete (which tokenizes the old text again) and an
-- insert (which tokenizes all of the new), so each message that joined a
-- ticket cost its whole conversation twice over: a quarter of the single
-- writer's time in a 10,000-message sync, and more with every message of a
-- long thread. A document is now the rows of its parts:
--   part 0, rowid = ticket id (every row before this version): the subject,
--     the people, and the text of the transaction that wrote it whole;
--   part k >= 1, rowid = k << 40 | ticket id: what one later transaction
--     added (its new people, bodies and notes; no subject).
-- A search matches each of its terms in any part of a ticket (store/
-- search_sql.go). The ticket's own bookkeeping, which a part would otherwise
-- have to be rewritten for, is in search_docs: every person already in the
-- document (each is added once), the bytes indexed (bounded), and how many
-- parts there are. ticket_search's size column is no longer written.
CREATE TABLE search_docs (
    ticket_id INTEGER PRIMARY KEY,
    people    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    parts     INTEGER NOT NULL
);
INSERT INTO search_docs (ticket_id, people, size, parts)
SELECT rowid, people, size, 1 FROM ticket_search;
