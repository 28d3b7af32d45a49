package mailsync_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// A process whose secret key opens none of a mailbox's tokens (set up
// without the others' key) fails the mailbox for good; it holds it back
// instead of starting it again every round (a restart and three log lines
// a second), and a process with the right key takes it meanwhile.
func TestSyncHoldsBackAMailboxItCannotSignIn(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	other, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := oauth.New(oauth.Config{DB: e.db, Vault: other, Providers: []oauth.Provider{e.provider}, RedirectURL: syncRedirect,
		Now: e.idp.Clock().Now, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	bad, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: wrong, Owner: "wrong-key",
		Round: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); bad.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(3 * time.Second) // 30 rounds
	if n := strings.Count(logs.String(), "mailbox sync starting"); n != 1 {
		t.Errorf("the mailbox was started %d times in 3 s by a process that cannot sign in to it, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "mailbox held back after its sync ended") {
		t.Errorf("no word of holding the mailbox back:\n%s", logs.String())
	}
	e.run("right-key")
	e.deliver(0, 3, now)
	e.waitMessages(3, 30*time.Second)
	e.assertExactlyOnce(3)
}
