package main

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A second host set up without the first one's secret key, a second
// process given the first one's name, and a key rotation while serve runs
// are refused with a sentence (each once left mailboxes failing every
// second: the process took mailboxes it could not sign in to, the two of
// one name shared every lease, the running processes kept the old key).
func TestServeRefusesWhatWouldStrandMailboxes(t *testing.T) {
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{"support@example.com": "pw-support"}})
	dbURL := storetest.NewPostgresDatabase(t)
	bin := buildPostdesk(t)
	key := store.EncodeKey(store.GenerateKey())
	p := newProcEnv(t, bin, "POSTDESK_DATA="+t.TempDir(), "POSTDESK_DATABASE_URL="+dbURL, "POSTDESK_SECRET_KEY="+key)
	p.addPasswordMailbox(stack, "support@example.com", "pw-support")
	a := p.serve("a", "POSTDESK_SYNC_OWNER=a")
	db := openStore(t, store.Config{DataDir: t.TempDir(), DatabaseURL: dbURL})
	deadline := time.Now().Add(30 * time.Second)
	for {
		live, err := db.LiveSyncers(t.Context(), time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(live) == 1 && live[0] == "a" {
			break
		}
		if time.Now().After(deadline) || a.exited() {
			t.Fatalf("serve a is not running: %v\n%s", live, p.logTail("a", 20))
		}
		time.Sleep(100 * time.Millisecond)
	}

	refused := func(name, want string, extra []string, args ...string) {
		t.Helper()
		cmd := p.command(append([]string{"POSTDESK_LISTEN=127.0.0.1:0"}, extra...), args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), want) {
				t.Errorf("%s: %v, output:\n%s\nwant %q", name, err, out.String(), want)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s: still running after 30 s, want it refused:\n%s", name, out.String())
		}
	}
	// Another host: its own data folder, no key given (it makes one).
	refused("serve with another key", "opens none of the 1 secrets in the database",
		[]string{"POSTDESK_SECRET_KEY=", "POSTDESK_DATA=" + t.TempDir(), "POSTDESK_SYNC_OWNER=b"}, "serve")
	refused("serve with a's name", `another postdesk serve is running on this database as "a"`,
		[]string{"POSTDESK_DATA=" + t.TempDir(), "POSTDESK_SYNC_OWNER=a"}, "serve")
	refused("secrets rotate while a runs", "1 postdesk serve process(es) use this database (a): stop them all first", nil, "secrets", "rotate")
	if a.exited() {
		t.Fatalf("serve a stopped:\n%s", p.logTail("a", 20))
	}
	// The key still opens the password: a fetches.
	if err := stack.Deliver(t.Context(), "support@example.com", customerMail("support@example.com", 1, rand.New(rand.NewPCG(1, 2)))); err != nil {
		t.Fatal(err)
	}
	waitStored(t, db, 1, 30*time.Second, func() string { return p.logTail("a", 30) })
	// Stopped, the key can be rotated.
	if !a.terminate(20 * time.Second) {
		t.Fatalf("serve a did not stop cleanly:\n%s", p.logTail("a", 20))
	}
	if out := p.run("", "secrets", "rotate"); !strings.Contains(out, "re-sealed 1 secrets") {
		t.Errorf("rotate once serve stopped: %s", out)
	}
}
