package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const (
	hostsClientID = "postdesk-hosts-test"
	hostsSecret   = "hosts-s3cret"
	hostsRedirect = "https://desk.example.test/oauth/callback"
	hostsAddr     = "support@example.com"
)

// hostsEnv is the API with a Microsoft provider whose mail server is a
// recorder on 127.0.0.1 (the "real" one), a second recorder on 127.0.0.1
// where an attacker would point the mailbox, the stand-in sign-in, and a
// sync that runs on demand.
type hostsEnv struct {
	t             *testing.T
	ctx           context.Context
	db            *store.DB
	idp           *fakeidp.IdP
	svc           *oauth.Service
	api           *httptest.Server
	adminKey      string
	agentKey      string
	legit, attack *mailtest.IMAPRecorder
	mailboxID     int64
}

func newHostsEnv(t *testing.T, db *store.DB) *hostsEnv {
	t.Helper()
	e := &hostsEnv{t: t, ctx: context.Background(), db: db,
		legit: mailtest.NewIMAPRecorder(t), attack: mailtest.NewIMAPRecorder(t)}
	e.idp = fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: hostsAddr, Name: "Support"}},
		Apps: []fakeidp.App{{ClientID: hostsClientID, Name: "Postdesk", ClientSecret: hostsSecret, RedirectURIs: []string{hostsRedirect}}}})
	idpSrv := httptest.NewServer(e.idp)
	t.Cleanup(idpSrv.Close)
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", idpSrv.URL)
	p.ClientID, p.ClientSecret = hostsClientID, hostsSecret
	p.IMAPHost, p.IMAPPort = e.legit.Host(), e.legit.Port() // the provider's own server
	e.svc, err = oauth.New(oauth.Config{DB: db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: hostsRedirect,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	authSvc := auth.New(db, 0)
	for _, u := range []struct {
		email, role string
		key         *string
	}{{"admin@example.com", store.RoleAdmin, &e.adminKey}, {"agent@example.com", store.RoleAgent, &e.agentKey}} {
		var user store.User
		err := db.Write(e.ctx, func(tx *store.Tx) error {
			var err error
			user, err = tx.CreateUser(e.ctx, store.User{Email: u.email, Name: u.email, Role: u.role, PasswordHash: "-"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if *u.key, _, err = authSvc.CreateAPIKey(e.ctx, user.ID, "tests"); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: db, Auth: authSvc, Desk: desk.New(db),
		Admin: desk.NewAdmin(db, vault, desk.Providers([]oauth.Provider{p}))}))
	e.api = httptest.NewServer(mux)
	t.Cleanup(e.api.Close)
	return e
}

// call sends a request to the API with key and decodes the answer.
func (e *hostsEnv) call(key, method, path, body string) response {
	e.t.Helper()
	f := &fixture{srv: e.api, key: key}
	return f.do(e.t, method, path, body)
}

// connect signs the mailbox in at the stand-in, as Connect does.
func (e *hostsEnv) connect() {
	e.t.Helper()
	u, err := e.svc.Begin(e.ctx, e.mailboxID, 1, false)
	if err != nil {
		e.t.Fatal(err)
	}
	cb, err := e.idp.SignIn(u, hostsAddr)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.Complete(e.ctx, 1, cb.Query()); err != nil {
		e.t.Fatal(err)
	}
}

// runSync runs the mail sync until the returned function is called.
func (e *hostsEnv) runSync() (stop func()) {
	e.t.Helper()
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.svc,
		Owner: "hosts-test", Round: 50 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) { cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond }})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

func (e *hostsEnv) auth() store.MailboxAuth {
	e.t.Helper()
	au, err := e.db.MailboxAuth(e.ctx, e.mailboxID)
	if err != nil {
		e.t.Fatal(err)
	}
	return au
}

// noBearer fails if the attacker's recorder received a token, or anything.
func (e *hostsEnv) noBearer(when string) {
	e.t.Helper()
	if got := e.attack.Bearers(); len(got) > 0 {
		e.t.Fatalf("%s: the attacker's server received %d bearer token(s)", when, len(got))
	}
	if n := e.attack.Connections(); n > 0 {
		e.t.Errorf("%s: the attacker's server was connected to %d times (received %q)", when, n, e.attack.Received())
	}
}

// An admin (or a stolen admin key) points an OAuth mailbox at another
// IMAP server over the API: a host its provider does not trust is
// refused; another port of the provider's own host forgets the tokens and
// says so. Across sync cycles and refreshes the other server never
// receives a bearer token, while the provider's own server does (the
// control that shows the sync would have sent one).
func TestOAuthMailboxTokensStayWithTheirProvider(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newHostsEnv(t, db)
		var created mailboxJSON
		e.call(e.adminKey, http.MethodPost, "/api/v1/mailboxes", `{"address":"`+hostsAddr+`","auth":"microsoft","imap_security":"none"}`).
			decode(t, http.StatusCreated, &created)
		e.mailboxID = created.ID
		if created.Server.IMAPHost != e.legit.Host() || created.Server.IMAPPort != e.legit.Port() {
			t.Fatalf("created with server %+v, want the provider's %s", created.Server, e.legit.Addr())
		}
		e.connect()
		path := fmt.Sprintf("/api/v1/mailboxes/%d", e.mailboxID)

		// 1. Another host: refused, nothing changes.
		for _, body := range []string{
			fmt.Sprintf(`{"imap_host":"localhost","imap_port":%d}`, e.attack.Port()),
			fmt.Sprintf(`{"imap_host":"127.0.0.2","imap_port":%d}`, e.attack.Port()),
			`{"smtp_host":"smtp.attacker.example"}`,
		} {
			e.call(e.adminKey, http.MethodPatch, path, body).wantError(t, http.StatusUnprocessableEntity, "is not a mail server of microsoft")
		}
		if au := e.auth(); au.RefreshTokenSealed == "" || au.State != store.AuthOK {
			t.Fatalf("a refused change touched the sign-in: state %s, refresh token kept %v", au.State, au.RefreshTokenSealed != "")
		}

		// 2. Another port of the provider's host: the sign-in is forgotten, and the answer says so.
		var patched mailboxJSON
		e.call(e.adminKey, http.MethodPatch, path, fmt.Sprintf(`{"imap_port":%d}`, e.attack.Port())).decode(t, http.StatusOK, &patched)
		if !strings.Contains(patched.Message, "forgot the mailbox's sign-in") || !strings.Contains(patched.Message, e.attack.Addr()) {
			t.Errorf("answer message = %q, want it to say the sign-in was forgotten for %s", patched.Message, e.attack.Addr())
		}
		if patched.SignIn.State != "needs_reauth" || !strings.Contains(patched.SignIn.Reason, "Connect it again") {
			t.Errorf("sign_in after the change = %+v", patched.SignIn)
		}
		if au := e.auth(); au.RefreshTokenSealed != "" || au.AccessTokenSealed != "" {
			t.Fatal("the tokens are still stored after the server changed")
		}
		var agentView mailboxJSON
		e.call(e.agentKey, http.MethodGet, path, "").decode(t, http.StatusOK, &agentView)
		if agentView.Message != "" {
			t.Errorf("a GET carries a change message: %q", agentView.Message)
		}

		// A sync cycle and a refresh: nothing reaches the new server.
		stop := e.runSync()
		if err := e.svc.RefreshNow(e.ctx, e.mailboxID); err == nil {
			t.Error("a refresh of a forgotten sign-in succeeded")
		}
		if _, err := e.svc.FreshToken(e.ctx, e.mailboxID); err == nil {
			t.Error("a fresh token of a forgotten sign-in was handed out")
		}
		time.Sleep(time.Second) // 20 sync rounds
		stop()
		e.noBearer("after the port change")
		if au := e.auth(); au.RefreshTokenSealed != "" || au.AccessTokenSealed != "" {
			t.Fatalf("tokens are back after a sync and refresh: %+v", au)
		}

		// 3. The control: back on the provider's server and connected
		// again, the sync does send the token there (and refreshes it when
		// the recorder refuses it), so the silence above is not an accident.
		var back mailboxJSON
		e.call(e.adminKey, http.MethodPatch, path, fmt.Sprintf(`{"imap_port":%d}`, e.legit.Port())).decode(t, http.StatusOK, &back)
		if back.Message != "" {
			t.Errorf("a change of a mailbox without tokens says %q", back.Message)
		}
		e.connect()
		stop = e.runSync()
		refreshes := e.idp.RefreshCount(hostsAddr)
		deadline := time.Now().Add(15 * time.Second)
		for len(e.legit.Bearers()) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if n := len(e.legit.Bearers()); n < 2 {
			t.Fatalf("the provider's own server received %d bearer tokens, want a first and a refreshed one (received %q)", n, e.legit.Received())
		}
		if e.idp.RefreshCount(hostsAddr) <= refreshes {
			t.Error("the refused token was not refreshed")
		}
		e.noBearer("after the control")

		// 4. Defence in depth: a row pointing elsewhere without desk (the
		// configuration changed since, or a hand edit) is not connected
		// to. Admins read why; agents read a plain sentence.
		e.connect()
		err := db.Write(e.ctx, func(tx *store.Tx) error {
			srv, err := tx.MailboxServer(e.ctx, e.mailboxID)
			if err != nil {
				return err
			}
			srv.IMAPHost, srv.IMAPPort, srv.UpdatedAt = "localhost", e.attack.Port(), time.Now()
			return tx.PutMailboxServer(e.ctx, srv)
		})
		if err != nil {
			t.Fatal(err)
		}
		stop = e.runSync()
		deadline = time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if st, _ := db.SyncStatus(e.ctx, e.mailboxID); strings.Contains(st.LastError, "not a mail server of microsoft") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // a few more rounds
		stop()
		e.noBearer("with the row changed behind desk's back")
		var adminView mailboxJSON
		e.call(e.adminKey, http.MethodGet, path, "").decode(t, http.StatusOK, &adminView)
		e.call(e.agentKey, http.MethodGet, path, "").decode(t, http.StatusOK, &agentView)
		if !strings.Contains(adminView.Sync.LastError, "localhost is not a mail server of microsoft") {
			t.Errorf("admin's sync.last_error = %q, want the reason", adminView.Sync.LastError)
		}
		if agentView.Sync.LastError != "Postdesk cannot reach the mail server; an admin can see why in Admin -> Emails." {
			t.Errorf("agent's sync.last_error = %q, want the plain sentence", agentView.Sync.LastError)
		}
	})
}

// Agents read that the mail server cannot be reached; admins read the
// error, which names internal hosts and ports.
func TestSyncErrorShownToAdminsOnly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		const detail = "dial tcp 10.20.30.40:993: connect: connection refused"
		err := db.Write(context.Background(), func(tx *store.Tx) error {
			return tx.PutSyncStatus(context.Background(), store.SyncStatus{MailboxID: f.mailbox.ID, State: "error",
				LastError: detail, LastErrorAt: time.Now(), UpdatedAt: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("/api/v1/mailboxes/%d", f.mailbox.ID)
		var agent, admin mailboxJSON
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &agent)
		f.do(t, http.MethodGet, path, "", asAdmin(f)).decode(t, http.StatusOK, &admin)
		if admin.Sync.LastError != detail {
			t.Errorf("admin reads %q, want %q", admin.Sync.LastError, detail)
		}
		if strings.Contains(agent.Sync.LastError, "10.20.30.40") || !strings.Contains(agent.Sync.LastError, "cannot reach the mail server") {
			t.Errorf("agent reads %q, want the plain sentence", agent.Sync.LastError)
		}
		list := f.do(t, http.MethodGet, "/api/v1/mailboxes", "")
		if list.status != http.StatusOK || strings.Contains(string(list.body), "10.20.30.40") {
			t.Errorf("the agent's list shows the error: %d %s", list.status, list.body)
		}
		if agent.Sync.State != "error" {
			t.Errorf("agent's sync.state = %q, want error (only the detail is hidden)", agent.Sync.State)
		}
	})
}
