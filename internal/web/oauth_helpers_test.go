package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// idpKey is generated once: RSA key generation is slow under -race.
var idpKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	idpClientID = "postdesk-web-test"
	idpSecret   = "web~test~secret"
	supportAddr = "support@example.com"
	salesAddr   = "sales@example.com"
	adminEmail  = "admin@example.com"
	agentEmail  = "agent@example.com"
)

// oauthStart is day 0 of the moved clock.
var oauthStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// oauthEnv is a Postdesk web server with an OAuth service connected to the
// stand-in Microsoft sign-in (fakeidp), both over real HTTP, sharing one
// movable clock. The IdP is addressed as localhost and Postdesk as
// 127.0.0.1, so in a browser they are different sites, as in production.
type oauthEnv struct {
	*env
	idp    *fakeidp.IdP
	clock  *fakeidp.Clock
	idpURL string
	vault  *store.Vault
	svc    *oauth.Service
	agent  store.User
	reqs   *requestLog
}

// oauthHooks extend newOAuthEnv's setup; each may be nil.
type oauthHooks struct {
	clock *fakeidp.Clock      // nil: frozen at oauthStart
	idp   func(*fakeidp.IdP)  // before the stand-in serves (to Mount a sibling)
	oauth func(*oauth.Config) // before the OAuth service is made
	web   func(*Options)      // before the pages are made (OAuth and DB set)
}

// newOAuthEnv starts the stand-in and Postdesk on a fresh database of the
// dialect with an admin, an agent and no mailboxes; hooks (at most one)
// extend the setup.
func newOAuthEnv(t *testing.T, dialect string, hooks ...oauthHooks) *oauthEnv {
	t.Helper()
	var hk oauthHooks
	if len(hooks) > 0 {
		hk = hooks[0]
	}
	ctx := context.Background()
	db := storetest.Open(t, dialect)
	o := &oauthEnv{env: &env{t: t, db: db, logs: &logtest.Buffer{}}, clock: hk.clock, reqs: &requestLog{}}
	if o.clock == nil {
		o.clock = fakeidp.NewClock(oauthStart)
	}
	var err error
	if o.user, _, err = auth.CreateUser(ctx, db, adminEmail, "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	if o.agent, _, err = auth.CreateUser(ctx, db, agentEmail, "Al Agent", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}

	// Postdesk's address must be known before the IdP registers it.
	o.srv = httptest.NewUnstartedServer(nil)
	pdURL := "http://" + o.srv.Listener.Addr().String()
	redirect := pdURL + "/oauth/callback"

	o.idp = fakeidp.New(fakeidp.Options{
		Accounts: []fakeidp.Account{{Address: supportAddr, Name: "Support"}, {Address: salesAddr, Name: "Sales"}},
		Apps:     []fakeidp.App{{ClientID: idpClientID, Name: "Postdesk", ClientSecret: idpSecret, RedirectURIs: []string{redirect}}},
		Clock:    o.clock, SigningKey: idpKey(),
	})
	if hk.idp != nil {
		hk.idp(o.idp)
	}
	idpSrv := httptest.NewServer(o.idp)
	t.Cleanup(idpSrv.Close)
	o.idpURL = strings.Replace(idpSrv.URL, "127.0.0.1", "localhost", 1)

	if o.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", o.idpURL)
	p.ClientID, p.ClientSecret = idpClientID, idpSecret
	log := slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := oauth.Config{
		DB: db, Vault: o.vault, Providers: []oauth.Provider{p}, RedirectURL: redirect,
		Now: o.clock.Now, Logger: log,
		Sleep: func(context.Context, time.Duration) error { return nil },
	}
	if hk.oauth != nil {
		hk.oauth(&cfg)
	}
	if o.svc, err = oauth.New(cfg); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test", Logger: log,
		OAuth: o.svc, Now: o.clock.Now,
		Banners: AuthBanners(db, o.svc, o.clock.Now, log),
	}
	if hk.web != nil {
		hk.web(&opts)
	}
	o.h, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	o.srv.Config.Handler = o.reqs.wrap(o.h)
	o.srv.Start()
	t.Cleanup(o.srv.Close)
	return o
}

// signedInAs returns a client with a session of the user.
func (o *oauthEnv) signedInAs(email string) *http.Client {
	o.t.Helper()
	c := o.client()
	res := o.postLogin(c, email, testPassword, "")
	wantStatus(o.t, res, http.StatusSeeOther)
	return c
}

// addMailbox creates a Microsoft mailbox that is not connected yet.
func (o *oauthEnv) addMailbox(address string) store.Mailbox {
	o.t.Helper()
	ctx := context.Background()
	var mb store.Mailbox
	err := o.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if mb, err = tx.CreateMailbox(ctx, address, ""); err != nil {
			return err
		}
		return tx.SetMailboxAuthKind(ctx, mb.ID, store.AuthOAuth, "microsoft", o.clock.Now())
	})
	if err != nil {
		o.t.Fatal(err)
	}
	return mb
}

// connectHTTP runs Connect over HTTP: the connect form, the stand-in's
// sign-in as account (without a browser), and the callback. It returns the
// callback's response and its URL.
func (o *oauthEnv) connectHTTP(c *http.Client, mailboxID int64, account string, allowChange bool) (*http.Response, string, string) {
	o.t.Helper()
	form := url.Values{"csrf": {o.csrf(c)}}
	if allowChange {
		form.Set("allow_change", "1")
	}
	res := o.post(c, fmt.Sprintf("/admin/emails/%d/connect", mailboxID), form)
	wantStatus(o.t, res, http.StatusSeeOther)
	cb, err := o.idp.SignIn(res.Header.Get("Location"), account)
	if err != nil {
		o.t.Fatalf("stand-in sign-in: %v", err)
	}
	res, body := o.get(c, cb.RequestURI())
	return res, body, cb.RequestURI()
}

func (o *oauthEnv) auth(mailboxID int64) store.MailboxAuth {
	o.t.Helper()
	a, err := o.db.MailboxAuth(context.Background(), mailboxID)
	if err != nil {
		o.t.Fatal(err)
	}
	return a
}

// openSecret opens a sealed column of the mailbox.
func (o *oauthEnv) openSecret(mailboxID int64, name, sealed string) string {
	o.t.Helper()
	b, err := o.vault.Open(sealed, store.MailboxSecret(mailboxID, name))
	if err != nil {
		o.t.Fatal(err)
	}
	return string(b)
}

// dataFilesContain reports whether any file in the database's data folder
// (the SQLite file, its WAL, blobs) contains s.
func (o *oauthEnv) dataFilesContain(s string) []string {
	o.t.Helper()
	var hits []string
	err := filepath.WalkDir(o.db.DataDir(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), s) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		o.t.Fatal(err)
	}
	return hits
}

// day moves the clock to day n after oauthStart.
func (o *oauthEnv) day(n float64) {
	o.clock.Set(oauthStart.Add(time.Duration(n * float64(oauth.Day))))
}
