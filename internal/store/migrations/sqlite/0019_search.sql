-- Postdesk schema, version 19 (SQLite): full-text search over tickets.
-- One document per ticket (rowid = tickets.id), so every word of a search
-- may come from a different message of the conversation. Columns hold text
-- already folded by internal/search (lower case, no accents, letters and
-- digits separated by single spaces), written in the transaction that
-- stores the ticket, message or note; the "ascii" tokenizer then splits at
-- the spaces only, exactly as PostgreSQL's "simple" parser does.
--   subject: the ticket's subject
--   people:  the requester's and every incoming sender's address and name
--   body:    customer emails and agent replies (text, or text from HTML)
--   notes:   internal notes
--   size:    bytes indexed for the ticket (bounded; see store/search.go)
CREATE VIRTUAL TABLE ticket_search USING fts5(subject, people, body, notes, size UNINDEXED, tokenize = 'ascii');

-- Tickets whose document must be (re)built from their rows: every ticket
-- that existed before this version. `postdesk reindex` (and serve, in the
-- background) drains it in batches; it is resumable by construction.
CREATE TABLE search_backlog (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets (id)
);
INSERT INTO search_backlog (ticket_id) SELECT id FROM tickets;
