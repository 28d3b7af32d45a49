package jobs_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// graphDesk is one Postdesk whose Microsoft mailboxes may use the stand-in
// Graph, mounted beside the stand-in sign-in as `postdesk fakeidp` serves
// it: database, OAuth, desk, admin, ingest, the sender and its job engine,
// and (when started) mail sync. With smtpAddr, mailboxes get that SMTP
// server (trusted for tokens).
type graphDesk struct {
	t      testing.TB
	ctx    context.Context
	idp    *fakeidp.IdP
	graph  *fakegraph.Server
	db     *store.DB
	oauth  *oauth.Service
	desk   *desk.Desk
	admin  *desk.Admin
	ingest *ingest.Ingester
	sender *jobs.Sender
	agent  store.User
}

func newGraphDesk(t testing.TB, dialect string, accounts ...string) *graphDesk {
	t.Helper()
	opts := fakeidp.Options{}
	for _, a := range accounts {
		opts.Accounts = append(opts.Accounts, fakeidp.Account{Address: a, Name: a})
	}
	idp := fakeidp.New(opts)
	idp.AddApp(fakeidp.App{ClientID: outboxClientID, Name: "Postdesk", ClientSecret: "s3cret", RedirectURIs: []string{outboxRedirect}})
	g := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: accounts})
	idp.Mount("/graph/", http.StripPrefix("/graph", g), "graph", "/graph/v1.0")
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)

	e := &graphDesk{t: t, ctx: context.Background(), idp: idp, graph: g, db: storetest.Open(t, dialect)}
	if err := jobs.Migrate(e.ctx, e.db, nil); err != nil {
		t.Fatal(err)
	}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", srv.URL)
	p.ClientID, p.ClientSecret = outboxClientID, "s3cret"
	p.MailHosts = []string{"127.0.0.1"}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: outboxRedirect,
		Sleep: func(context.Context, time.Duration) error { return nil }, Logger: log,
		GraphTune: func(c *msgraph.Client) {
			c.Sleep = func(ctx context.Context, d time.Duration) error {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(min(d, 20*time.Millisecond)):
					return nil
				}
			}
		},
		OnAuthorized: func(ctx context.Context, tx *store.Tx, id int64) error { return e.sender.Authorized(ctx, tx, id) }})
	if err != nil {
		t.Fatal(err)
	}
	e.sender, err = jobs.NewSender(jobs.SenderOptions{DB: e.db, OAuth: e.oauth, Logger: log, Sweep: time.Second,
		Backoff: []time.Duration{200 * time.Millisecond}, SentLookAgain: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(e.db, jobs.Options{Logger: log, Outbox: e.sender, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.sender.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e.sender.Stop(ctx)
		runner.Stop(ctx)
	})
	e.desk = desk.New(e.db, desk.WithEnqueuer(e.sender))
	e.admin = desk.NewAdmin(e.db, vault, desk.Providers([]oauth.Provider{p}))
	e.admin.Outbox = e.sender
	e.ingest = ingest.New(e.db, ingest.Options{Acknowledge: e.desk.Acknowledge})
	if err := e.db.Write(e.ctx, func(tx *store.Tx) (err error) {
		e.agent, err = tx.CreateUser(e.ctx, store.User{Email: "agent@helpdesk.test", Name: "Agent", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// signIn runs Connect / Reauthenticate against the stand-in and returns
// the scopes the sign-in asked for.
func (e *graphDesk) signIn(mb store.Mailbox) []string {
	e.t.Helper()
	signInAt(e.t, e.ctx, e.oauth, e.idp, mb)
	a, err := e.db.MailboxAuth(e.ctx, mb.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Granted()
}

// sync starts mail sync (Graph polled every 100 ms); it stops at cleanup.
func (e *graphDesk) sync() {
	e.t.Helper()
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: e.ingest, OAuth: e.oauth, Owner: "graph-desk", Round: 100 * time.Millisecond,
		Transports: map[string]mailsync.Transport{mailsync.TransportGraph: mailsync.Graph{Poll: 100 * time.Millisecond,
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

// waitTicket waits until a message with messageID is on a ticket.
func (e *graphDesk) waitTicket(mb store.Mailbox, messageID string, within time.Duration) int64 {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		id, err := e.db.TicketForMessageIDs(e.ctx, mb.ID, []string{messageID})
		if err == nil && id != 0 {
			return id
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %s is on no ticket after %s (%v)", messageID, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDelivery waits until message id's delivery is in state.
func (e *graphDesk) waitDelivery(id int64, state string, within time.Duration) store.Message {
	e.t.Helper()
	return waitDeliveryState(e.t, e.ctx, e.db, id, state, within)
}

// parseAll parses raw messages.
func parseAll(t testing.TB, raws [][]byte) []*mailmsg.Message {
	t.Helper()
	var out []*mailmsg.Message
	for _, raw := range raws {
		m, err := mailmsg.Parse(strings.NewReader(string(raw)), mailmsg.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
