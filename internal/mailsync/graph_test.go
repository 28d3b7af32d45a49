package mailsync_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// graphEnv is the stand-in Microsoft sign-in with the stand-in Graph
// mounted beside it (as `postdesk fakeidp` serves them), a database, an
// OAuth service and a mailbox signed in for Graph.
type graphEnv struct {
	t     *testing.T
	ctx   context.Context
	idp   *fakeidp.IdP
	graph *fakegraph.Server
	// served counts the stand-in Graph's answers by status.
	served *statusCounts
	db     *store.DB
	oauth  *oauth.Service
	mb     store.Mailbox
}

func newGraphEnv(t *testing.T, dialect string) *graphEnv {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: supportAddr, Name: "Support"}}})
	idp.AddApp(fakeidp.App{ClientID: syncClientID, Name: "Postdesk", ClientSecret: "s3cret", RedirectURIs: []string{syncRedirect}})
	g := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: []string{supportAddr}})
	counts := &statusCounts{n: map[int]int{}}
	idp.Mount("/graph/", http.StripPrefix("/graph", counts.wrap(g)), "graph", "/graph/v1.0")
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	e := &graphEnv{t: t, ctx: context.Background(), idp: idp, graph: g, served: counts, db: storetest.Open(t, dialect)}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", srv.URL)
	p.ClientID, p.ClientSecret = syncClientID, "s3cret"
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: syncRedirect,
		Sleep: func(context.Context, time.Duration) error { return nil },
		// Back-off inside the Graph client: real waits, kept short.
		GraphTune: func(c *msgraph.Client) {
			c.Sleep = func(ctx context.Context, d time.Duration) error {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(min(d, 20*time.Millisecond)):
					return nil
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.db.Write(e.ctx, func(tx *store.Tx) error {
		var err error
		if e.mb, err = tx.CreateMailbox(e.ctx, supportAddr, "Support"); err != nil {
			return err
		}
		if err := tx.SetMailboxAuthKind(e.ctx, e.mb.ID, store.AuthOAuth, "microsoft", time.Now()); err != nil {
			return err
		}
		return tx.PutMailboxServer(e.ctx, store.MailboxServer{MailboxID: e.mb.ID, IMAPHost: "outlook.office365.com", IMAPPort: 993,
			IMAPSecurity: "tls", AuthMethod: "xoauth2", Folders: []string{"INBOX"}, InitialDays: 14, MaxAgeDays: 90, Enabled: true,
			FetchTransport: store.TransportGraph, SendTransport: store.TransportGraph})
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.oauth.Begin(e.ctx, e.mb.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := idp.SignIn(u, supportAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.oauth.Complete(e.ctx, 1, cb.Query()); err != nil {
		t.Fatal(err)
	}
	return e
}

// sync runs mail sync with the Graph transport polling every poll.
func (e *graphEnv) sync(poll time.Duration) {
	e.t.Helper()
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.oauth,
		Owner: "graph-test", Round: 100 * time.Millisecond,
		Transports: map[string]mailsync.Transport{mailsync.TransportGraph: mailsync.Graph{Poll: poll, PageSize: 25,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// statusCounts counts a handler's answers by status.
type statusCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *statusCounts) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		c.mu.Lock()
		c.n[rec.status]++
		c.mu.Unlock()
	})
}

func (c *statusCounts) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func graphMail(i int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@customer.test>\r\nTo: %s\r\nSubject: Question %d\r\nDate: %s\r\nMessage-ID: <g%d@customer.test>\r\n\r\nHello %d\r\n",
		i, i, supportAddr, i, time.Now().Format(time.RFC1123Z), i, i)
}

// waitCount waits until the mailbox holds n messages.
func (e *graphEnv) waitCount(n int, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := e.db.CountMessages(e.ctx, e.mb.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if got == n {
			return
		}
		if got > n {
			e.t.Fatalf("%d messages stored, want %d: a duplicate", got, n)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d messages stored after %s, want %d", got, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Delta under faults: replays, @removed entries, a lost delta state in the
// middle of a round and 429 storms with and without Retry-After. Every
// message is stored exactly once, never more than 4 requests are in
// flight, and the mailbox ends healthy.
func TestGraphDeltaUnderFaults(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newGraphEnv(t, dialect)
			const first = 120
			var ids []string
			for i := range first {
				ids = append(ids, e.graph.Deliver(supportAddr, "inbox", graphMail(i)))
			}
			// Faults queued before the first round reach it in the middle.
			e.graph.Replay(supportAddr, 3)
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpMIME, Times: 8, Status: 429, Code: "ApplicationThrottled", RetryAfter: "1"})
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpDelta, Times: 5, Status: 429, Code: "ApplicationThrottled"})
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpAny, Times: 3, Status: 503, Code: "ServiceUnavailable"})
			e.graph.SetLatency(3 * time.Millisecond) // the first round takes a while
			e.sync(50 * time.Millisecond)
			// A lost delta state while the first round pages.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				n, _ := e.db.CountMessages(e.ctx, e.mb.ID)
				if n == first {
					t.Fatal("the first round ended before the reset: not in the middle of the round")
				}
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("nothing stored in 20 s")
				}
			}
			e.graph.ResetDelta(supportAddr)
			e.waitCount(first, 60*time.Second)
			e.graph.SetLatency(0)
			if e.served.get(http.StatusGone) == 0 {
				t.Error("the reset in the middle of the round was not noticed")
			}

			// Later mail, with removals (@removed) and another storm.
			for _, id := range ids[:10] {
				if err := e.graph.Remove(supportAddr, id); err != nil {
					t.Fatal(err)
				}
			}
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpAny, Times: 12, Status: 429, Code: "ApplicationThrottled"})
			for i := first; i < first+40; i++ {
				e.graph.Deliver(supportAddr, "inbox", graphMail(i))
			}
			e.graph.Replay(supportAddr, 2)
			e.waitCount(first+40, 60*time.Second)
			e.graph.ResetDelta(supportAddr)
			e.graph.Deliver(supportAddr, "inbox", graphMail(first+40))
			e.waitCount(first+41, 60*time.Second)
			time.Sleep(300 * time.Millisecond) // a few more rounds: nothing more arrives
			e.waitCount(first+41, time.Second)

			for i := range first + 41 {
				if _, err := e.db.MessageByDedupeKey(e.ctx, e.mb.ID, store.DedupeKey("g"+strconv.Itoa(i)+"@customer.test", "")); err != nil {
					t.Errorf("message %d: %v", i, err)
				}
			}
			// The faults did happen.
			for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGone} {
				if e.served.get(status) == 0 {
					t.Errorf("the stand-in never answered %d", status)
				}
			}
			t.Logf("answers: %v; requests %d; max in flight %d", e.served.n, e.graph.Requests(), e.graph.MaxInFlightSeen(supportAddr))
			if n := e.graph.MaxInFlightSeen(supportAddr); n > 4 || n < 1 {
				t.Errorf("max in flight = %d, want 1..4", n)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, err := e.db.SyncStatus(e.ctx, e.mb.ID)
				if err != nil {
					t.Fatal(err)
				}
				if st.State.UpToDate() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("sync state %s (%s), want up to date", st.State, st.LastError)
				}
				time.Sleep(20 * time.Millisecond)
			}
			c, err := e.db.SyncCursor(e.ctx, e.mb.ID, "INBOX")
			if _, link, perr := mailsync.GraphPosition(mailsync.Cursor(c)); err != nil || perr != nil || link == "" {
				t.Errorf("cursor %q: %v %v", c, err, perr)
			}
			if a, err := e.db.MailboxAuth(e.ctx, e.mb.ID); err != nil || a.State != store.AuthOK {
				t.Errorf("auth %s %v", a.State, err)
			}
		})
	}
}

// A mailbox switched back from Graph to IMAP: the folder's Graph cursor
// means nothing to IMAP, so the folder starts over as on a first connect
// (the initial days), and what was fetched before is not stored twice.
func TestIMAPAfterGraphStartsOver(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newSyncEnv(t, dialect)
			now := time.Now()
			e.deliver(0, 3, func(int) time.Time { return now })
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				return tx.SetSyncCursor(e.ctx, e.mb.ID, "INBOX", string(mailsync.GraphCursor(now, "https://graph.example/delta?token=x")), now)
			}); err != nil {
				t.Fatal(err)
			}
			e.run("after-graph")
			e.waitMessages(3, 20*time.Second)
			cp, err := mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "INBOX")
			deadline := time.Now().Add(10 * time.Second)
			for (err != nil || cp.LastUID != 3) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				cp, err = mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "INBOX")
			}
			if err != nil || cp.LastUID != 3 {
				t.Fatalf("checkpoint %+v %v, want IMAP's, at UID 3", cp, err)
			}
		})
	}
}
