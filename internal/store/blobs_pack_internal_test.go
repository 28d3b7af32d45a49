package store

import (
	"bytes"
	"os"
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
