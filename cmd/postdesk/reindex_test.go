package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/search"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const htmlOnlyEML = "From: Nina Petrova <nina@customer.test>\r\nTo: support@example.com\r\nSubject: Blank page\r\n" +
	"Message-ID: <html-only-1@customer.test>\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Since Friday the <b>dashboard</b> is blank.</p></body></html>\r\n"

// Imported mail is searchable by words of its bodies (an HTML-only one
// too), and `reindex --all` rebuilds the same index.
func TestSearchImportedMailAndReindex(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			vars := dialectEnv(t, dialect)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "html_only.eml"), []byte(htmlOnlyEML), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, src := range []string{"../../internal/ingest/testdata/inbox", dir} {
				if out, stderr, err := cli(t, vars, "", "import", "--mailbox", "support@example.com", src); err != nil {
					t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
				}
			}
			check := func(when string) {
				t.Helper()
				db, err := store.Open(context.Background(), store.Config{DataDir: vars["POSTDESK_DATA"], DatabaseURL: vars["POSTDESK_DATABASE_URL"]})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for q, want := range map[string]string{
					"dashboard":     "Blank page", // only in an HTML-only body
					"de987654321":   "",           // only in a Latin-1 body (subject checked below)
					"from:muller":   "",           // Jürgen Müller
					`"is blank"`:    "Blank page",
					"from:nina":     "Blank page",
					"dashboard -is": "-",
				} {
					parsed, err := search.Parse(q)
					if err != nil {
						t.Fatal(err)
					}
					list, err := db.Tickets(context.Background(), store.TicketFilter{Search: parsed})
					if err != nil {
						t.Fatalf("%s: search %q: %v", when, q, err)
					}
					switch {
					case want == "-" && len(list) != 0:
						t.Errorf("%s: %q finds %d tickets, want none", when, q, len(list))
					case want != "-" && len(list) != 1:
						t.Errorf("%s: %q finds %d tickets, want 1", when, q, len(list))
					case want != "-" && want != "" && list[0].Subject != want:
						t.Errorf("%s: %q finds %q, want %q", when, q, list[0].Subject, want)
					}
				}
			}
			check("after import")
			out, _, err := cli(t, vars, "", "reindex")
			if err != nil || !strings.Contains(out, "the search index is up to date") {
				t.Fatalf("reindex with nothing waiting: %v\n%s", err, out)
			}
			out, _, err = cli(t, vars, "", "reindex", "--all")
			if err != nil || !strings.Contains(out, "indexed 8 of 8 tickets") || !strings.Contains(out, "indexed 8 tickets in") {
				t.Fatalf("reindex --all: %v\n%s", err, out)
			}
			check("after reindex --all")
		})
	}
}

// serve's background pass empties the backlog and says so in the log.
func TestReindexInBackground(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	err := db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
		if err != nil {
			return err
		}
		for i := range 3 {
			if _, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: fmt.Sprintf("Ticket %d", i), RequesterAddress: "a@x.test"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.QueueSearchReindex(ctx); err != nil || n != 3 {
		t.Fatalf("queue: %d, %v", n, err)
	}
	var logs logtest.Buffer
	reindexInBackground(ctx, db, slog.New(slog.NewTextHandler(&logs, nil)), "building the search index of earlier tickets")
	if n, err := db.SearchBacklog(ctx); err != nil || n != 0 {
		t.Errorf("backlog after the background pass: %d, %v", n, err)
	}
	for _, want := range []string{"building the search index of earlier tickets", "tickets=3", "search index built"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	logs = logtest.Buffer{}
	reindexInBackground(ctx, db, slog.New(slog.NewTextHandler(&logs, nil)), "building the search index of earlier tickets")
	if logs.String() != "" {
		t.Errorf("nothing to do, yet it logged:\n%s", logs.String())
	}
}

// A background pass that fails (the database refuses for a while) is
// tried again without waiting for another bulk commit, which may never
// come (found by a reviewer: the backlog stayed, and the list kept saying
// "search again in a few seconds").
func TestIndexInBackgroundRetriesAFailedPass(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx, cancel := context.WithCancel(context.Background())
	err := db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
		if err != nil {
			return err
		}
		_, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Printer", RequesterAddress: "a@x.test"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.QueueSearchReindex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `CREATE TRIGGER refuse BEFORE DELETE ON search_backlog BEGIN SELECT RAISE(ABORT, 'transient trouble'); END`); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		indexInBackground(ctx, db, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "transient trouble"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first pass did not fail:\n%s", logs.String())
		}
	}
	if _, err := db.SQL().ExecContext(ctx, `DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n, err := db.SearchBacklog(ctx); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backlog is not built 10 s after the failure ended:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "building the search index again after a failure") {
		t.Errorf("the retry is not in the log:\n%s", logs.String())
	}
}
