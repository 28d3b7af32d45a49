package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/store"
)

func TestMailboxCommands(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	vars["POSTDESK_MICROSOFT_CLIENT_ID"] = "app-123"
	out, _, err := cli(t, vars, "", "mailbox", "add", "--address", "Support@Example.com", "--auth", "microsoft")
	if err != nil || !strings.Contains(out, "added mailbox support@example.com") || !strings.Contains(out, "/admin/emails") {
		t.Fatalf("add microsoft: %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "hunter2hunter2\n", "mailbox", "add", "--address", "help@corp.example", "--auth", "password",
		"--imap-host", "127.0.0.1", "--imap-port", "10143", "--imap-security", "none", "--password-stdin", "--folders", "INBOX, Support",
		"--after", "move", "--move-to", "Processed", "--initial-days", "0")
	if err != nil {
		t.Fatalf("add password mailbox: %v\n%s", err, out)
	}
	// The mail server decides its passwords: a short one is accepted.
	out, _, err = cli(t, vars, "abc\n", "mailbox", "add", "--address", "short@corp.example", "--auth", "password",
		"--imap-host", "127.0.0.1", "--imap-security", "none", "--password-stdin")
	if err != nil || !strings.Contains(out, "added mailbox short@corp.example") {
		t.Fatalf("add with a short password: %v\n%s", err, out)
	}
	_, _, err = cli(t, vars, "", "mailbox", "add", "--address", "nopw@corp.example", "--auth", "password",
		"--imap-host", "127.0.0.1", "--imap-security", "none", "--password-stdin")
	if err == nil || !strings.HasPrefix(err.Error(), "mailbox add: ") {
		t.Fatalf("add without a password on stdin: %v", err)
	}
	for _, bad := range [][]string{
		{"--address", "x@example.com", "--auth", "google"},                                                                 // not configured
		{"--address", "not-an-address", "--auth", "microsoft"},                                                             // bad address
		{"--address", "y@example.com", "--auth", "password", "--imap-host", "imap.example.com", "--imap-security", "none"}, // plaintext off-box
		{"--address", "support@example.com", "--auth", "microsoft"},                                                        // exists
		{"--address", "z@example.com", "--auth", "microsoft", "--after", "delete"},                                         // bad action
	} {
		if _, _, err := cli(t, vars, "pw-long-enough\n", append([]string{"mailbox", "add", "--password-stdin"}, bad...)...); err == nil {
			t.Errorf("mailbox add %v was accepted", bad)
		}
	}
	out, _, err = cli(t, vars, "", "mailbox", "list")
	if err != nil || !strings.Contains(out, "support@example.com") || !strings.Contains(out, "outlook.office365.com:993 tls xoauth2") ||
		!strings.Contains(out, "not connected") || !strings.Contains(out, "127.0.0.1:10143 none plain") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	// A mailbox whose fetching fails is "failing", as the API and Admin ->
	// Emails say, not the "ok" of its sign-in alone.
	db := openForTest(t, vars)
	help, err := db.MailboxByAddress(context.Background(), "help@corp.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.PutSyncStatus(context.Background(), store.SyncStatus{MailboxID: help.ID, State: store.SyncError,
			LastError: "dial tcp 127.0.0.1:10143: connect: connection refused", LastErrorAt: time.Now(), UpdatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, vars, "", "mailbox", "list")
	if line := lineWith(out, "help@corp.example"); err != nil || !strings.Contains(line, " failing ") {
		t.Errorf("list of a mailbox whose fetching fails: %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "", "mailbox", "show", "help@corp.example")
	if err != nil || !strings.Contains(out, "state:     failing\n") || !strings.Contains(out, "last error: dial tcp 127.0.0.1:10143: connect: connection refused") {
		t.Errorf("show of a mailbox whose fetching fails: %v\n%s", err, out)
	}
	if err != nil || !strings.Contains(out, "folders:   INBOX, Support") || !strings.Contains(out, "after:     move Processed") ||
		!strings.Contains(out, "sending:   none (replies cannot be sent)") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "", "mailbox", "show", "support@example.com")
	if err != nil || !strings.Contains(out, "sending:   smtp.office365.com:587 (starttls)") {
		t.Errorf("show of a Microsoft mailbox: %v\n%s", err, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatal("show prints the password")
	}
	// The password is sealed, never stored in the clear.
	mb, _ := db.MailboxByAddress(context.Background(), "help@corp.example")
	au, err := db.MailboxAuth(context.Background(), mb.ID)
	if err != nil || au.Kind != store.AuthPassword || au.PasswordSealed == "" || strings.Contains(au.PasswordSealed, "hunter2") {
		t.Fatalf("auth row = %+v %v", au, err)
	}
	out, _, err = cli(t, vars, "", "mailbox", "remove", "help@corp.example")
	if err != nil || !strings.Contains(out, "removed mailbox help@corp.example") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if _, _, err := cli(t, vars, "", "mailbox", "remove", "help@corp.example"); err == nil {
		t.Fatal("removing a missing mailbox succeeded")
	}
}

// mailbox update changes only what is given and keeps the checkpoint; a new
// password clears a refused password's state.
func TestMailboxUpdateKeepsCheckpoint(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	ctx := context.Background()
	if _, _, err := cli(t, vars, "first-password\n", "mailbox", "add", "--address", "help@corp.example", "--auth", "password",
		"--imap-host", "127.0.0.1", "--imap-security", "none", "--password-stdin", "--folders", "INBOX,Support"); err != nil {
		t.Fatal(err)
	}
	db := openForTest(t, vars)
	mb, _ := db.MailboxByAddress(ctx, "help@corp.example")
	err := db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetSyncCursor(ctx, mb.ID, "INBOX", string(mailsync.IMAPCursor(7, 42)), time.Now()); err != nil {
			return err
		}
		return tx.SetAuthState(ctx, mb.ID, store.AuthNeedsReauth, "password_refused", "refused", time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	// An empty --folders is refused, not taken as INBOX alone.
	if _, _, err := cli(t, vars, "", "mailbox", "update", "--folders", " , ", "help@corp.example"); err == nil || !strings.Contains(err.Error(), "--folders") {
		t.Errorf("update --folders '': %v", err)
	}
	// No flag: nothing to change, said so (it printed "updated").
	if _, _, err := cli(t, vars, "", "mailbox", "update", "help@corp.example"); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Errorf("update without flags: %v", err)
	}
	before, _ := db.MailboxAuth(ctx, mb.ID)
	out, _, err := cli(t, vars, "second-password\n", "mailbox", "update", "--password-stdin", "--after", "seen", "help@corp.example")
	if err != nil || !strings.Contains(out, "updated mailbox help@corp.example") {
		t.Fatalf("update: %v %s", err, out)
	}
	after, _ := db.MailboxAuth(ctx, mb.ID)
	srv, _ := db.MailboxServer(ctx, mb.ID)
	cp, _ := mailsync.IMAPCheckpoint(ctx, db, mb.ID, "INBOX")
	if after.PasswordSealed == before.PasswordSealed || after.State != store.AuthOK {
		t.Errorf("password not replaced or state not cleared: %+v", after)
	}
	if srv.AfterProcessing != "seen" || len(srv.Folders) != 2 || srv.IMAPHost != "127.0.0.1" {
		t.Errorf("settings after update = %+v (only --after should change)", srv)
	}
	if cp.LastUID != 42 {
		t.Errorf("checkpoint lost: %+v", cp)
	}
	if _, _, err := cli(t, vars, "", "mailbox", "update", "--disable", "help@corp.example"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := db.SyncedMailboxIDs(ctx); len(ids) != 0 {
		t.Errorf("disabled mailbox still synced: %v", ids)
	}
	if _, _, err := cli(t, vars, "", "mailbox", "update", "nobody@corp.example"); err == nil {
		t.Error("update of a missing mailbox succeeded")
	}
}

// lineWith is the first line of out that contains s ("" when none).
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
