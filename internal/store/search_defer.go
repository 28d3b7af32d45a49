package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// On SQLite, a transaction's changes to search documents are kept in
// memory and written just before it commits, a few statements for all of
// them. FTS5 flushes its pending terms to a new segment of the index at the
// start of every later statement of the transaction (each statement opens
// a savepoint, and FTS5 syncs at a savepoint), so writing a document per
// message made a segment per message, to be merged again at once: with the
// tokenizing of each grown document, two fifths of the single writer's time
// in bench-sync. Now a batch of messages writes one segment, and a ticket
// that several messages of a batch join is tokenized once.
//
// PostgreSQL writes each change at once (searchDeferred is false): its
// rows are locked in the order the comments of indexAdd explain.

// searchChange is one ticket's pending document.
type searchChange struct {
	// whole: subject, people, body, notes and size are the whole
	// document; otherwise body and notes are appended to the stored
	// document's, and people and size replace its own.
	whole bool
	// replace: the stored document (if any) is dropped first.
	replace bool
	// drop: the ticket is gone; its document is dropped and none written.
	drop                         bool
	subject, people, body, notes string
	size                         int
}

// searchDeferred says whether this transaction keeps its document
// changes until commit.
func (tx *Tx) searchDeferred() bool { return tx.d.name() == "sqlite" }

// pendingSearch returns the ticket's pending change, if any.
func (tx *Tx) pendingSearch(ticketID int64) *searchChange {
	return tx.search[ticketID]
}

func (tx *Tx) setSearch(ticketID int64, c *searchChange) {
	if tx.search == nil {
		tx.search = map[int64]*searchChange{}
	}
	tx.search[ticketID] = c
}

// searchChunks splits n rows into statements of at most maxSearchRows,
// in sizes that are powers of two, so a few statement texts are prepared
// once and reused.
func searchChunks(n int) []int {
	var out []int
	for size := maxSearchRows; n > 0; size /= 2 {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// maxSearchRows is the most documents one statement writes (a power of two).
const maxSearchRows = 64

// flushSearch writes the transaction's pending documents: reads the
// stored documents that grow, drops every stored document that changes,
// and inserts the new ones.
func (tx *Tx) flushSearch(ctx context.Context) error {
	if len(tx.search) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(tx.search))
	var grow []int64
	for id, c := range tx.search {
		ids = append(ids, id)
		if !c.whole && !c.drop {
			grow = append(grow, id)
		}
	}
	slices.Sort(ids)
	slices.Sort(grow)
	if err := tx.readGrowing(ctx, grow); err != nil {
		return err
	}
	var drop, write []int64
	for _, id := range ids {
		c := tx.search[id]
		if c.replace || c.drop {
			drop = append(drop, id)
		}
		if !c.drop {
			write = append(write, id)
		}
	}
	for rest := drop; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		args := make([]any, n)
		for i, id := range rest[:n] {
			args[i] = id
		}
		if _, err := tx.exec(ctx, `DELETE FROM ticket_search WHERE rowid IN (?`+strings.Repeat(", ?", n-1)+`)`, args...); err != nil {
			return fmt.Errorf("drop %d search documents: %w", n, err)
		}
		rest = rest[n:]
	}
	for rest := write; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		args := make([]any, 0, 6*n)
		for _, id := range rest[:n] {
			c := tx.search[id]
			args = append(args, id, c.subject, c.people, c.body, c.notes, c.size)
		}
		q := `INSERT INTO ticket_search (rowid, subject, people, body, notes, size) VALUES (?, ?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?, ?)", n-1)
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("write %d search documents: %w", n, err)
		}
		rest = rest[n:]
	}
	tx.search = nil
	return nil
}

// readGrowing makes the pending changes of ids (documents that grow) whole:
// the stored document with the additions appended.
func (tx *Tx) readGrowing(ctx context.Context, ids []int64) error {
	for rest := ids; len(rest) > 0; {
		n := searchChunks(len(rest))[0]
		args := make([]any, n)
		for i, id := range rest[:n] {
			args[i] = id
		}
		rows, err := tx.query(ctx, `SELECT rowid, subject, body, notes FROM ticket_search WHERE rowid IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return fmt.Errorf("read %d search documents: %w", n, err)
		}
		found := 0
		for rows.Next() {
			var id int64
			var subject, body, notes string
			if err := rows.Scan(&id, &subject, &body, &notes); err != nil {
				rows.Close()
				return err
			}
			c := tx.search[id]
			c.subject, c.body, c.notes = subject, body+c.body, notes+c.notes
			c.whole, c.replace = true, true
			found++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if found != n {
			// indexAdd read each of them in this transaction, and only
			// flushSearch drops documents.
			return fmt.Errorf("read %d search documents: %d were missing", n, n-found)
		}
		rest = rest[n:]
	}
	return nil
}
