-- Postdesk schema, version 25 (PostgreSQL): a ticket's search tsvector is
-- a column of its own, no longer generated from the document's whole text.
-- A message or note that joins a ticket appends the tsvector of its own
-- words (store/search_defer.go, updateGrowing); before, every one made
-- PostgreSQL parse the ticket's whole text again, a third of its CPU in a
-- 10,000-message sync. The text of bodies and notes is then kept nowhere
-- in ticket_search (the messages and notes hold it, and a rebuild reads it
-- there); subject and people stay, people_tsv is still generated from
-- people.
ALTER TABLE ticket_search ALTER COLUMN tsv DROP EXPRESSION;
ALTER TABLE ticket_search ALTER COLUMN tsv SET NOT NULL;
ALTER TABLE ticket_search DROP COLUMN body, DROP COLUMN notes;
