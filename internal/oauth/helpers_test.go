package oauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// testKey is generated once: RSA key generation is slow under -race.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	clientID = "postdesk-test-app"
	secret   = "client~secret~value"
	redirect = "https://desk.example.test/oauth/callback"
	support  = "support@example.com"
	sales    = "sales@example.com"
	agent    = "agent@example.com"
	session  = int64(41)
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	ctx   context.Context
	idp   *fakeidp.IdP
	clock *fakeidp.Clock
	url   string
	db    *store.DB
	vault *store.Vault
	svc   *oauth.Service
	logs  *logtest.Buffer
	mb    store.Mailbox // support@
	sales store.Mailbox
}

// newEnv starts the stand-in Microsoft over httptest and a Service on db,
// with mailboxes support@ and sales@.
func newEnv(t *testing.T, db *store.DB, change func(*fakeidp.Options)) *env {
	t.Helper()
	clock := fakeidp.NewClock(start)
	opts := fakeidp.Options{
		Accounts: []fakeidp.Account{{Address: support, Name: "Support"}, {Address: sales, Name: "Sales"}, {Address: agent, Name: "Ada Agent"}},
		Apps:     []fakeidp.App{{ClientID: clientID, Name: "Postdesk", ClientSecret: secret, RedirectURIs: []string{redirect}}},
		Clock:    clock, SigningKey: testKey(),
	}
	if change != nil {
		change(&opts)
	}
	idp := fakeidp.New(opts)
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	// The stand-in revokes a grant whose spent refresh token is presented
	// again; no test may cause that, whatever it checks.
	t.Cleanup(func() {
		if r := idp.Reuses(); len(r) != 0 {
			t.Errorf("a spent refresh token was presented again (%d times): Postdesk lost a rotated token", len(r))
		}
	})
	e := &env{t: t, ctx: context.Background(), idp: idp, clock: clock, url: srv.URL, db: db, logs: &logtest.Buffer{}}
	var err error
	if e.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	e.svc = e.service(secret)
	err = db.Write(e.ctx, func(tx *store.Tx) error {
		if e.mb, err = tx.CreateMailbox(e.ctx, support, "Support"); err != nil {
			return err
		}
		e.sales, err = tx.CreateMailbox(e.ctx, sales, "Sales")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// service returns a Service for the stand-in with the client secret.
func (e *env) service(clientSecret string) *oauth.Service {
	p := oauth.Microsoft("organizations", e.url)
	p.ClientID, p.ClientSecret = clientID, clientSecret
	svc, err := oauth.New(oauth.Config{
		DB: e.db, Vault: e.vault, Providers: []oauth.Provider{p}, RedirectURL: redirect,
		Now:    e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sleep:  func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// signIn runs Begin and the stand-in's sign-in as account, returning the
// callback query.
func (e *env) signIn(mailboxID int64, account string, allowChange bool) map[string][]string {
	e.t.Helper()
	u, err := e.svc.Begin(e.ctx, mailboxID, session, allowChange)
	if err != nil {
		e.t.Fatalf("begin: %v", err)
	}
	cb, err := e.idp.SignIn(u, account)
	if err != nil {
		e.t.Fatalf("sign in: %v", err)
	}
	return cb.Query()
}

// connect signs the mailbox in as its own address.
func (e *env) connect(mb store.Mailbox) oauth.Result {
	e.t.Helper()
	res, err := e.svc.Complete(e.ctx, session, e.signIn(mb.ID, mb.Address, false))
	if err != nil {
		e.t.Fatalf("complete: %v", err)
	}
	return res
}

func (e *env) auth(mailboxID int64) store.MailboxAuth {
	e.t.Helper()
	a, err := e.db.MailboxAuth(e.ctx, mailboxID)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) status(mailboxID int64) oauth.Status {
	e.t.Helper()
	st, err := e.svc.Status(e.ctx, mailboxID)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// notices returns the kinds of the mailbox's notices, oldest first.
func (e *env) notices(mailboxID int64) []string {
	e.t.Helper()
	list, err := e.db.Notices(e.ctx, store.NoticeFilter{MailboxID: mailboxID})
	if err != nil {
		e.t.Fatal(err)
	}
	var kinds []string
	for i := len(list) - 1; i >= 0; i-- {
		kinds = append(kinds, list[i].Kind)
	}
	return kinds
}

// refreshToken opens the stored refresh token.
func (e *env) refreshToken(mailboxID int64) string {
	e.t.Helper()
	rt, err := e.vault.Open(e.auth(mailboxID).RefreshTokenSealed, store.MailboxSecret(mailboxID, "refresh_token"))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(rt)
}

// days advances the clock a day at a time, refreshing and evaluating the
// mailbox daily as the jobs do, and calls check after each day.
func (e *env) days(n int, mailboxID int64, check func(day int, st oauth.Status)) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		e.clock.Advance(24 * time.Hour)
		if err := e.svc.RefreshNow(e.ctx, mailboxID); err != nil {
			e.t.Fatalf("day %d: refresh: %v", i+1, err)
		}
		st, err := e.svc.Evaluate(e.ctx, mailboxID)
		if err != nil {
			e.t.Fatalf("day %d: evaluate: %v", i+1, err)
		}
		if check != nil {
			check(i+1, st)
		}
	}
}

func wantFlowError(t *testing.T, err, kind error) *oauth.FlowError {
	t.Helper()
	var fe *oauth.FlowError
	if !errors.As(err, &fe) || !errors.Is(err, kind) {
		t.Fatalf("err = %v, want a FlowError %v", err, kind)
	}
	if fe.Message == "" {
		t.Errorf("flow error %v has no message", kind)
	}
	return fe
}
