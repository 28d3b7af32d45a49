package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

func TestInspectExplainsAndChangesNothing(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	sent := time.Now().Add(-3 * 24 * time.Hour).UTC().Truncate(time.Minute)
	raw := "From: Agent <agent@example.com>\r\nTo: support@example.com\r\nSubject: Fwd: Broken blender\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <fwd-x@example.com>\r\n\r\nPlease file this.\r\n\r\n" +
		"---------- Forwarded message ---------\r\nFrom: Ann Customer <ann@customer.example>\r\n" +
		"Date: " + sent.Format("Mon, Jan 2, 2006 at 3:04 PM") + "\r\nSubject: Broken blender\r\nTo: <support@example.com>\r\n\r\nIt broke.\r\n"
	path := filepath.Join(t.TempDir(), "fwd.eml")
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, vars, "", "inspect", "--mailbox", "support@example.com", "--agent", "agent@example.com", path)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	var rep struct {
		Classification string
		Subject        string
		Original       struct {
			From    struct{ Address, Name string }
			Subject string
			Date    time.Time
		}
		Reasons []string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Classification != "forward_recovery" || rep.Original.From.Address != "ann@customer.example" ||
		rep.Original.From.Name != "Ann Customer" || rep.Original.Subject != "Broken blender" || !rep.Original.Date.Equal(sent) || len(rep.Reasons) < 2 {
		t.Fatalf("report = %+v\n%s", rep, out)
	}
	// Without --agent the same email is the sender's own.
	out, _, _ = cli(t, vars, "", "inspect", "--text", path)
	if !strings.Contains(out, "Classification: new") || !strings.Contains(out, "neither an agent nor a support address") {
		t.Fatalf("text report:\n%s", out)
	}
	// Nothing was stored.
	db := openForTest(t, vars)
	if n, _ := db.CountTickets(context.Background(), store.TicketFilter{}); n != 0 {
		t.Fatalf("inspect created %d tickets", n)
	}
	if mbs, _ := db.Mailboxes(context.Background()); len(mbs) != 0 {
		t.Fatalf("inspect created mailboxes: %v", mbs)
	}
}

// Without --mailbox, inspect checks an email against the mailbox among its
// recipients (with several mailboxes it once checked a made-up
// support@example.com, and called a stored email new); with no recipient
// a mailbox it asks which one.
func TestInspectFindsTheMailbox(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	dir := t.TempDir()
	write := func(name, to, id string) string {
		path := filepath.Join(dir, name)
		raw := "From: Ann <ann@customer.example>\r\nTo: " + to + "\r\nSubject: Broken blender\r\nDate: " + time.Now().Format(time.RFC1123Z) +
			"\r\nMessage-ID: <" + id + "@customer.example>\r\n\r\nIt broke.\r\n"
		if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	stored := write("stored.eml", "Sales <sales@corp.example>", "m1")
	for _, mb := range []string{"support@corp.example", "sales@corp.example", "billing@corp.example"} {
		if _, _, err := cli(t, vars, "", "import", "--mailbox", mb, write(mb+".eml", mb, "seed-"+mb)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cli(t, vars, "", "import", "--mailbox", "sales@corp.example", stored); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, vars, "", "inspect", "--text", stored)
	if err != nil || !strings.Contains(out, "→ sales@corp.example") || !strings.Contains(out, "Classification: duplicate") {
		t.Errorf("inspect of an email stored in sales@: %v\n%s", err, out)
	}
	_, _, err = cli(t, vars, "", "inspect", write("elsewhere.eml", "someone@else.example", "m2"))
	if err == nil || !strings.Contains(err.Error(), "say which one it arrived at with --mailbox (one of: ") {
		t.Errorf("inspect of an email to no mailbox: %v", err)
	}
	_, _, err = cli(t, vars, "", "inspect", write("both.eml", "support@corp.example, billing@corp.example", "m3"))
	if err == nil || !strings.Contains(err.Error(), "addressed to 2 mailboxes (support@corp.example, billing@corp.example)") {
		t.Errorf("inspect of an email to two mailboxes: %v", err)
	}
}
