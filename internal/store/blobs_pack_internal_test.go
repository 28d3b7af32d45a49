package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// Packs rotated away are closed once flushed, whether or not a sync ran
// between their last write and the rotation.
func TestPackRotationClosesPacks(t *testing.T) {
	defer SetPackLimit(1000)()
	b, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	for i := range 60 {
		data := bytes.Repeat([]byte{byte(i)}, 900) // one pack each
		sum, _, err := b.Put(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		b.Release(sum)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after > before+2 {
		t.Fatalf("%d files open after 60 rotations, %d before", after, before)
	}
}

// A place is recorded only once its bytes are flushed: a row committed
// without the caller's Sync flushes them itself.
func TestPackPlaceFlushedBeforeItsRow(t *testing.T) {
	b, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := b.Put(bytes.NewReader([]byte("not yet on disk")))
	if err != nil {
		t.Fatal(err)
	}
	place, _ := b.packs.pendingPlace(sum)
	if ok, _ := b.packs.flushed(place); ok {
		t.Fatal("flushed before any sync")
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.packs.flushed(place); !ok {
		t.Fatal("not flushed after a sync")
	}
}

// A blob appended to a pack while a sync flushes it, the pack then rotated
// away before the sync ends, is flushed by the next sync. The first sync
// closed that pack and the next skipped it, so the blob never counted as
// flushed and every commit naming it failed ("its pack 1 could not be
// flushed to disk", seen in a bench-sync run).
func TestPackWrittenDuringItsFlush(t *testing.T) {
	defer SetPackLimit(1000)()
	b, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(fill byte, n int) blobPlace {
		t.Helper()
		sum, _, err := b.Put(bytes.NewReader(bytes.Repeat([]byte{fill}, n)))
		if err != nil {
			t.Fatal(err)
		}
		place, ok := b.packs.pendingPlace(sum)
		if !ok {
			t.Fatal("no pending place")
		}
		return place
	}
	first := put(1, 400)
	var during, rotated blobPlace
	b.packs.flushing = func() {
		b.packs.flushing = nil
		during = put(2, 400)  // the same pack, past the end this sync flushes
		rotated = put(3, 400) // over the limit: a new pack
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if during.pack != first.pack || rotated.pack == first.pack {
		t.Fatalf("places %+v %+v %+v: the test did not rotate as intended", first, during, rotated)
	}
	if ok, _ := b.packs.flushed(first); !ok {
		t.Error("the blob written before the sync is not flushed")
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []blobPlace{during, rotated} {
		if ok, poisoned := b.packs.flushed(p); !ok || poisoned {
			t.Errorf("blob at %+v after the next sync: flushed %v, poisoned %v", p, ok, poisoned)
		}
	}
}

// A pack is counted flushed by its own flush: one that succeeded beside
// another whose flush failed (found by a reviewer), and, once the folder's
// own flush succeeds, one whose folder entry could not be flushed the
// first time.
func TestPackFlushedByItsOwnFlush(t *testing.T) {
	defer SetPackLimit(1000)()
	dir := t.TempDir()
	b, err := OpenBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	put := func(fill byte) blobPlace {
		t.Helper()
		sum, _, err := b.Put(bytes.NewReader(bytes.Repeat([]byte{fill}, 700))) // a pack each
		if err != nil {
			t.Fatal(err)
		}
		place, _ := b.packs.pendingPlace(sum)
		return place
	}
	failed, fine := put(1), put(2)
	for _, o := range b.packs.unsynced {
		if o.id == failed.pack {
			o.f.Close() // its flush fails, as an EIO would
		}
	}
	if err := b.Sync(); err == nil {
		t.Fatal("a sync with a pack that cannot be flushed succeeded")
	}
	if ok, poisoned := b.packs.flushed(failed); ok || !poisoned {
		t.Errorf("the failed pack: flushed %v, poisoned %v", ok, poisoned)
	}
	if ok, poisoned := b.packs.flushed(fine); !ok || poisoned {
		t.Errorf("the pack flushed beside it: flushed %v, poisoned %v", ok, poisoned)
	}

	// The folder cannot be flushed: nothing new counts until it can.
	third := put(3)
	b.packs.dir = filepath.Join(dir, "gone")
	if err := b.Sync(); err == nil {
		t.Fatal("a sync whose folder flush failed succeeded")
	}
	if ok, _ := b.packs.flushed(third); ok {
		t.Error("a new pack counted flushed while its folder entry was not")
	}
	b.packs.dir = dir
	fourth := put(4) // rotates the third away
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []blobPlace{third, fourth} {
		if ok, poisoned := b.packs.flushed(p); !ok || poisoned {
			t.Errorf("blob at %+v once the folder flushed: flushed %v, poisoned %v", p, ok, poisoned)
		}
	}
}

// PutKept keeps a small blob's bytes for one reading, which gives the
// memory back; a large blob, or one past the bound of all kept bytes, is
// not kept; what is kept is what was packed.
func TestPutKept(t *testing.T) {
	b, err := OpenBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n := keptBytes.Load(); n != 0 {
		t.Fatalf("kept bytes at start: %d", n)
	}
	small := bytes.Repeat([]byte("a kept message\r\n"), 1000)
	sum, size, k, err := b.PutKept(bytes.NewReader(small))
	if err != nil || k == nil || size != int64(len(small)) {
		t.Fatalf("PutKept of %d bytes: kept %v, size %d, %v", len(small), k != nil, size, err)
	}
	if n := keptBytes.Load(); n != int64(len(small)) {
		t.Errorf("kept bytes %d, want %d", n, len(small))
	}
	f := k.Open()
	if f == nil || f.Size() != int64(len(small)) {
		t.Fatalf("Open: %v", f)
	}
	if again := k.Open(); again != nil {
		t.Error("a second Open returned the bytes again")
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("kept bytes read back: %d bytes, %v", len(got), err)
	}
	f.Close()
	f.Close()
	k.Drop()
	if n := keptBytes.Load(); n != 0 {
		t.Errorf("kept bytes after Close and Drop: %d", n)
	}
	packed, err := b.packs.open(mustPlace(t, b, sum))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(packed); !bytes.Equal(got, small) {
		t.Error("the pack holds other bytes than were kept")
	}
	packed.Close()

	large := bytes.Repeat([]byte("x"), keptMax+1)
	if _, size, k, err := b.PutKept(bytes.NewReader(large)); err != nil || k != nil || size != int64(len(large)) {
		t.Errorf("PutKept of %d bytes: kept %v, size %d, %v", len(large), k != nil, size, err)
	}
	var held []*Kept
	for i := 0; ; i++ {
		data := append(bytes.Repeat([]byte{'m'}, keptMax-8), fmt.Sprintf("%08d", i)...)
		_, _, k, err := b.PutKept(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if k == nil {
			if i != keptTotal/keptMax {
				t.Errorf("kept %d blobs of %d bytes before the bound, want %d", i, keptMax, keptTotal/keptMax)
			}
			break
		}
		held = append(held, k)
	}
	for _, k := range held {
		k.Drop()
	}
	if n := keptBytes.Load(); n != 0 {
		t.Errorf("kept bytes after the drops: %d", n)
	}
}

func mustPlace(t *testing.T, b *Blobs, sum string) blobPlace {
	t.Helper()
	place, ok := b.packs.pendingPlace(sum)
	if !ok {
		t.Fatalf("blob %s has no place", sum)
	}
	return place
}

// A transaction that names a packed blob not yet on disk goes on without
// waiting for a flush, and commits only once the blob is flushed; a blob
// whose pack cannot be flushed fails the commit, and its row is not kept.
func TestPackedBlobFlushedBeforeItsRowCommits(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	b := db.Blobs()
	put := func(text string) (string, blobPlace) {
		sum, _, err := b.Put(bytes.NewReader([]byte(text)))
		if err != nil {
			t.Fatal(err)
		}
		place, _ := b.packs.pendingPlace(sum)
		return sum, place
	}
	sum, place := put("flushed at the commit")
	err := db.Write(ctx, func(tx *Tx) error {
		if err := tx.keepBlob(ctx, sum); err != nil {
			return err
		}
		if ok, _ := b.packs.flushed(place); ok {
			t.Error("keepBlob waited for a flush")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.packs.flushed(place); !ok {
		t.Error("a row naming the blob committed before the blob was flushed")
	}

	defer SetPackLimit(1)() // a pack each from here
	bad, badPlace := put("its pack cannot be flushed")
	for _, o := range b.packs.unsynced {
		if o.id == badPlace.pack {
			o.f.Close() // its flush fails, as an EIO would
		}
	}
	err = db.Write(ctx, func(tx *Tx) error { return tx.keepBlob(ctx, bad) })
	if err == nil {
		t.Fatal("a row naming a blob that could not be flushed committed")
	}
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM blob_locations WHERE sha256 = ?`, bad).Scan(&n); err != nil || n != 0 {
		t.Errorf("the place of the unflushed blob: %d rows, %v", n, err)
	}
}

// A consumer dispatched in a savepoint (jobs giveUp) stores a blob whose
// pack then fails to flush (notification.queue: PutBlob, then Sync): the
// consumer fails, its savepoint is rolled back, and the rest of the
// transaction still commits: no row names the blob now, so the commit
// does not wait for it (found by a reviewer: it failed the whole
// transaction).
func TestSavepointDropsItsUnflushedBlobs(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	defer SetPackLimit(1)()
	b := db.Blobs()
	sum, _, err := b.Put(bytes.NewReader([]byte("a notification that cannot be flushed")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(sum)
	place, _ := b.packs.pendingPlace(sum)
	for _, o := range b.packs.unsynced {
		if o.id == place.pack {
			o.f.Close() // its flush fails, as an EIO would
		}
	}
	err = db.Write(ctx, func(tx *Tx) error {
		serr := tx.Savepoint(ctx, func() error {
			if err := tx.keepBlob(ctx, sum); err != nil {
				return err
			}
			return b.Sync()
		})
		if serr == nil {
			t.Error("the consumer's flush did not fail")
		}
		return nil // the other consumers' work, and the event marked dispatched
	})
	if err != nil {
		t.Fatalf("a blob named only in a rolled-back savepoint failed the transaction: %v", err)
	}
}

// openMigrated opens a migrated SQLite database in a folder of its own.
func openMigrated(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
