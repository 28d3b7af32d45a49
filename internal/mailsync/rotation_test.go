package mailsync_test

import (
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The refresh job (which also runs at every start) races the sync asking
// for a token at its reconnect, cycle after cycle, against a provider that
// revokes the grant when a spent refresh token is presented again and
// answers in 3.5 s: they share one refresh, and the mailbox stays connected.
func TestRefreshJobRacingSyncNeverReusesAToken(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			const lifetime = 10 * time.Minute
			e := newSyncEnvWith(t, dialect, func(o *fakeidp.Options) {
				o.TokenDelay, o.AccessTokenLifetime = 3500*time.Millisecond, lifetime
			})
			e.run("rotation-test")
			e.deliver(0, 1, now)
			e.waitMessages(1, 30*time.Second)
			worker := &jobs.RefreshTokensWorker{OAuth: e.oauth}
			const cycles = 3
			for cycle := range cycles {
				before := e.idp.RefreshCount(supportAddr)
				// The access token is due (less than a fifth of its lifetime
				// left): the sync's reconnect and the job both want a refresh.
				e.idp.Clock().Advance(lifetime - lifetime/10)
				var wg sync.WaitGroup
				var jobErr, kickErr error
				wg.Go(func() { kickErr = e.stack.Kick(e.ctx, supportAddr) })
				wg.Go(func() { jobErr = worker.Work(e.ctx, &river.Job[jobs.RefreshTokensArgs]{}) })
				wg.Wait()
				if kickErr != nil || jobErr != nil {
					t.Fatalf("cycle %d: kick %v, refresh job %v", cycle, kickErr, jobErr)
				}
				// The reconnected session fetches new mail.
				e.deliver(cycle+1, cycle+2, now)
				e.waitMessages(cycle+2, 30*time.Second)
				if r := e.idp.Reuses(); len(r) != 0 {
					t.Fatalf("cycle %d: a spent refresh token was presented again: %+v", cycle, r)
				}
				if n := e.idp.RefreshCount(supportAddr) - before; n < 1 || n > 2 {
					t.Errorf("cycle %d: %d refreshes, want 1 (or 2 if the reconnect came after the job)", cycle, n)
				}
				st, err := e.oauth.Status(e.ctx, e.mb.ID)
				if err != nil || st.State != store.AuthOK {
					t.Fatalf("cycle %d: authorization %+v, %v", cycle, st, err)
				}
			}
			e.assertExactlyOnce(cycles + 1)
		})
	}
}
