package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// insertWithRaw stores raw as a message's source (with atts) in one
// transaction, rolled back when fail is set.
func insertWithRaw(t *testing.T, db *store.DB, raw []byte, atts []store.Attachment, fail bool) (store.Message, error) {
	t.Helper()
	ctx := context.Background()
	sum, size, err := db.Blobs().Put(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Blobs().Release(sum)
	for i := range atts {
		if atts[i].Part.Blob == "raw" {
			atts[i].Part.Blob = sum
		}
	}
	m := store.Message{Direction: "in", Kind: store.KindEmail, DedupeKey: store.DedupeKey("", sum), Subject: "s",
		ReceivedAt: time.Now(), RawSHA256: sum, RawSize: size, Attachments: atts}
	boom := errors.New("roll back")
	err = db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.CreateMailbox(ctx, "support-"+sum[:8]+"@example.com", "")
		if err != nil {
			return err
		}
		m.MailboxID = mb.ID
		if err := tx.InsertMessage(ctx, &m); err != nil {
			return err
		}
		if fail {
			return boom
		}
		return nil
	})
	if fail && errors.Is(err, boom) {
		err = nil
	}
	return m, err
}

func readAll(t *testing.T, b store.Blob, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A message's raw source is readable once its row commits, whole and in
// ranges, across the chunk boundaries of PostgreSQL; a rolled-back
// message leaves no blob that can be opened.
func TestBlobsWithRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		raw := make([]byte, 2*store.BlobChunkSize+12345)
		rand.Read(raw)
		m, err := insertWithRaw(t, db, raw, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.Blobs().Open(ctx, m.RawSHA256)
		got := readAll(t, b, err)
		if !bytes.Equal(got, raw) {
			t.Fatalf("read %d bytes, not the %d stored", len(got), len(raw))
		}
		b, err = db.Blobs().Open(ctx, m.RawSHA256)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size() != int64(len(raw)) {
			t.Errorf("size = %d", b.Size())
		}
		off := int64(store.BlobChunkSize - 10)
		if _, err := b.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 100)
		if _, err := io.ReadFull(b, part); err != nil || !bytes.Equal(part, raw[off:off+100]) {
			t.Errorf("range across a chunk boundary: %v", err)
		}
		b.Close()

		// Sizes at the edges of the chunks and of what the PostgreSQL
		// spool holds in memory (1 MiB): empty, exactly two chunks, and a
		// byte past four, spooled as a file.
		for _, size := range []int{0, 2 * store.BlobChunkSize, 4*store.BlobChunkSize + 1} {
			raw := make([]byte, size)
			rand.Read(raw)
			raw = append([]byte(fmt.Sprintf("%d bytes", size)), raw...)[:size] // unlike the other sizes' content
			m, err := insertWithRaw(t, db, raw, nil, false)
			if err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
			b, err := db.Blobs().Open(ctx, m.RawSHA256)
			if got := readAll(t, b, err); !bytes.Equal(got, raw) {
				t.Errorf("a blob of %d bytes read back as %d bytes", size, len(got))
			}
		}

		gone := []byte("rolled back " + strings.Repeat("x", 1000))
		rb, err := insertWithRaw(t, db, gone, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		// PostgreSQL rolls the blob back with the row; on SQLite its bytes
		// stay in a pack, but nothing names their place.
		if _, err = db.Blobs().Open(ctx, rb.RawSHA256); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a rolled-back message's source is still there: %v", err)
		}
	})
}

// An attachment is read by decoding its part of the raw message; one from
// before schema 19 (a blob of its own) still reads.
func TestOpenAttachment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		content := make([]byte, 300<<10)
		rand.Read(content)
		var enc bytes.Buffer
		b64 := base64.StdEncoding.EncodeToString(content)
		for len(b64) > 76 {
			enc.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		enc.WriteString(b64 + "\r\n")
		head := "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		raw := append([]byte(head), enc.Bytes()...)
		legacy := storetest.PutBlob(t, db, "an old attachment")
		m, err := insertWithRaw(t, db, raw, []store.Attachment{
			{Filename: "a.bin", ContentType: "application/octet-stream", Size: int64(len(content)),
				Part: store.Part{Blob: "raw", Offset: int64(len(head)), Length: int64(enc.Len()), Encoding: "base64"}},
			{Filename: "old.txt", ContentType: "text/plain", Size: 17, SHA256: legacy},
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		db.Blobs().Release(legacy)
		msg, err := db.Message(ctx, m.ID)
		if err != nil || len(msg.Attachments) != 2 {
			t.Fatalf("message = %+v, %v", msg, err)
		}
		a := msg.Attachments[0]
		if a.Part.Blob != m.RawSHA256 || a.Part.Encoding != "base64" {
			t.Errorf("part = %+v", a.Part)
		}
		f, err := db.OpenAttachment(ctx, a)
		if got := readAll(t, f, err); !bytes.Equal(got, content) {
			t.Errorf("decoded %d bytes, not the attachment's %d", len(got), len(content))
		}
		f, err = db.OpenAttachment(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(200<<10, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		tail, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(tail, content[200<<10:]) {
			t.Errorf("range from 200 KiB: %d bytes", len(tail))
		}
		f, err = db.OpenAttachment(ctx, msg.Attachments[1])
		if got := readAll(t, f, err); string(got) != "an old attachment" {
			t.Errorf("old attachment = %q", got)
		}
	})
}

// On PostgreSQL a process with another data folder serves every blob: the
// database holds them, not the folder of the process that stored them.
func TestBlobsAcrossDataFolders(t *testing.T) {
	ctx := context.Background()
	url := storetest.NewPostgresDatabase(t)
	one, two := openPostgresStore(t, url, -1), openPostgresStore(t, url, -1)
	raw := []byte("Subject: hello\r\n\r\nfrom host one\r\n")
	m, err := insertWithRaw(t, one, raw, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := two.Blobs().Open(ctx, m.RawSHA256)
	if got := readAll(t, b, err); !bytes.Equal(got, raw) {
		t.Errorf("host two read %q", got)
	}
}

// TestLargeValuesLZ4: on a PostgreSQL server built with lz4 (Debian's
// is), a stored message's chunks are compressed with lz4 (schema 24), and
// read back whole.
func TestLargeValuesLZ4(t *testing.T) {
	ctx := context.Background()
	db := openPostgresStore(t, storetest.NewPostgresDatabase(t), -1)
	// Whether the server has lz4, asked in a transaction rolled back, so
	// that no pooled connection is left defaulting to it.
	probe, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = probe.ExecContext(ctx, `SET LOCAL default_toast_compression = lz4`)
	probe.Rollback()
	if err != nil {
		t.Skipf("this PostgreSQL has no lz4 (%v): the migration keeps pglz", err)
	}
	raw := []byte("Subject: compressible\r\n\r\n" + strings.Repeat("the same line of a long log, again and again\r\n", 20000))
	m, err := insertWithRaw(t, db, raw, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	rows, err := db.SQL().QueryContext(ctx, `SELECT COALESCE(pg_column_compression(data), 'none') FROM blob_chunks WHERE sha256 = $1 ORDER BY seq`, m.RawSHA256)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		methods = append(methods, s)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(methods) != 4 || strings.Count(strings.Join(methods, " "), "lz4") != 4 {
		t.Errorf("the chunks of a %d-byte message are compressed with %v, want lz4 each", len(raw), methods)
	}
	b, err := db.Blobs().Open(ctx, m.RawSHA256)
	if got := readAll(t, b, err); !bytes.Equal(got, raw) {
		t.Errorf("read back %d bytes, not the %d stored", len(got), len(raw))
	}
}

// openPostgresStore opens a store on the PostgreSQL database url with a
// data folder of its own, closed when the test ends, and migrated to
// version (every migration when negative).
func openPostgresStore(t *testing.T, url string, version int) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.MigrateTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	return db
}
