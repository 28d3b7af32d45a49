-- Postdesk schema, version 25 (PostgreSQL): a ticket's tsvectors are
-- columns Postdesk writes, no longer generated from the document's text.
-- Postdesk builds them from the tokens of internal/search
-- (store/search_tsvector.go), the same tokens SQLite's FTS5 table holds,
-- and searches with tsqueries of those tokens: PostgreSQL's parser no
-- longer splits the folded text a second time. A message or note that
-- joins a ticket appends the tsvector of its own words (tsv || new, in
-- store/search_defer.go); before, every one made PostgreSQL parse the
-- ticket's whole text again, a third of its CPU in a 10,000-message sync.
-- The text of bodies and notes is then kept nowhere in ticket_search (the
-- messages and notes hold it, and a rebuild reads it there).
--
-- Documents already stored are what the parser made of the folded text,
-- which is nearly always these tokens, but not for a token of digits, an
-- "e", digits and letters, as in hashes and order numbers: the parser
-- reads "3e8af" as the number 3e8 and the word af, where the query now
-- asks for 3e8af. So every stored document is queued to be built again;
-- serve rebuilds them in the background (postdesk reindex does it at
-- once), and each stays searchable as it was until then.
ALTER TABLE ticket_search ALTER COLUMN tsv DROP EXPRESSION;
ALTER TABLE ticket_search ALTER COLUMN people_tsv DROP EXPRESSION;
ALTER TABLE ticket_search ALTER COLUMN tsv SET NOT NULL;
ALTER TABLE ticket_search ALTER COLUMN people_tsv SET NOT NULL;
ALTER TABLE ticket_search DROP COLUMN body, DROP COLUMN notes;
INSERT INTO search_backlog (ticket_id) SELECT ticket_id FROM ticket_search ON CONFLICT DO NOTHING;
