package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// writeLegacyFile writes content where a store from before schema 19 kept
// blob sum.
func writeLegacyFile(t *testing.T, dataDir, sum string, content []byte) {
	t.Helper()
	dir := filepath.Join(dataDir, "blobs", sum[:2], sum[2:4])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sum), content, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readBlob(t *testing.T, b store.Blob, err error) []byte {
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

// `postdesk blobs move`, run as a process, moves the blob files of a store
// from before schema 19 (raw sources and attachments kept decoded) into
// PostgreSQL, carries on after an interrupted run, and changes nothing when
// run again; on SQLite it says blobs stay in the data folder.
func TestBlobsMoveProcess(t *testing.T) {
	ctx := context.Background()
	bin := buildPostdesk(t)
	dbURL := storetest.NewPostgresDatabase(t)
	data := t.TempDir()
	p := newProcEnv(t, bin, "POSTDESK_DATA="+data, "POSTDESK_DATABASE_URL="+dbURL)
	p.run("", "import", "--mailbox", "support@example.com", "../../internal/ingest/testdata/inbox")

	// Turn the store into one from before schema 19: every blob a file,
	// every attachment a decoded blob of its own.
	db := openStore(t, store.Config{DataDir: t.TempDir(), DatabaseURL: dbURL})
	want := map[string][]byte{}
	rows, err := db.SQL().QueryContext(ctx, `SELECT id FROM messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	attachments := 0
	for _, id := range ids {
		m, err := db.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.Blobs().Open(ctx, m.RawSHA256)
		want[m.RawSHA256] = readBlob(t, b, err)
		for _, a := range m.Attachments {
			b, err := db.OpenAttachment(ctx, a)
			want[a.SHA256] = readBlob(t, b, err)
			attachments++
		}
	}
	if len(ids) < 10 || attachments == 0 {
		t.Fatalf("the import stored %d messages with %d attachments", len(ids), attachments)
	}
	// Moved by an interrupted run: in the database, its file not yet
	// removed. A raw message's blob: only those are rows of blobs (an
	// attachment's decoded content is not, and picking one made the test
	// fail now and then).
	var kept string
	if m, err := db.Message(ctx, ids[0]); err != nil {
		t.Fatal(err)
	} else {
		kept = m.RawSHA256
	}
	for sum, content := range want {
		writeLegacyFile(t, data, sum, content)
	}
	for _, q := range []string{`UPDATE attachments SET part_blob = '', part_offset = 0, part_length = 0, part_encoding = ''`,
		`DELETE FROM blobs WHERE sha256 <> '` + kept + `'`} {
		if _, err := db.SQL().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	out := p.run("", "blobs", "move")
	wantLine := regexp.MustCompile(`(?m)^moved (\d+) of (\d+) blobs \([0-9.]+ MB\)$`)
	last := wantLine.FindAllStringSubmatch(out, -1)
	if len(last) == 0 || last[len(last)-1][1] != last[len(last)-1][2] || last[len(last)-1][1] == "0" ||
		!strings.Contains(out, "removed 1 files whose blob the database holds; 0 files no row names") {
		t.Fatalf("blobs move printed:\n%s", out)
	}
	t.Logf("blobs move printed:\n%s", out)
	filepath.WalkDir(filepath.Join(data, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(path, "tmp") {
			t.Errorf("left after the move: %s", path)
		}
		return nil
	})
	// Another host, with a data folder of its own, reads every blob.
	other := openStore(t, store.Config{DataDir: t.TempDir(), DatabaseURL: dbURL})
	for _, id := range ids {
		m, _ := other.Message(ctx, id)
		b, err := other.Blobs().Open(ctx, m.RawSHA256)
		if got := readBlob(t, b, err); string(got) != string(want[m.RawSHA256]) {
			t.Errorf("message %d source differs after the move", id)
		}
		for _, a := range m.Attachments {
			b, err := other.OpenAttachment(ctx, a)
			if got := readBlob(t, b, err); string(got) != string(want[a.SHA256]) {
				t.Errorf("attachment %d differs after the move", a.ID)
			}
		}
	}
	if out := p.run("", "blobs", "move"); !strings.Contains(out, "moved 0 of 0 blobs") {
		t.Errorf("a second move printed:\n%s", out)
	}

	sqlite := newProcEnv(t, bin, "POSTDESK_DATA="+t.TempDir())
	sqlite.run("", "migrate") // a data folder with its database
	cmd := sqlite.command(nil, "blobs", "move")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "stay in the data folder") {
		t.Errorf("blobs move on SQLite: %v\n%s", err, out)
	}
}
