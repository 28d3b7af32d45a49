package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// On SQLite, blobs up to 4 MiB go into pack files (a new one past the
// pack limit) and a larger one is a file of its own; each reads back whole
// and in ranges after the store is closed and opened again, and no blob
// file is created for a packed blob.
func TestPackedBlobs(t *testing.T) {
	defer store.SetPackLimit(100 << 10)()
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *store.DB {
		db, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	rng := rand.New(rand.NewPCG(1, 2))
	var raws [][]byte
	for i := range 40 {
		n := 1 + rng.IntN(20<<10)
		if i == 7 {
			n = 5 << 20 // over the packed limit: a file
		}
		raw := make([]byte, n)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		raws = append(raws, raw)
	}
	raws = append(raws, raws[3]) // the same bytes again: one place, two rows
	var sums []string
	for i, raw := range raws {
		sum, size, err := db.Blobs().Put(bytes.NewReader(raw))
		if err != nil || size != int64(len(raw)) {
			t.Fatalf("put %d: %d bytes, %v", i, size, err)
		}
		// Readable before its row commits (ingest parses it then).
		b, err := db.Blobs().Open(ctx, sum)
		if got := readAll(t, b, err); !bytes.Equal(got, raw) {
			t.Fatalf("blob %d read back before its commit differs", i)
		}
		if err := db.Blobs().Sync(); err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support-"+sum[:8]+strings.Repeat("x", i)+"@example.com", "")
			if err != nil {
				return err
			}
			m := store.Message{MailboxID: mb.ID, Direction: "in", Kind: store.KindEmail, DedupeKey: store.DedupeKey("", sum),
				Subject: "s", ReceivedAt: time.Now(), RawSHA256: sum, RawSize: size}
			return tx.InsertMessage(ctx, &m)
		})
		db.Blobs().Release(sum)
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		sums = append(sums, sum)
	}
	db.Close()

	db = open()
	defer func() { db.Close() }()
	for i, sum := range sums {
		b, err := db.Blobs().Open(ctx, sum)
		got := readAll(t, b, err)
		if !bytes.Equal(got, raws[i]) {
			t.Fatalf("blob %d (%d bytes) reads back as %d other bytes after reopening", i, len(raws[i]), len(got))
		}
	}
	b, err := db.Blobs().Open(ctx, sums[5])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Seek(10, 0); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 20)
	if _, err := b.Read(part); err != nil || !bytes.Equal(part, raws[5][10:30]) {
		t.Errorf("range of a packed blob: %q, %v", part, err)
	}
	if b.Size() != int64(len(raws[5])) {
		t.Errorf("size %d, want %d", b.Size(), len(raws[5]))
	}
	b.Close()

	var packs, files int
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case strings.HasSuffix(path, ".pack"):
			packs++
		default:
			files++
		}
		return nil
	})
	if files != 1 {
		t.Errorf("%d blob files, want 1 (the one over 4 MiB)", files)
	}
	if packs < 3 {
		t.Errorf("%d packs for ~400 KiB at a 100 KiB limit, want several", packs)
	}

	// Every pack cut short by a byte (a copy-based backup that stopped
	// early): the last blob of each is refused as damaged, none reads back
	// short, the others read back whole.
	db.Close()
	paths, _ := filepath.Glob(filepath.Join(dir, "blobs", "packs", "*.pack"))
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || os.Truncate(p, fi.Size()-1) != nil {
			t.Fatal(p, err)
		}
	}
	db = open()
	damaged := 0
	for i, sum := range sums {
		b, err := db.Blobs().Open(ctx, sum)
		if errors.Is(err, store.ErrBlobCorrupt) {
			damaged++
			continue
		}
		if got := readAll(t, b, err); !bytes.Equal(got, raws[i]) {
			t.Fatalf("blob %d (%d bytes) of a pack cut short reads back as %d other bytes", i, len(raws[i]), len(got))
		}
	}
	if damaged != len(paths) {
		t.Errorf("%d blobs refused as damaged, want one for each of the %d packs cut short", damaged, len(paths))
	}
}

// A row may name a packed blob only while its place is known: one whose
// holder released it before that row committed is refused (the message is
// fetched again), not committed naming bytes nobody can find. A blob stored
// and committed before is not appended again when put again.
func TestPackedBlobKeptOnlyWithItsPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert := func(sum string, size int64, n int) error {
		return db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support-"+strings.Repeat("y", n)+"@example.com", "")
			if err != nil {
				return err
			}
			m := store.Message{MailboxID: mb.ID, Direction: "in", Kind: store.KindEmail, DedupeKey: store.DedupeKey("", sum+strings.Repeat("y", n)),
				Subject: "s", ReceivedAt: time.Now(), RawSHA256: sum, RawSize: size}
			return tx.InsertMessage(ctx, &m)
		})
	}
	gone := []byte("put, then given up")
	sum, size, err := db.Blobs().Put(bytes.NewReader(gone))
	if err != nil {
		t.Fatal(err)
	}
	db.Blobs().Release(sum)
	if err := insert(sum, size, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a row naming a released blob: %v, want ErrNotFound", err)
	}

	raw := bytes.Repeat([]byte("kept once "), 1000)
	sum, size, err = db.Blobs().Put(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := insert(sum, size, 2); err != nil { // no Sync by the caller: the store flushes
		t.Fatal(err)
	}
	db.Blobs().Release(sum)
	packSize := func() int64 {
		var total int64
		filepath.WalkDir(filepath.Join(dir, "blobs", "packs"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
		return total
	}
	before := packSize()
	for i := range 3 {
		again, _, err := db.Blobs().Put(bytes.NewReader(raw))
		if err != nil || again != sum {
			t.Fatal(err)
		}
		if err := insert(again, size, 3+i); err != nil {
			t.Fatal(err)
		}
		db.Blobs().Release(again)
	}
	if after := packSize(); after != before {
		t.Errorf("packs grew from %d to %d bytes putting stored bytes again", before, after)
	}
	b, err := db.Blobs().Open(ctx, sum)
	if got := readAll(t, b, err); !bytes.Equal(got, raw) {
		t.Fatal("the blob reads back otherwise")
	}
}
