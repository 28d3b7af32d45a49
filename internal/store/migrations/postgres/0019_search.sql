-- Postdesk schema, version 19 (PostgreSQL): full-text search over tickets.
-- One document per ticket, so every word of a search may come from a
-- different message of the conversation. Columns hold text already folded
-- by internal/search (lower case, no accents, letters and digits separated
-- by single spaces), written in the transaction that stores the ticket,
-- message or note; the "simple" configuration then makes each of those
-- words one lexeme, as SQLite's FTS5 "ascii" tokenizer does. Weights tell
-- the columns apart in the tsvector for ranking (A subject, B people, C
-- notes, D body); from: matches people_tsv.
--   subject: the ticket's subject
--   people:  the requester's and every incoming sender's address and name
--   body:    customer emails and agent replies (text, or text from HTML)
--   notes:   internal notes
--   size:    bytes indexed for the ticket (bounded under the 1 MB tsvector
--            limit; see store/search.go)
CREATE TABLE ticket_search (
    ticket_id BIGINT  PRIMARY KEY REFERENCES tickets (id),
    subject   TEXT    NOT NULL DEFAULT '',
    people    TEXT    NOT NULL DEFAULT '',
    body      TEXT    NOT NULL DEFAULT '',
    notes     TEXT    NOT NULL DEFAULT '',
    size      BIGINT  NOT NULL DEFAULT 0,
    tsv       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, subject), 'A') ||
        setweight(to_tsvector('simple'::regconfig, people), 'B') ||
        setweight(to_tsvector('simple'::regconfig, notes), 'C') ||
        setweight(to_tsvector('simple'::regconfig, body), 'D')) STORED,
    -- from: looks here: a small tsvector whose GIN index answers exactly,
    -- where a weight restriction on tsv would read every candidate's tsv.
    people_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, people)) STORED
);
CREATE INDEX ticket_search_tsv ON ticket_search USING GIN (tsv);
CREATE INDEX ticket_search_people_tsv ON ticket_search USING GIN (people_tsv);
-- No statistics on tsv: with them, the planner sees that a common word
-- matches most tickets and scans the table, reading every ticket's tsvector
-- (TOASTed, a few KB each), which takes ten times longer than the GIN index
-- it then skips. Without them it estimates a match as rare and always uses
-- the index; rank is computed for a bounded number of rows (store/tickets.go).
ALTER TABLE ticket_search ALTER COLUMN tsv SET STATISTICS 0;
ALTER TABLE ticket_search ALTER COLUMN people_tsv SET STATISTICS 0;
-- Every text and tsvector value out of line (TOAST), so the table itself
-- is a few dozen bytes a ticket: a search that matches most tickets reads
-- their rows (ids, small people_tsv) in a few hundred pages, not 10,000.
ALTER TABLE ticket_search SET (toast_tuple_target = 128);

-- Tickets whose document must be (re)built from their rows: every ticket
-- that existed before this version. `postdesk reindex` (and serve, in the
-- background) drains it in batches; it is resumable by construction.
CREATE TABLE search_backlog (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id)
);
INSERT INTO search_backlog (ticket_id) SELECT id FROM tickets;
