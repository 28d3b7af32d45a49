package store

import "context"

// MigrateTo applies the migrations up to version upTo (tests of a
// migration's data conversion).
func (db *DB) MigrateTo(ctx context.Context, upTo int) (int, error) { return db.migrateTo(ctx, upTo) }

// ExecForTest runs a statement on the write pool (placeholders as ?).
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	return db.Write(ctx, func(tx *Tx) error { _, err := tx.exec(ctx, query, args...); return err })
}
