package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The real `postdesk import` on both databases: an email the database
// refuses (a trigger) and one that does not parse are reported with their
// reason and quarantined with their source and a notice; the others are
// imported; the exit status says some failed. After the fix a retry
// stores the refused one.
func TestImportQuarantinesWhatCannotBeStored(t *testing.T) {
	bin := buildPostdesk(t)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			data := t.TempDir()
			vars := []string{"POSTDESK_DATA=" + data}
			cfg := store.Config{DataDir: data}
			if dialect == "postgres" {
				cfg.DatabaseURL = storetest.NewPostgresDatabase(t)
				vars = append(vars, "POSTDESK_DATABASE_URL="+cfg.DatabaseURL)
			}
			p := newProcEnv(t, bin, vars...)
			p.run("", "migrate")
			db := openStore(t, cfg)
			drop := storetest.PoisonTrigger(t, db)

			dir := t.TempDir()
			email := func(id, subject, body string) string {
				return "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: " + subject + "\r\n" +
					"Message-ID: <" + id + "@customer.example>\r\n" + body
			}
			cut := email("cut", "Fwd: cut off", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"+
				"--o\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--o\r\nContent-Type: message/rfc822; name=\"original.eml\"\r\n"+
				"Content-Disposition: attachment; filename=\"original.eml\"\r\n\r\nFrom: b@customer.example\r\nSubject: original\r\n"+
				"Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
			files := map[string]string{
				"1_normal.eml": email("n1", "Normal one", "\r\nHello.\r\n"),
				"2_poison.eml": email("p1", "a poison email", "\r\nRefused.\r\n"),
				"3_cut.eml":    cut,
				"4_thread.mbox": "From ann@customer.example Mon Dec  7 10:00:00 2026\r\n" + email("n2", "Normal two", "\r\nHi.\r\n") +
					"\r\nFrom mal@customer.example Mon Dec  7 10:01:00 2026\r\n" + email("p2", "poison again", "\r\nRefused too.\r\n"),
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := p.command(nil, "import", "--mailbox", "support@example.com", dir)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("import with failures: %v, want a non-zero exit\n%s%s", err, out.String(), errOut.String())
			}
			stdout := out.String()
			t.Logf("postdesk import:\n%s%s", stdout, errOut.String())
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`1_normal\.eml: new ticket \d+`),
				regexp.MustCompile(`2_poison\.eml: QUARANTINED as #\d+: it could not be stored: .*poison: this database refuses the message`),
				regexp.MustCompile(`4_thread\.mbox#1: new ticket \d+`),
				regexp.MustCompile(`4_thread\.mbox#2: QUARANTINED as #\d+: .*poison`),
				regexp.MustCompile(`(?m)^done: \d+ new tickets, .* quarantined, 0 failed$`),
			} {
				if !want.MatchString(stdout) {
					t.Errorf("import output lacks %s:\n%s", want, stdout)
				}
			}
			if !strings.Contains(errOut.String(), "import: 2 messages were quarantined (could not be stored); the others were imported") {
				t.Errorf("stderr = %q", errOut.String())
			}
			// Every file is either stored or quarantined with its source.
			ctx := context.Background()
			mb, err := db.MailboxByAddress(ctx, "support@example.com")
			if err != nil {
				t.Fatal(err)
			}
			q, err := db.QuarantinedMessages(ctx, store.QuarantineFilter{MailboxID: mb.ID})
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := db.CountMessages(ctx, mb.ID)
			if stored+len(q) != 5 || len(q) < 2 {
				t.Fatalf("%d stored + %d quarantined, want 5 with both poisoned ones quarantined", stored, len(q))
			}
			var poisoned store.Quarantined
			for _, row := range q {
				f, err := db.Blobs().Open(context.Background(), row.RawSHA256)
				if err != nil {
					t.Fatalf("source of %s: %v", row.SourceName, err)
				}
				f.Close()
				if row.Origin != store.OriginImport || !strings.HasPrefix(row.SourceName, dir) {
					t.Errorf("quarantine row %+v", row)
				}
				if strings.HasSuffix(row.SourceName, "2_poison.eml") {
					poisoned = row
				}
			}
			notices, _ := db.Notices(ctx, store.NoticeFilter{MailboxID: mb.ID, UnreadOnly: true})
			if len(notices) != 1 || !strings.Contains(notices[0].Message, "emails could not be stored") {
				t.Errorf("notices = %+v", notices)
			}

			drop()
			row, _, err := ingest.New(db, ingest.Options{}).Retry(ctx, poisoned.ID)
			if err != nil || row.State != store.QuarantineResolved {
				t.Fatalf("retry after the fix: %+v, %v", row, err)
			}
		})
	}
}
