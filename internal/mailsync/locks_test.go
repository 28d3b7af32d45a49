package mailsync_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/store"
)

// On PostgreSQL a syncer holds its mailboxes with advisory locks on one
// connection. When that connection dies (the server terminates it, as it
// does when a partition or a restart cuts it), the syncer stops every
// session it covered before it takes any lock again on a new connection,
// and the mail keeps arriving exactly once.
func TestSyncLockConnectionLost(t *testing.T) {
	e := newSyncEnv(t, "postgres")
	var logs logtest.Buffer
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.oauth,
		Owner: "locks-a", Round: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	e.deliver(0, 10, now)
	e.waitMessages(10, time.Minute)
	backend := func() int {
		var pid int
		if err := e.db.SQL().QueryRowContext(e.ctx, `SELECT backend_pid FROM sync_processes WHERE owner = 'locks-a'`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	first := backend()
	var locks int
	e.db.SQL().QueryRowContext(e.ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND classid = $2`, first, store.SyncLockClass).Scan(&locks)
	if locks != 1 {
		t.Fatalf("the lock connection holds %d advisory locks, want the mailbox's", locks)
	}
	if _, err := e.db.SQL().ExecContext(e.ctx, `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatal(err)
	}
	e.deliver(10, 20, now)
	deadline := time.Now().Add(30 * time.Second)
	for backend() == first || len(s.Running()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no new lock connection holding the mailbox 30 s after the old one died\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.waitMessages(20, time.Minute)
	e.assertExactlyOnce(20)
	out := logs.String()
	lost := strings.Index(out, "sync lock connection lost")
	stopped := strings.Index(out, "every mailbox sync stopped")
	retaken := strings.LastIndex(out, "took mailboxes")
	if lost < 0 || stopped < lost || retaken < stopped {
		t.Fatalf("want: connection lost, then the session stopped, then the mailbox taken again; logs:\n%s", out)
	}
}
