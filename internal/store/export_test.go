package store

import (
	"context"
	"errors"
	"strings"
)

// MigrateTo applies the migrations up to version upTo (tests of a
// migration's data conversion).
func (db *DB) MigrateTo(ctx context.Context, upTo int) (int, error) { return db.migrateTo(ctx, upTo) }

// ExecForTest runs a statement on the write pool (placeholders as ?).
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	return db.Write(ctx, func(tx *Tx) error { _, err := tx.exec(ctx, query, args...); return err })
}

// MigrationVersion is the version of the migration whose file name ends
// with suffix ("_search.sql"), so a test of its data conversion can stop
// just before it wherever the integrator numbers it.
func (db *DB) MigrationVersion(suffix string) (int, error) {
	all, err := db.migrations()
	if err != nil {
		return 0, err
	}
	for _, m := range all {
		if strings.HasSuffix(m.name, suffix) {
			return m.version, nil
		}
	}
	return 0, ErrNotFound
}

// SetPackLimit sets the size past which a new pack file is started, and
// returns a function that restores it.
func SetPackLimit(n int64) func() {
	old := packLimit
	packLimit = n
	return func() { packLimit = old }
}

// Search index internals (TestReindexBoundsPendingText).
const (
	SearchPartBytes  = searchPartBytes
	SearchFlushBytes = searchFlushBytes
)

// RebuildSearchDoc rebuilds one ticket's search document in tx.
func (tx *Tx) RebuildSearchDoc(ctx context.Context, ticketID int64) error {
	return tx.rebuildSearchDoc(ctx, ticketID)
}

// PendingSearchBytes is the text of whole search documents tx has yet to
// write.
func (tx *Tx) PendingSearchBytes() int { return tx.searchBytes }

// SearchDocuments counts the rows of ticket_search.
func (db *DB) SearchDocuments(ctx context.Context) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM ticket_search`).Scan(&n)
	return n, err
}

// SearchDocument is a ticket's stored search document as one string (on
// PostgreSQL with its tsvectors), "" when it has none.
func (db *DB) SearchDocument(ctx context.Context, ticketID int64) (string, error) {
	q := `SELECT subject || '|' || people || '|' || body || '|' || notes || '|' || size FROM ticket_search WHERE rowid = ?`
	if db.d().name() != "sqlite" {
		q = `SELECT subject || '|' || people || '|' || size || '|' || tsv::text || '|' || people_tsv::text FROM ticket_search WHERE ticket_id = ?`
	}
	var doc string
	err := one(db.queryRow(ctx, q, ticketID).Scan(&doc))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return doc, err
}
