package store

import (
	"context"
	"fmt"
	"strings"
)

// On SQLite a ticket's search document is the rows of its parts in the
// FTS5 table ticket_search (migration 0026_search_parts.sql): part 0 is
// written whole (rowid = the ticket's id), and each later transaction that
// adds to the document adds a part of its own, so a growing ticket costs
// the words it gains. FTS5 updates a row as a delete, which tokenizes the
// old text again, and an insert of all of the new: when a document was one
// row rewritten whole, a message that joined a ticket cost its conversation
// twice over (2.3 s of the 18.9 s of CPU of a 10,000-message sync in
// bench-sync, on the single writer, and more with each message of a long
// thread). search_docs keeps what a document's writers must know without
// reading its text: the people in it, its size and its number of parts.

// searchPartShift places a part's number above the ticket's id in its
// rowid: part k of ticket id is k<<searchPartShift | id, and part 0 is the
// ticket's id, as every row was before parts.
const (
	searchPartShift = 40
	searchIDMask    = 1<<searchPartShift - 1
)

// searchPartRowID is the rowid of part k of a ticket's document.
func searchPartRowID(ticketID int64, k int) int64 { return int64(k)<<searchPartShift | ticketID }

// flushSearchParts writes the pending documents on SQLite: drops every part
// of the documents that are dropped or replaced, writes the whole ones as
// part 0 and each growing one's addition as its next part, and records
// them in search_docs.
func (tx *Tx) flushSearchParts(ctx context.Context, grow, drop, write []int64) error {
	for rest := drop; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		if err := tx.dropSearchParts(ctx, rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	rows := append(append(make([]int64, 0, len(write)+len(grow)), write...), grow...)
	for rest := rows; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		parts := make([]any, 0, 5*n)
		docs := make([]any, 0, 4*n)
		for _, id := range rest[:n] {
			c := tx.search[id]
			if c.whole {
				parts = append(parts, id, c.subject, c.people, c.body, c.notes)
				docs = append(docs, id, c.people, c.size, 1)
			} else {
				parts = append(parts, searchPartRowID(id, c.part), "", c.addPeople, c.body, c.notes)
				docs = append(docs, id, c.people, c.size, c.part+1)
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO ticket_search (rowid, subject, people, body, notes) VALUES (?, ?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?, ?)", n-1), parts...); err != nil {
			return fmt.Errorf("write %d search documents: %w", n, err)
		}
		if _, err := tx.exec(ctx, `INSERT INTO search_docs (ticket_id, people, size, parts) VALUES (?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?)", n-1)+` ON CONFLICT (ticket_id) DO UPDATE
			SET people = excluded.people, size = excluded.size, parts = excluded.parts`, docs...); err != nil {
			return fmt.Errorf("record %d search documents: %w", n, err)
		}
		rest = rest[n:]
	}
	return nil
}

// dropSearchParts deletes every part of the documents of ids, and their
// records.
func (tx *Tx) dropSearchParts(ctx context.Context, ids []int64) error {
	in, args := inList(ids)
	rows, err := tx.query(ctx, `SELECT ticket_id, parts FROM search_docs WHERE ticket_id IN `+in, args...)
	if err != nil {
		return fmt.Errorf("read %d search documents: %w", len(ids), err)
	}
	var rowids []int64
	for rows.Next() {
		var id int64
		var parts int
		if err := rows.Scan(&id, &parts); err != nil {
			rows.Close()
			return err
		}
		for k := range parts {
			rowids = append(rowids, searchPartRowID(id, k))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for rest := rowids; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		in, args := inList(rest[:n])
		if _, err := tx.exec(ctx, `DELETE FROM ticket_search WHERE rowid IN `+in, args...); err != nil {
			return fmt.Errorf("drop %d search document parts: %w", n, err)
		}
		rest = rest[n:]
	}
	if _, err := tx.exec(ctx, `DELETE FROM search_docs WHERE ticket_id IN `+in, args...); err != nil {
		return fmt.Errorf("drop %d search documents: %w", len(ids), err)
	}
	return nil
}
