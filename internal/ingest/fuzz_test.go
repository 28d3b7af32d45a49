package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// maxFuzzMessage keeps generated messages small enough that the fuzzer
// does not spend its time minimizing big inputs or fill the disk with
// blobs; the big hostile shapes (3,000 addresses, 2 MB of header) are
// stored in TestHostileMessagesAreStored.
const maxFuzzMessage = 64 << 10

// FuzzIngestSQLite and FuzzIngestPostgres feed generated messages through
// parse and apply: whatever the message, ingest stores it (no error),
// every text it stored is valid UTF-8 without NUL, and ingesting it again
// is a duplicate. The seeds are the hostile messages of issue 8 and the
// inbox fixtures; testdata/fuzz keeps the committed corpus.
func FuzzIngestSQLite(f *testing.F)   { fuzzIngest(f, "sqlite") }
func FuzzIngestPostgres(f *testing.F) { fuzzIngest(f, "postgres") }

func fuzzIngest(f *testing.F, dialect string) {
	for _, m := range mailtest.Hostile() {
		if len(m.Raw) <= maxFuzzMessage {
			f.Add(m.Raw)
		}
	}
	inbox, _ := filepath.Glob("testdata/inbox/*.eml")
	for _, name := range inbox {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	db := openFuzzStore(f, dialect)
	mb, in := hostileSetup(f, db)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzMessage {
			t.Skip("too big for fuzzing")
		}
		ctx := context.Background()
		// A mailbox per input, so inputs do not dedupe against each other
		// (one mailbox in eight is shared, so some do: forwards, threads).
		box := mb
		if k := n.Add(1); k%8 != 0 {
			var err error
			if box, err = newBox(ctx, db, fmt.Sprintf("box%d@postdesk.example", k)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := in.Ingest(ctx, box, bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		stored, err := db.Message(ctx, res.MessageID)
		if err != nil {
			t.Fatalf("read back message %d: %v", res.MessageID, err)
		}
		for name, s := range map[string]string{"subject": stored.Subject, "from_name": stored.FromName, "to": stored.To,
			"text": stored.TextBody, "html": stored.HTMLBody, "message_id": stored.MessageID, "problems": strings.Join(stored.Problems, "\n")} {
			if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
				t.Errorf("%s stored with NUL or invalid UTF-8: %q", name, s)
			}
		}
		if len(stored.DedupeKey) > 2*store.MaxIndexedIDBytes {
			t.Errorf("dedupe key of %d bytes", len(stored.DedupeKey))
		}
		again, err := in.Ingest(ctx, box, bytes.NewReader(raw))
		if err != nil || again.Outcome != ingest.Duplicate {
			t.Fatalf("second ingest: %s, %v", again, err)
		}
	})
}

func newBox(ctx context.Context, db *store.DB, address string) (store.Mailbox, error) {
	var mb store.Mailbox
	err := db.Write(ctx, func(tx *store.Tx) error {
		var err error
		mb, err = tx.CreateMailbox(ctx, address, "")
		return err
	})
	return mb, err
}

// openFuzzStore opens a migrated store whose data folder (blobs, SQLite) is
// in memory when /dev/shm exists: each input is stored with an fsync, and a
// disk shared with other work would make the fuzzer crawl.
func openFuzzStore(f *testing.F, dialect string) *store.DB {
	ctx := context.Background()
	dir, err := os.MkdirTemp("/dev/shm", "postdesk-fuzz-")
	if err != nil {
		dir = f.TempDir()
	} else {
		f.Cleanup(func() { os.RemoveAll(dir) })
	}
	cfg := store.Config{DataDir: dir}
	if dialect == "postgres" {
		cfg.DatabaseURL = storetest.NewPostgresDatabase(f)
	}
	db, err := store.Open(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	return db
}
