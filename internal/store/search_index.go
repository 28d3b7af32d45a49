package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postdesk/postdesk/internal/search"
)

// The search index keeps one document per ticket (table ticket_search,
// migration *_search.sql): its subject, the people who wrote in, the text of its
// customer emails and agent replies, and its internal notes, folded by
// search.IndexText. Every writer of those rows (CreateTicket,
// InsertMessage, AddNote) updates the document in its own transaction, so
// a committed message is searchable at once and a rolled-back one never
// was, except for the documents a bulk load grows on SQLite (Tx.BulkLoad).
// Tickets whose document is missing or stale wait in search_backlog until
// ReindexSearch rebuilds them from their rows.
//
// Quoted lines of an email are not indexed (search.Unquoted): what they
// quote is indexed as itself. A document is bounded, so that a huge thread or a pasted log file cannot
// make writes slow or exceed PostgreSQL's 1 MB tsvector limit (a tsvector
// of n bytes of folded text takes at most about 2n): a message or note adds
// at most its first searchPartBytes, people at most searchPeopleBytes, and
// a ticket stops growing at searchTicketBytes (its first 256 KB of text
// stay searchable).
//
// Ranking costs a read of each match's document, so a search ranks the
// searchRanked newest tickets it matches (by id); the others, of a search
// for a word most tickets contain, follow them by last activity.
const (
	searchRanked       = 1000
	searchSubjectBytes = 2 << 10
	searchPeopleBytes  = 4 << 10
	searchPartBytes    = 32 << 10
	searchTicketBytes  = 256 << 10
)

// searchIndexed says whether a message's text belongs in its ticket's
// document: customer emails and agent replies (not acknowledgements,
// automatic replies, bounces or forwards kept for their original).
func searchIndexed(m *Message) bool {
	return m.TicketID != 0 && (m.Kind == KindEmail || m.Kind == KindReply)
}

// peopleText is a sender as indexed: address and name.
func peopleText(address, name string) string {
	return search.IndexText(address+" "+name, searchPeopleBytes)
}

// indexNewTicket writes the document of a ticket just created.
func (tx *Tx) indexNewTicket(ctx context.Context, id int64, t Ticket) error {
	if tx.deferSearch() {
		tx.queueSearch(id)
		return nil
	}
	subject := search.IndexText(t.Subject, searchSubjectBytes)
	people := peopleText(t.RequesterAddress, t.RequesterName)
	// Written at commit (search_defer.go).
	tx.setSearch(id, &searchChange{whole: true, replace: tx.pendingSearch(id) != nil, subject: subject, people: people, size: len(subject) + len(people)})
	return nil
}

// searchAddition is what one message or note adds to a document.
type searchAddition struct {
	people string // a sender's folded address and name, added once
	body   string
	notes  string
}

// SearchText is what a message's text adds to its ticket's search
// document. Folding text takes time, so ingest computes it while it parses
// a message, beside the single writer of SQLite, rather than in the
// transaction.
type SearchText struct {
	from, body string // the text it was computed from, and the result
}

// NewSearchText folds a message's text body for the search index.
func NewSearchText(text string) SearchText {
	return SearchText{from: text, body: search.IndexText(search.Unquoted(text), searchPartBytes)}
}

func messageAddition(m *Message) searchAddition {
	st := m.Search
	if st.from != m.TextBody {
		st = NewSearchText(m.TextBody) // not computed ahead, or for other text
	}
	a := searchAddition{body: st.body}
	if m.Direction == "in" {
		a.people = peopleText(m.FromAddress, m.FromName)
	}
	return a
}

// indexAdd appends to a ticket's document. A ticket without one (it waits
// in the backlog) is queued again, so the rebuild that is due sees this
// row too. a is called only when the addition is written now.
func (tx *Tx) indexAdd(ctx context.Context, ticketID int64, addition func() searchAddition) error {
	if tx.deferSearch() {
		tx.queueSearch(ticketID)
		return nil
	}
	a := addition()
	if c := tx.pendingSearch(ticketID); c != nil {
		// This transaction created, rebuilt or grew the document already
		// (and holds its locks): the addition joins what it writes at commit.
		if c.drop {
			return nil // the ticket is gone
		}
		d := searchDoc{people: c.people, size: c.size}
		d.add(a)
		if !c.whole {
			c.addPeople = joinWords(c.addPeople, d.people[len(c.people):])
		}
		c.people, c.size, c.body, c.notes = d.people, d.size, c.body+d.body, c.notes+d.notes
		return nil
	}
	key := tx.d.searchKey()
	// The ticket's row first, as every writer of a ticket locks it
	// (ingest updates it before adding a message, a note touches it
	// after): two writers of one ticket never wait for each other in
	// opposite orders. NO KEY (LockTicket): this transaction's insert of
	// the message or note already holds the row's KEY SHARE lock, and so
	// may another's; FOR UPDATE would wait for it, and it for us.
	if err := tx.LockTicket(ctx, ticketID); err != nil {
		return err
	}
	var people string
	var size int
	err := one(tx.queryRow(ctx, `SELECT people, size FROM ticket_search WHERE `+key+` = ?`+tx.d.forUpdate(), ticketID).Scan(&people, &size))
	if errors.Is(err, ErrNotFound) {
		if _, err := tx.exec(ctx, `INSERT INTO search_backlog (ticket_id) VALUES (?) ON CONFLICT DO NOTHING`, ticketID); err != nil {
			return fmt.Errorf("queue ticket %d for the search index: %w", ticketID, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the search document of ticket %d: %w", ticketID, err)
	}
	d := searchDoc{people: people, size: size}
	d.add(a)
	if d.size == size {
		return nil // full, or nothing new
	}
	// Appended at commit (search_defer.go), the row locked meanwhile.
	tx.setSearch(ticketID, &searchChange{people: d.people, addPeople: joinWords("", d.people[len(people):]), size: d.size, body: d.body, notes: d.notes})
	return nil
}

// joinWords appends words (which may start with a space) to s, one space
// between them.
func joinWords(s, words string) string {
	words = strings.TrimLeft(words, " ")
	switch {
	case words == "":
		return s
	case s == "":
		return words
	}
	return s + " " + words
}

// searchDoc accumulates a document within the bounds; body and notes are
// what to append (each part after a space).
type searchDoc struct {
	people, body, notes string
	size                int
}

func (d *searchDoc) add(a searchAddition) {
	if a.people != "" && !strings.Contains(" "+d.people+" ", " "+a.people+" ") &&
		len(d.people)+1+len(a.people) <= searchPeopleBytes && d.size+1+len(a.people) <= searchTicketBytes {
		if d.people != "" {
			d.people += " "
			d.size++
		}
		d.people += a.people
		d.size += len(a.people)
	}
	d.body += d.part(a.body)
	d.notes += d.part(a.notes)
}

// part is " "+text, cut at a word to fit the ticket's bound ("" if none fits).
func (d *searchDoc) part(text string) string {
	room := searchTicketBytes - d.size - 1
	if text == "" || room <= 0 {
		return ""
	}
	if len(text) > room {
		text = text[:room]
		if i := strings.LastIndexByte(text, ' '); i >= 0 {
			text = text[:i]
		} else {
			return ""
		}
	}
	d.size += 1 + len(text)
	return " " + text
}

// SearchBacklog counts the tickets whose search document waits to be built.
func (c conn) SearchBacklog(ctx context.Context) (int, error) {
	var n int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM search_backlog`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the search backlog: %w", err)
	}
	return n, nil
}

// QueueSearchReindex puts every ticket in the search backlog (after a
// change to what is indexed) and returns how many it holds.
func (db *DB) QueueSearchReindex(ctx context.Context) (int, error) {
	err := db.Write(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO search_backlog (ticket_id) SELECT id FROM tickets WHERE true ON CONFLICT DO NOTHING`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue every ticket for the search index: %w", err)
	}
	return db.SearchBacklog(ctx)
}

// ReindexSearch builds the search documents of the tickets in the backlog,
// batch tickets per transaction, until the backlog is empty or ctx ends;
// progress (if not nil) hears the count done after each batch. Stopped
// halfway, it resumes where it stopped: the backlog is what is left.
func (db *DB) ReindexSearch(ctx context.Context, batch int, progress func(done int)) (done int, err error) {
	return db.ReindexSearchUpTo(ctx, batch, 0, progress)
}

// ReindexSearchUpTo is ReindexSearch that stops after about max tickets
// (max <= 0: none), leaving the rest of the backlog for a later pass: serve
// drains what a bulk fetch queued so far, and what it queues meanwhile
// waits, to be rebuilt once rather than chased ticket by ticket.
func (db *DB) ReindexSearchUpTo(ctx context.Context, batch, max int, progress func(done int)) (done int, err error) {
	if batch <= 0 {
		batch = 200
	}
	for max <= 0 || done < max {
		n := 0
		err := db.Write(ctx, func(tx *Tx) error {
			rows, err := tx.query(ctx, `SELECT ticket_id FROM search_backlog ORDER BY ticket_id LIMIT ?`, batch)
			if err != nil {
				return err
			}
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if err := inChunksOf(ids, rebuildChunk, func(chunk []int64) error { return tx.rebuildSearchDocs(ctx, chunk) }); err != nil {
				return err
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("rebuild the search index: %w", err)
		}
		if n == 0 {
			return done, nil
		}
		done += n
		if progress != nil {
			progress(done)
		}
	}
	return done, nil
}

// rebuildChunk is the most tickets rebuildSearchDocs builds at once: their
// documents are all in memory before any is written (a statement cannot
// run on PostgreSQL's connection while it streams the messages), each up
// to searchTicketBytes.
const rebuildChunk = 16

// rebuildSearchDocs writes the documents of tickets ids again from their
// rows and takes them off the backlog, a few statements for them all (one
// ticket at a time, four statements each, took 0.6 ms a ticket). Tickets
// with internal notes are rebuilt one by one: their notes follow their
// messages in the document.
func (tx *Tx) rebuildSearchDocs(ctx context.Context, ids []int64) error {
	args, list := idList(ids)
	// The tickets first, locked in id order, so that a writer of their
	// messages or notes (which update the ticket too) commits before they
	// are read, or waits for this rebuild and then adds to its documents
	// (on PostgreSQL: a note committed after the look for notes below but
	// before the lock was left out for good).
	rows, err := tx.query(ctx, `SELECT id, subject, requester_address, requester_name FROM tickets WHERE id IN (`+list+`) ORDER BY id`+tx.d.forNoKeyUpdate(), args...)
	if err != nil {
		return fmt.Errorf("read %d tickets: %w", len(ids), err)
	}
	type building struct {
		subject string
		doc     searchDoc
	}
	docs := make(map[int64]*building, len(ids))
	for rows.Next() {
		var t Ticket
		if err := rows.Scan(&t.ID, &t.Subject, &t.RequesterAddress, &t.RequesterName); err != nil {
			rows.Close()
			return err
		}
		b := &building{subject: search.IndexText(t.Subject, searchSubjectBytes), doc: searchDoc{people: peopleText(t.RequesterAddress, t.RequesterName)}}
		b.doc.size = len(b.subject) + len(b.doc.people)
		docs[t.ID] = b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.query(ctx, `SELECT DISTINCT ticket_id FROM notes WHERE ticket_id IN (`+list+`) AND kind = ?`, append(args, NoteInternal)...)
	if err != nil {
		return fmt.Errorf("look for the notes of %d tickets: %w", len(ids), err)
	}
	withNotes, err := scanInt64s(rows)
	if err != nil {
		return fmt.Errorf("look for the notes of %d tickets: %w", len(ids), err)
	}
	noted := map[int64]bool{}
	for _, id := range withNotes {
		noted[id] = true
	}
	for _, id := range ids {
		if noted[id] {
			if err := tx.rebuildSearchDoc(ctx, id); err != nil {
				return err
			}
		}
	}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return noted[id] })
	if len(ids) == 0 {
		return nil
	}
	args, list = idList(ids)
	if _, err := tx.exec(ctx, `DELETE FROM search_backlog WHERE ticket_id IN (`+list+`)`, args...); err != nil {
		return fmt.Errorf("take %d tickets off the search backlog: %w", len(ids), err)
	}
	rows, err = tx.query(ctx, `SELECT ticket_id, direction, kind, from_address, from_name, text_body FROM messages
		WHERE ticket_id IN (`+list+`) AND kind IN (?, ?) ORDER BY ticket_id, id`, append(args, KindEmail, KindReply)...)
	if err != nil {
		return fmt.Errorf("read the messages of %d tickets: %w", len(ids), err)
	}
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.TicketID, &m.Direction, &m.Kind, &m.FromAddress, &m.FromName, &m.TextBody); err != nil {
			rows.Close()
			return err
		}
		if b := docs[m.TicketID]; b != nil && b.doc.size < searchTicketBytes {
			b.doc.add(messageAddition(&m))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	size := 0
	for _, id := range ids {
		b := docs[id]
		if b == nil {
			tx.setSearch(id, &searchChange{replace: true, drop: true}) // the ticket is gone
			continue
		}
		d := b.doc
		tx.setSearch(id, &searchChange{whole: true, replace: true, subject: b.subject, people: d.people, body: d.body, notes: d.notes, size: d.size})
		size += d.size
	}
	// Written at commit, or now if the pending text passes
	// searchFlushBytes (search_defer.go).
	return tx.searchWhole(ctx, size)
}

// rebuildSearchDoc writes a ticket's document again from its rows and
// takes it off the backlog.
func (tx *Tx) rebuildSearchDoc(ctx context.Context, ticketID int64) error {
	var t Ticket
	// Locking the ticket makes a concurrent writer of its messages wait
	// (they update the ticket too), so none is missed.
	err := one(tx.queryRow(ctx, `SELECT subject, requester_address, requester_name FROM tickets WHERE id = ?`+tx.d.forNoKeyUpdate(), ticketID).
		Scan(&t.Subject, &t.RequesterAddress, &t.RequesterName))
	gone := errors.Is(err, ErrNotFound)
	if err != nil && !gone {
		return fmt.Errorf("read ticket %d: %w", ticketID, err)
	}
	// Dropped and written again at commit (search_defer.go).
	tx.setSearch(ticketID, &searchChange{replace: true, drop: true})
	if _, err := tx.exec(ctx, `DELETE FROM search_backlog WHERE ticket_id = ?`, ticketID); err != nil {
		return fmt.Errorf("take ticket %d off the search backlog: %w", ticketID, err)
	}
	if gone {
		return nil
	}
	subject := search.IndexText(t.Subject, searchSubjectBytes)
	d := searchDoc{people: peopleText(t.RequesterAddress, t.RequesterName)}
	d.size = len(subject) + len(d.people)
	rows, err := tx.query(ctx, `SELECT direction, kind, from_address, from_name, text_body FROM messages
		WHERE ticket_id = ? AND kind IN (?, ?) ORDER BY id`, ticketID, KindEmail, KindReply)
	if err != nil {
		return fmt.Errorf("read the messages of ticket %d: %w", ticketID, err)
	}
	for rows.Next() {
		m := Message{TicketID: ticketID}
		if err := rows.Scan(&m.Direction, &m.Kind, &m.FromAddress, &m.FromName, &m.TextBody); err != nil {
			rows.Close()
			return err
		}
		d.add(messageAddition(&m))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.query(ctx, `SELECT body FROM notes WHERE ticket_id = ? AND kind = ? ORDER BY id`, ticketID, NoteInternal)
	if err != nil {
		return fmt.Errorf("read the notes of ticket %d: %w", ticketID, err)
	}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return err
		}
		d.add(searchAddition{notes: search.IndexText(body, searchPartBytes)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx.setSearch(ticketID, &searchChange{whole: true, replace: true, subject: subject, people: d.people, body: d.body, notes: d.notes, size: d.size})
	return tx.searchWhole(ctx, d.size)
}
