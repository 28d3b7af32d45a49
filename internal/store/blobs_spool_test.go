package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"testing"
)

// TestSpool holds what a spool promises: a blob reads back as put while
// referenced, small ones without a file, large ones (or small ones past
// the memory budget) as files, shared by content and gone with the last
// release.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := func() int {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	put := func(data []byte) string {
		t.Helper()
		sum, size, err := s.put(bytes.NewReader(data))
		want := sha256.Sum256(data)
		if err != nil || sum != hex.EncodeToString(want[:]) || size != int64(len(data)) {
			t.Fatalf("put %d bytes = %s, %d, %v", len(data), sum, size, err)
		}
		return sum
	}
	read := func(sum string, want []byte) {
		t.Helper()
		b, err := s.open(sum)
		if err != nil {
			t.Fatalf("open %s: %v", sum, err)
		}
		defer b.Close()
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, want) || b.Size() != int64(len(want)) {
			t.Fatalf("read %d bytes (size %d, %v), want %d", len(got), b.Size(), err, len(want))
		}
	}
	gone := func(sum string) {
		t.Helper()
		if b, err := s.open(sum); !errors.Is(err, ErrNotFound) {
			if err == nil {
				b.Close()
			}
			t.Fatalf("open %s after its last release: %v, want ErrNotFound", sum, err)
		}
	}

	small := bytes.Repeat([]byte("small message\r\n"), 1000)
	a := put(small)
	// The read buffer goes back to the pool SQLite's packs share, empty,
	// as putPacked expects it (it appends to what it gets).
	if buf := putBuffers.Get().(*bytes.Buffer); buf.Len() != 0 {
		t.Fatalf("the spool put a buffer holding %d bytes back in the pool", buf.Len())
	} else {
		putBuffers.Put(buf)
	}
	b := put(small) // the same bytes, in flight twice
	if a != b || files() != 0 || s.mem != int64(len(small)) {
		t.Fatalf("two puts of a small blob: %d files, %d bytes in memory", files(), s.mem)
	}
	read(a, small)
	s.release(a)
	read(a, small) // one reference left
	s.release(a)
	gone(a)
	if s.mem != 0 {
		t.Fatalf("%d bytes in memory after the last release", s.mem)
	}

	exact := bytes.Repeat([]byte{'x'}, spoolMemBlob)
	large := append(bytes.Repeat([]byte{'y'}, spoolMemBlob), 'z')
	e, l := put(exact), put(large)
	if files() != 1 || s.mem != spoolMemBlob {
		t.Fatalf("a blob of exactly %d bytes and one a byte longer: %d files, %d bytes in memory", spoolMemBlob, files(), s.mem)
	}
	read(e, exact)
	read(l, large)
	s.release(l)
	gone(l)
	if files() != 0 {
		t.Fatalf("%d files after the large blob's last release", files())
	}
	s.release(e)

	// Past the budget, small blobs become files, and memory is never
	// held beyond it.
	var sums [][2]any
	for i := range spoolMemBytes/spoolMemBlob + 3 {
		data := bytes.Repeat([]byte{byte(i)}, spoolMemBlob)
		sums = append(sums, [2]any{put(data), data})
	}
	if files() != 3 || s.mem != spoolMemBytes {
		t.Fatalf("%d blobs of %d bytes: %d files, %d bytes in memory; want 3 files, %d bytes", len(sums), spoolMemBlob, files(), s.mem, spoolMemBytes)
	}
	for _, x := range sums {
		read(x[0].(string), x[1].([]byte))
		s.release(x[0].(string))
		gone(x[0].(string))
	}
	if files() != 0 || s.mem != 0 {
		t.Fatalf("after every release: %d files, %d bytes in memory", files(), s.mem)
	}

	// A read that fails leaves nothing behind.
	if _, _, err := s.put(io.MultiReader(bytes.NewReader(large), failingReader{})); err == nil {
		t.Fatal("put of a failing reader succeeded")
	}
	if _, _, err := s.put(failingReader{}); err == nil {
		t.Fatal("put of a failing reader succeeded")
	}
	if files() != 0 || s.mem != 0 || len(s.refs) != 0 {
		t.Fatalf("after failed puts: %d files, %d bytes in memory, %d entries", files(), s.mem, len(s.refs))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
