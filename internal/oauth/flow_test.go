package oauth_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestConnect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		u, err := e.svc.Begin(e.ctx, e.mb.ID, session, false)
		if err != nil {
			t.Fatal(err)
		}
		q := mustParse(t, u).Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("login_hint") != support || q.Get("nonce") == "" {
			t.Errorf("authorization URL lacks PKCE, nonce or hint: %s", u)
		}
		cb, err := e.idp.SignIn(u, support)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.svc.Complete(e.ctx, session, cb.Query())
		if err != nil {
			t.Fatalf("complete: %v", err)
		}
		now := e.clock.Now().UTC().Truncate(time.Millisecond)
		if res.Account != support || res.AccountDiffers || !res.ReauthDueAt.Equal(now.Add(90*oauth.Day)) || !res.ExpiresAt.Equal(now.Add(90*oauth.Day)) {
			t.Errorf("result = %+v", res)
		}
		a := e.auth(e.mb.ID)
		if a.Kind != store.AuthOAuth || a.Provider != "microsoft" || a.State != store.AuthOK || !a.AuthorizedAt.Equal(now) ||
			!strings.HasPrefix(a.RefreshTokenSealed, "v1:") || !strings.HasPrefix(a.AccessTokenSealed, "v1:") {
			t.Errorf("stored authorization = %+v", a)
		}
		tok, err := e.svc.TokenFor(e.ctx, e.mb.ID)
		if err != nil || tok == "" || e.idp.RefreshCount(support) != 0 {
			t.Errorf("TokenFor = %q, %v after %d refreshes; want the fresh token without a refresh", tok, err, e.idp.RefreshCount(support))
		}
		if st := e.status(e.mb.ID); st.State != store.AuthOK || st.Overdue || !st.Fetching() {
			t.Errorf("status = %+v", st)
		}
		// The same callback again is refused.
		_, err = e.svc.Complete(e.ctx, session, cb.Query())
		wantFlowError(t, err, oauth.ErrStateUsed)
	})
}

func TestWrongAccountRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		_, err := e.svc.Complete(e.ctx, session, e.signIn(e.mb.ID, agent, false))
		fe := wantFlowError(t, err, oauth.ErrWrongAccount)
		if !strings.Contains(fe.Message, agent) || !strings.Contains(fe.Message, support) {
			t.Errorf("message = %q, want both addresses", fe.Message)
		}
		if _, err := db.MailboxAuth(e.ctx, e.mb.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused first sign-in stored something: %v", err)
		}
		// Connected, then a re-authentication as the wrong account changes nothing.
		e.connect(e.mb)
		before := e.auth(e.mb.ID)
		e.clock.Advance(time.Hour)
		_, err = e.svc.Complete(e.ctx, session, e.signIn(e.mb.ID, agent, false))
		wantFlowError(t, err, oauth.ErrWrongAccount)
		if after := e.auth(e.mb.ID); after != before {
			t.Errorf("refused re-authentication changed the row:\n%+v\n%+v", before, after)
		}
		// Allowed explicitly (a delegate for a shared mailbox).
		res, err := e.svc.Complete(e.ctx, session, e.signIn(e.mb.ID, agent, true))
		if err != nil || !res.AccountDiffers || res.Account != agent || e.auth(e.mb.ID).Account != agent {
			t.Errorf("allowed delegate: %+v, %v", res, err)
		}
	})
}

func TestStateRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		q := e.signIn(e.mb.ID, support, false)

		forged := url.Values{"state": {"forged-state"}, "code": q["code"]}
		_, err := e.svc.Complete(e.ctx, session, forged)
		wantFlowError(t, err, oauth.ErrStateUnknown)
		_, err = e.svc.Complete(e.ctx, session, url.Values{"code": q["code"]})
		wantFlowError(t, err, oauth.ErrStateUnknown)

		_, err = e.svc.Complete(e.ctx, session+1, q)
		wantFlowError(t, err, oauth.ErrStateSession)

		// The rightful session can still use it once.
		if _, err := e.svc.Complete(e.ctx, session, q); err != nil {
			t.Fatalf("complete: %v", err)
		}
		_, err = e.svc.Complete(e.ctx, session, q)
		wantFlowError(t, err, oauth.ErrStateUsed)

		// Expired: more than 10 minutes at the provider.
		u, err := e.svc.Begin(e.ctx, e.sales.ID, session, false)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(11 * time.Minute)
		cb, err := e.idp.SignIn(u, sales)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Complete(e.ctx, session, cb.Query())
		wantFlowError(t, err, oauth.ErrStateExpired)

		// The provider's refusal.
		u, _ = e.svc.Begin(e.ctx, e.sales.ID, session, false)
		state := mustParse(t, u).Query().Get("state")
		_, err = e.svc.Complete(e.ctx, session, url.Values{"state": {state}, "error": {"access_denied"},
			"error_description": {"AADSTS65004: User declined to consent to access the app."}})
		fe := wantFlowError(t, err, oauth.ErrSignInRefused)
		if !strings.Contains(fe.Message, "cancelled or consent was declined") || fe.Code != "AADSTS65004" {
			t.Errorf("refusal = %q (%s)", fe.Message, fe.Code)
		}
		if _, err := db.MailboxAuth(e.ctx, e.sales.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused sign-ins stored something for sales@: %v", err)
		}
	})
}

func TestReplayedCodeRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		q := e.signIn(e.mb.ID, support, false)
		if _, err := e.svc.Complete(e.ctx, session, q); err != nil {
			t.Fatal(err)
		}
		before := e.auth(e.mb.ID)
		// A fresh state of ours, carrying the already-redeemed code.
		u, _ := e.svc.Begin(e.ctx, e.mb.ID, session, false)
		replay := url.Values{"state": {mustParse(t, u).Query().Get("state")}, "code": q["code"]}
		_, err := e.svc.Complete(e.ctx, session, replay)
		fe := wantFlowError(t, err, oauth.ErrCodeRejected)
		if fe.Code != "AADSTS54005" {
			t.Errorf("code = %q, want AADSTS54005", fe.Code)
		}
		if after := e.auth(e.mb.ID); after != before {
			t.Error("a replayed code changed the row")
		}
	})
}

func TestReauthenticateRestores(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		e.clock.Advance(91 * oauth.Day)
		before := e.idp.RefreshCount(support)
		_, err := e.svc.TokenFor(e.ctx, e.mb.ID)
		if !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("token after 91 idle days: %v, want ErrNeedsReauth", err)
		}
		st := e.status(e.mb.ID)
		if st.State != store.AuthNeedsReauth || st.Code != "AADSTS700082" || !strings.Contains(st.Reason, "not used for 90 days") || st.Fetching() {
			t.Errorf("status = %+v", st)
		}
		// No more asking the provider until an admin signs in again.
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); !errors.Is(err, oauth.ErrNeedsReauth) || e.idp.RefreshCount(support) != before+1 {
			t.Errorf("second TokenFor: %v, %d refreshes (want %d)", err, e.idp.RefreshCount(support), before+1)
		}
		res := e.connect(e.mb)
		now := e.clock.Now().UTC().Truncate(time.Millisecond)
		if !res.ReauthDueAt.Equal(now.Add(90 * oauth.Day)) {
			t.Errorf("new due date %v, want %v", res.ReauthDueAt, now.Add(90*oauth.Day))
		}
		if st := e.status(e.mb.ID); st.State != store.AuthOK || st.Reason != "" {
			t.Errorf("after re-authentication: %+v", st)
		}
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); err != nil {
			t.Error(err)
		}
		if got := strings.Join(e.notices(e.mb.ID), ","); got != "needs_reauth,restored" {
			t.Errorf("notices = %s", got)
		}
	})
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccountFromUserinfo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		// Without the email scope the stand-in's ID token names nobody.
		p := oauth.Microsoft("organizations", e.url)
		p.ClientID, p.ClientSecret = clientID, secret
		p.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access", "openid"}
		svc, err := oauth.New(oauth.Config{DB: db, Vault: e.vault, Providers: []oauth.Provider{p}, RedirectURL: redirect, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		u, err := svc.Begin(e.ctx, e.mb.ID, session, false)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := e.idp.SignIn(u, support)
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Complete(e.ctx, session, cb.Query())
		if err != nil || res.Account != support {
			t.Fatalf("complete via userinfo: %+v, %v", res, err)
		}
	})
}
