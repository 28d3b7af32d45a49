package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests run `postdesk serve` against the stand-in in its strictest
// mode: a spent refresh token presented again revokes the whole grant
// (recorded in idp.Reuses), and the token endpoint answers in 3.5 s.

const (
	rotClientID = "postdesk-rotation"
	rotSecret   = "rotation~secret"
	rotRedirect = "http://localhost:8080/oauth/callback" // POSTDESK_BASE_URL's
	rotDelay    = 3500 * time.Millisecond
)

// oauthWorld is a mail stack, a strict stand-in, and OAuth mailboxes
// configured with the CLI and signed in by the test.
type oauthWorld struct {
	t     *testing.T
	idp   *fakeidp.IdP
	stack *mailtest.Stack
	p     *procEnv
	db    *store.DB
	vault *store.Vault
	svc   *oauth.Service // the test's own: signs in, and refreshes as a third process
	ids   map[string]int64
}

func newOAuthWorld(t *testing.T, dbURL string, addrs []string, lifetime time.Duration) *oauthWorld {
	t.Helper()
	var accounts []fakeidp.Account
	for _, a := range addrs {
		accounts = append(accounts, fakeidp.Account{Address: a, Name: a})
	}
	idp := fakeidp.New(fakeidp.Options{Accounts: accounts, AccessTokenLifetime: lifetime, TokenDelay: rotDelay,
		RefreshTokenReuse: fakeidp.ReuseRevokesGrant})
	idp.AddApp(fakeidp.App{ClientID: rotClientID, Name: "Postdesk", ClientSecret: rotSecret, RedirectURIs: []string{rotRedirect}})
	stack := mailtest.Start(t, mailtest.Options{IdP: idp})
	bin := buildPostdesk(t)
	key := store.GenerateKey()
	data := t.TempDir()
	vars := []string{"POSTDESK_DATA=" + data, "POSTDESK_SECRET_KEY=" + store.EncodeKey(key),
		"POSTDESK_MICROSOFT_CLIENT_ID=" + rotClientID, "POSTDESK_MICROSOFT_CLIENT_SECRET=" + rotSecret,
		"POSTDESK_MICROSOFT_AUTHORITY=" + stack.IdPURL, "POSTDESK_BASE_URL=http://localhost:8080",
		// The test's Dovecot stands in for Microsoft's mail servers.
		"POSTDESK_OAUTH_ALLOWED_HOSTS=" + strings.Split(stack.IMAPAddr, ":")[0]}
	if dbURL != "" {
		vars = append(vars, "POSTDESK_DATABASE_URL="+dbURL)
	}
	w := &oauthWorld{t: t, idp: idp, stack: stack, p: newProcEnv(t, bin, vars...), ids: map[string]int64{}}
	host, port, _ := strings.Cut(stack.IMAPAddr, ":")
	for _, a := range addrs {
		out := w.p.run("", "mailbox", "add", "--address", a, "--auth", "microsoft", "--auth-method", "xoauth2",
			"--imap-host", host, "--imap-port", port, "--imap-security", "none")
		if !strings.Contains(out, "added mailbox "+a) {
			t.Fatalf("mailbox add %s: %s", a, out)
		}
	}
	w.db = openStore(t, store.Config{DataDir: data, DatabaseURL: dbURL})
	var err error
	if w.vault, err = store.NewVault(key); err != nil {
		t.Fatal(err)
	}
	prov := oauth.Microsoft("organizations", stack.IdPURL)
	prov.ClientID, prov.ClientSecret = rotClientID, rotSecret
	prov.MailHosts = []string{host}
	if w.svc, err = oauth.New(oauth.Config{DB: w.db, Vault: w.vault, Providers: []oauth.Provider{prov}, RedirectURL: rotRedirect}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.svc.Close(context.Background()) })
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		mb, err := w.db.MailboxByAddress(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		w.ids[a] = mb.ID
		wg.Go(func() { errs <- w.signIn(mb.ID, a) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// signIn connects a mailbox as the admin would: Begin, the stand-in's
// sign-in page, Complete.
func (w *oauthWorld) signIn(id int64, account string) error {
	ctx := w.t.Context()
	u, err := w.svc.Begin(ctx, id, 1, false)
	if err != nil {
		return err
	}
	cb, err := w.idp.SignIn(u, account)
	if err != nil {
		return err
	}
	_, err = w.svc.Complete(ctx, 1, cb.Query())
	return err
}

// refreshToken opens a mailbox's stored refresh token.
func (w *oauthWorld) refreshToken(id int64) string {
	w.t.Helper()
	a, err := w.db.MailboxAuth(w.t.Context(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	rt, err := w.vault.Open(a.RefreshTokenSealed, store.MailboxSecret(id, "refresh_token"))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(rt)
}

// check fails the test on any reuse of a spent refresh token and on any
// mailbox that is not authorized.
func (w *oauthWorld) check(when string, diag func() string) {
	w.t.Helper()
	if r := w.idp.Reuses(); len(r) != 0 {
		w.t.Fatalf("%s: a spent refresh token was presented again %d times, first %+v\n%s", when, len(r), r[0], diag())
	}
	for a, id := range w.ids {
		st, err := w.svc.Status(w.t.Context(), id)
		if err != nil || st.State != store.AuthOK {
			w.t.Fatalf("%s: %s is %+v (%v)\n%s", when, a, st, err, diag())
		}
	}
}

// waitExpired waits until every mailbox's access token has expired, so the
// sync's sign-in must refresh first.
func (w *oauthWorld) waitExpired() {
	w.t.Helper()
	for {
		expired := true
		for _, id := range w.ids {
			a, err := w.db.MailboxAuth(w.t.Context(), id)
			if err != nil {
				w.t.Fatal(err)
			}
			expired = expired && time.Now().After(a.AccessExpiresAt.Add(200*time.Millisecond))
		}
		if expired {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDue waits until every mailbox's access token is within its refresh
// margin (a fifth of its lifetime), so the next token request refreshes.
func (w *oauthWorld) waitDue() {
	w.t.Helper()
	for {
		due := true
		for _, id := range w.ids {
			a, err := w.db.MailboxAuth(w.t.Context(), id)
			if err != nil {
				w.t.Fatal(err)
			}
			life := a.AccessExpiresAt.Sub(a.LastRefreshAt)
			due = due && time.Now().Add(life/5+200*time.Millisecond).After(a.AccessExpiresAt)
		}
		if due {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// terminate sends SIGTERM to this process (never to any other) and waits
// for it to exit, SIGKILL after within.
func (s *serveProc) terminate(within time.Duration) (clean bool) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.cmd.ProcessState.Success()
	case <-time.After(within):
		s.kill()
		return false
	}
}

// SIGTERM (an ordinary deploy) lands while `serve` waits for the provider
// to answer a refresh, several times with restarts: the rotated token is
// saved before the process exits, so the next start never presents a
// spent one and the mailbox stays connected.
func TestServeSIGTERMDuringRefreshKeepsRotatedToken(t *testing.T) {
	const (
		address  = "support@example.com"
		lifetime = 20 * time.Second
		cycles   = 3
	)
	w := newOAuthWorld(t, "", []string{address}, lifetime)
	id := w.ids[address]
	diag := func() string { return w.p.logTail("serve", 40) }
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	delivered := 0
	for cycle := range cycles {
		w.waitExpired()
		before := w.refreshToken(id)
		requests := w.idp.TokenRequests()
		srv := w.p.serve("serve")
		// At start the sync needs a new token to sign in (the refresh job
		// refreshes only mailboxes due by age, spread over 12 h); SIGTERM
		// comes while the provider takes its 3.5 s to answer.
		for deadline := time.Now().Add(30 * time.Second); w.idp.TokenRequests() == requests; {
			if time.Now().After(deadline) || srv.exited() {
				t.Fatalf("cycle %d: serve asked for no token within 30 s\n%s", cycle, diag())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		began := time.Now()
		if !srv.terminate(40 * time.Second) {
			t.Fatalf("cycle %d: serve did not stop cleanly after SIGTERM\n%s", cycle, diag())
		}
		t.Logf("cycle %d: serve stopped %s after SIGTERM", cycle, time.Since(began).Round(time.Millisecond))
		if w.refreshToken(id) == before {
			t.Fatalf("cycle %d: the provider rotated the refresh token but serve exited without saving it\n%s", cycle, diag())
		}
		w.check(fmt.Sprintf("cycle %d", cycle), diag)
	}
	// A last start syncs mail with the saved tokens.
	srv := w.p.serve("serve")
	rng2 := rand.New(rand.NewPCG(5, 6))
	if err := w.stack.Deliver(t.Context(), address, customerMail(address, delivered, rng2)); err != nil {
		t.Fatal(err)
	}
	waitStored(t, w.db, 1, time.Minute, diag)
	w.check("after the last restart", diag)
	if srv.exited() {
		t.Fatalf("serve exited by itself\n%s", diag())
	}
	if !strings.Contains(w.p.logTail("serve", 400), "waiting for token refreshes in flight") {
		t.Errorf("no shutdown waited for a refresh in flight: the test did not hit one\n%s", diag())
	}
}

// Two `serve` processes on one PostgreSQL share OAuth mailboxes over
// several refresh cycles; in each, every session is dropped (both
// processes reconnect and ask for tokens) while a third process refreshes
// every mailbox: no refresh token is ever presented twice, and mail keeps
// arriving.
func TestTwoServeProcessesShareOAuthRefreshes(t *testing.T) {
	const (
		lifetime = 20 * time.Second
		cycles   = 3
	)
	addrs := []string{"support@example.com", "sales@example.com", "billing@example.com", "help@example.com"}
	dbURL := storetest.NewPostgresDatabase(t)
	w := newOAuthWorld(t, dbURL, addrs, lifetime)
	procs := []*serveProc{w.p.serve("a", "POSTDESK_SYNC_OWNER=a"), w.p.serve("b", "POSTDESK_SYNC_OWNER=b")}
	diag := func() string { return "--- a:\n" + w.p.logTail("a", 30) + "\n--- b:\n" + w.p.logTail("b", 30) }
	rng := rand.New(rand.NewPCG(7, 8))
	n := 0
	deliverAll := func() {
		t.Helper()
		for _, a := range addrs {
			if err := w.stack.Deliver(t.Context(), a, customerMail(a, n, rng)); err != nil {
				t.Fatal(err)
			}
			n++
		}
		waitStored(t, w.db, n, time.Minute, diag)
	}
	deliverAll()
	for cycle := range cycles {
		w.waitDue()
		refreshes := w.idp.TokenRequests()
		var wg sync.WaitGroup
		for _, a := range addrs {
			wg.Go(func() {
				if err := w.stack.Kick(t.Context(), a); err != nil {
					t.Error(err)
				}
			})
		}
		var refreshErr error
		wg.Go(func() { refreshErr = w.svc.RefreshAll(t.Context()) })
		wg.Wait()
		if refreshErr != nil {
			t.Fatalf("cycle %d: the third process's refresh: %v\n%s", cycle, refreshErr, diag())
		}
		deliverAll()
		t.Logf("cycle %d: %d token requests", cycle, w.idp.TokenRequests()-refreshes)
		w.check(fmt.Sprintf("cycle %d", cycle), diag)
	}
	for _, p := range procs {
		if p.exited() {
			t.Fatalf("%s exited by itself\n%s", p.name, diag())
		}
	}
}
