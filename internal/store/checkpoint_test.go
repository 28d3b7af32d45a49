package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Writes reach the database file soon after they commit, copied by the
// checkpointer, although the log is far below the writer's own threshold
// (before it, a commit that crossed SQLite's 1,000 pages did the copy and
// its fsync itself).
func TestCheckpointerCopiesTheLogSoonAfterWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Write(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `CREATE TABLE scratch (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "postdesk.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	body := strings.Repeat("x", 10_000)
	for range 200 { // about 2 MB: some 500 pages, under the writer's threshold
		if err := db.Write(ctx, func(tx *Tx) error {
			_, err := tx.exec(ctx, `INSERT INTO scratch (body) VALUES (?)`, body)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); size() < before+1_500_000; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database file grew from %d to %d bytes: the log was not checkpointed", before, size())
		}
	}
}

// Close may be called twice (a test closes the store to make it fail, its
// cleanup closes it again).
func TestCloseTwice(t *testing.T) {
	db, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
