package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// A transaction's changes to search documents are kept in memory and
// written just before it commits, a few statements for all of them, each
// ticket's document once however many of its messages the transaction
// adds.
//
// On SQLite, FTS5 flushes its pending terms to a new segment of the index
// at the start of every later statement of the transaction (each statement
// opens a savepoint, and FTS5 syncs at a savepoint), so writing a document
// per message made a segment per message, to be merged again at once: with
// the tokenizing of each grown document, two fifths of the single writer's
// time in bench-sync. On PostgreSQL, each update of a document writes a
// new version of the row, with its whole tsvector, and index entries for
// every word of it (when the tsvectors were generated from the whole
// text, half the writer's time in BenchmarkApplyBatch). The row locks are
// still taken where they were (see indexAdd); only the writes wait for
// the commit.
//
// Until they are written, a read of ticket_search in the transaction sees
// the stored documents, not the pending ones: the writers of a document
// look at tx.search first (pendingSearch). A transaction that rebuilds many
// documents (ReindexSearch) writes them whenever their text passes
// searchFlushBytes, so that it never holds much more than that in memory.

// searchChange is one ticket's pending document.
type searchChange struct {
	// whole: subject, people, body, notes and size are the whole
	// document; otherwise body and notes are appended to the stored
	// document's (on PostgreSQL, their tsvector to its tsvector), and
	// people and size replace its own.
	whole bool
	// replace: the stored document (if any) is dropped first.
	replace bool
	// drop: the ticket is gone; its document is dropped and none written.
	drop bool
	// queue: the document is left to ReindexSearch (a bulk load on
	// SQLite, BulkLoad): the ticket joins the search backlog at commit,
	// its stored document, if any, left as it is until the rebuild.
	queue                        bool
	subject, people, body, notes string
	size                         int
	// addPeople: of a document that grows, the part of people that is
	// new (PostgreSQL appends its words to the stored tsvector).
	addPeople string
}

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

// searchChunk is the size of the first statement of at most max (a
// power of two) rows that n rows are split into: sizes are powers of two,
// so a few statement texts are prepared once and reused.
func searchChunk(n, max int) int {
	size := max
	for size > n {
		size /= 2
	}
	return size
}

// inChunks calls fn with ids in chunks of at most maxSearchRows (see
// searchChunk), one statement each.
func inChunks[T any](ids []T, fn func(chunk []T) error) error {
	return inChunksOf(ids, maxSearchRows, fn)
}

// inChunksOf is inChunks with chunks of at most max.
func inChunksOf[T any](ids []T, max int, fn func(chunk []T) error) error {
	for rest := ids; len(rest) > 0; {
		n := searchChunk(len(rest), max)
		if err := fn(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// idList is ids as statement arguments, and "?, ?, …" for them.
func idList(ids []int64) ([]any, string) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args, "?" + strings.Repeat(", ?", len(ids)-1)
}

// maxSearchRows is the most documents one statement writes (a power of two).
const maxSearchRows = 64

// searchFlushBytes is how much text of whole documents a transaction keeps
// pending before it writes them (a rebuilt document holds up to
// searchTicketBytes). postdesk reindex --all of 600 tickets of 256 KB:
// peak RSS 51 MB with 1 MB, 74 MB with 4 MB, 245 MB holding all 200 of a
// batch; 43 MB when each document was written as it was built.
const searchFlushBytes = 1 << 20

// searchWhole counts a whole document of size bytes made pending, and
// writes what is pending once that passes searchFlushBytes.
func (tx *Tx) searchWhole(ctx context.Context, size int) error {
	tx.searchBytes += size
	if tx.searchBytes < searchFlushBytes {
		return nil
	}
	return tx.flushSearch(ctx)
}

// flushSearch writes the transaction's pending documents: grows the
// stored documents that grow, drops every stored document that is
// replaced, and inserts the new ones.
func (tx *Tx) flushSearch(ctx context.Context) error {
	if len(tx.search) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(tx.search))
	for id := range tx.search {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var grow, drop, write, queue []int64
	for _, id := range ids {
		switch c := tx.search[id]; {
		case c.queue:
			queue = append(queue, id)
		case c.drop:
			drop = append(drop, id)
		case !c.whole:
			grow = append(grow, id)
		default:
			if c.replace {
				drop = append(drop, id)
			}
			write = append(write, id)
		}
	}
	if err := tx.queueSearchDocs(ctx, queue); err != nil {
		return err
	}
	sqlite := tx.d.name() == "sqlite"
	if sqlite {
		// FTS5 updates a row as a delete and an insert anyway: the grown
		// documents are read, dropped and written whole with the others.
		if err := tx.readGrowing(ctx, grow); err != nil {
			return err
		}
		drop = append(drop, grow...)
		write = append(write, grow...)
	} else if err := tx.updateGrowing(ctx, grow); err != nil {
		return err
	}
	key := tx.d.searchKey()
	err := inChunks(drop, func(chunk []int64) error {
		args, list := idList(chunk)
		if _, err := tx.exec(ctx, `DELETE FROM ticket_search WHERE `+key+` IN (`+list+`)`, args...); err != nil {
			return fmt.Errorf("drop %d search documents: %w", len(chunk), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = inChunks(write, func(chunk []int64) error {
		n := len(chunk)
		args := make([]any, 0, 6*n)
		var q string
		if !sqlite {
			for _, id := range chunk {
				c := tx.search[id]
				args = append(args, id, c.subject, c.people, c.size,
					tsvectorText(tsPart{c.subject, 'A'}, tsPart{c.people, 'B'}, tsPart{c.notes, 'C'}, tsPart{c.body, 'D'}),
					tsvectorText(tsPart{c.people, 'D'}))
			}
			row := "(?, ?, ?, ?, ?::tsvector, ?::tsvector)"
			q = `INSERT INTO ticket_search (ticket_id, subject, people, size, tsv, people_tsv) VALUES ` + row + strings.Repeat(", "+row, n-1)
		} else {
			for _, id := range chunk {
				c := tx.search[id]
				args = append(args, id, c.subject, c.people, c.body, c.notes, c.size)
			}
			q = `INSERT INTO ticket_search (` + key + `, subject, people, body, notes, size) VALUES (?, ?, ?, ?, ?, ?)` +
				strings.Repeat(", (?, ?, ?, ?, ?, ?)", n-1)
		}
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("write %d search documents: %w", n, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tx.search, tx.searchBytes = nil, 0
	return nil
}

// BulkLoad marks the transaction as one batch of many (a mailbox's
// backlog being fetched): on SQLite, the search documents of the tickets
// it creates or grows are not written at its commit; the tickets are
// queued in the search backlog, their documents built from their rows by
// ReindexSearch once the load pauses (serve's background indexer, woken by
// SearchQueued). Until then a new ticket is not found by a search, and an
// older one is found by its earlier text only. Mail that arrives a few
// messages at a time is not a bulk load, and is searchable at its commit.
//
// The single writer is what bounds a load on SQLite, and FTS5's work was
// a third of it: tokenizing each document, adding its terms to the
// transaction's segment, merging segments. Deferred, each ticket's
// document is built once, when the load has paused, from all the messages
// it gained, rather than once when its first message came and again for
// every later one (FTS5 cannot append to a document: growing one
// tokenizes its whole text twice, the delete of the old row and the insert
// of the new, so a ticket that gains k messages during a load cost its
// text about k² times over: 3 s of the 8.5 s import of bench-sync before
// grown documents were deferred). PostgreSQL appends to a tsvector in
// place, and ignores BulkLoad.
func (tx *Tx) BulkLoad() { tx.bulk = true }

// DefersBulkSearch says whether a bulk load leaves its search documents
// to ReindexSearch (BulkLoad): on SQLite.
func (db *DB) DefersBulkSearch() bool { return db.d().name() == "sqlite" }

// deferSearch says whether this transaction leaves its search documents
// to ReindexSearch (BulkLoad).
func (tx *Tx) deferSearch() bool { return tx.bulk && tx.d.name() == "sqlite" }

// queueSearch leaves the ticket's document to ReindexSearch. Whatever was
// pending for it is dropped: the rebuild reads the rows this transaction
// writes, and drops the document of a ticket that is gone.
func (tx *Tx) queueSearch(ticketID int64) {
	if c := tx.pendingSearch(ticketID); c != nil && c.queue {
		return
	}
	tx.setSearch(ticketID, &searchChange{queue: true})
}

// SearchQueued is signalled (at most one signal waits) after the commit of
// a transaction that queued search documents in the backlog.
func (db *DB) SearchQueued() <-chan struct{} { return db.searchQueued }

// queueSearchDocs puts the tickets of ids in the search backlog, their
// stored documents left as they are until ReindexSearch rebuilds them.
func (tx *Tx) queueSearchDocs(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := inChunks(ids, func(chunk []int64) error {
		args, _ := idList(chunk)
		if _, err := tx.exec(ctx, `INSERT INTO search_backlog (ticket_id) VALUES (?)`+strings.Repeat(", (?)", len(chunk)-1)+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return fmt.Errorf("queue %d search documents: %w", len(chunk), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		select {
		case tx.db.searchQueued <- struct{}{}:
		default:
		}
	})
	return nil
}

// updateGrowing appends to the stored documents of ids (PostgreSQL), in
// place: the tsvector of what is added is appended to the stored one
// (tsvector || shifts its positions past the stored ones), so a growing
// ticket costs the words it gains, not all of its text again. That
// recomputing, when tsv was generated from the whole text, took a third
// of PostgreSQL's CPU in a 10,000-message sync (perf: to_tsvector under
// ExecComputeStoredGenerated).
func (tx *Tx) updateGrowing(ctx context.Context, ids []int64) error {
	for rest := ids; len(rest) > 0; {
		n := searchChunk(len(rest), maxSearchRows)
		args := make([]any, 0, 5*n)
		for _, id := range rest[:n] {
			c := tx.search[id]
			args = append(args, id, c.people, c.size,
				tsvectorText(tsPart{c.addPeople, 'B'}, tsPart{c.notes, 'C'}, tsPart{c.body, 'D'}),
				tsvectorText(tsPart{c.people, 'D'}))
		}
		row := "(?::bigint, ?::text, ?::bigint, ?::tsvector, ?::tsvector)"
		res, err := tx.exec(ctx, `UPDATE ticket_search AS s SET people = v.people, size = v.size, tsv = s.tsv || v.tsv, people_tsv = v.people_tsv
			FROM (VALUES `+row+strings.Repeat(", "+row, n-1)+`) AS v (id, people, size, tsv, people_tsv) WHERE s.ticket_id = v.id`, args...)
		if err != nil {
			return fmt.Errorf("grow %d search documents: %w", n, err)
		}
		if got, err := res.RowsAffected(); err != nil || got != int64(n) {
			// indexAdd read and locked each of them in this transaction.
			return fmt.Errorf("grow %d search documents: %d updated (%v)", n, got, err)
		}
		rest = rest[n:]
	}
	return nil
}

// readGrowing makes the pending changes of ids (documents that grow) whole:
// the stored document with the additions appended.
func (tx *Tx) readGrowing(ctx context.Context, ids []int64) error {
	return inChunks(ids, func(chunk []int64) error {
		n := len(chunk)
		args, list := idList(chunk)
		rows, err := tx.query(ctx, `SELECT rowid, subject, body, notes FROM ticket_search WHERE rowid IN (`+list+`)`, args...)
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
		return nil
	})
}
