package fakeidp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestCodeReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code, verifier := f.signIn(t, agent)
	if _, err := f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	_, err := f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	body := wantAAD(t, err, 400, "invalid_grant", 54005)
	if !strings.Contains(body.ErrorDescription, "OAuth2 Authorization code was already redeemed") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
}

func TestPKCEFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code, _ := f.signIn(t, agent)
	_, err := f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantAAD(t, err, 400, "invalid_grant", 501481)

	code, _ = f.signIn(t, agent)
	_, err = f.conf.Exchange(context.Background(), code) // no verifier at all
	wantAAD(t, err, 400, "invalid_grant", 501481)
}

func TestCodeChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code, verifier := f.signIn(t, agent)
	f.clock.Advance(AuthorizationCodeLifetime + time.Second)
	_, err := f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	wantAAD(t, err, 400, "invalid_grant", 70008)

	code, verifier = f.signIn(t, agent)
	other := *f.conf
	other.RedirectURL = "http://127.0.0.1:8080/elsewhere"
	_, err = other.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	wantAAD(t, err, 400, "invalid_grant", 500112)

	_, err = f.conf.Exchange(context.Background(), "made-up", oauth2.VerifierOption(verifier))
	wantAAD(t, err, 400, "invalid_grant", 70000)

	code, verifier = f.signIn(t, agent)
	if err := f.idp.Revoke(agent); err != nil {
		t.Fatal(err)
	}
	_, err = f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	wantAAD(t, err, 400, "invalid_grant", 50173)
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	for _, policy := range []ReusePolicy{ReuseAllowed, ReuseRefused, ReuseRevokesGrant} {
		t.Run(policy.String(), func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.RefreshTokenReuse = policy })
			first := f.tokens(t, agent)
			f.clock.Advance(2 * time.Hour)
			second, err := f.refresh(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
				t.Fatalf("refresh did not rotate: %+v", second)
			}
			if second.Extra("id_token") == nil {
				t.Error("no id_token on refresh")
			}
			if f.introspect(t, first.AccessToken)["active"] != false || f.introspect(t, second.AccessToken)["active"] != true {
				t.Error("introspection does not follow the clock")
			}
			if n := len(f.idp.Reuses()); n != 0 {
				t.Fatalf("%d reuses recorded before any", n)
			}
			_, err = f.refresh(first.RefreshToken)
			switch policy {
			case ReuseAllowed:
				if err != nil {
					t.Errorf("old refresh token refused: %v (Microsoft keeps it valid)", err)
				}
			case ReuseRefused:
				wantAAD(t, err, 400, "invalid_grant", 70000)
			case ReuseRevokesGrant:
				wantAAD(t, err, 400, "invalid_grant", 50173)
			}
			reuses := f.idp.Reuses()
			if len(reuses) != 1 || reuses[0].Account != agent || reuses[0].Revoked != (policy == ReuseRevokesGrant) {
				t.Errorf("reuses = %+v, want one by %s", reuses, agent)
			}
			_, err = f.refresh(second.RefreshToken)
			if policy == ReuseRevokesGrant {
				// The whole grant is gone: the newest token and its access
				// token too, as after theft.
				wantAAD(t, err, 400, "invalid_grant", 50173)
				if f.introspect(t, second.AccessToken)["active"] != false {
					t.Error("an access token of a revoked grant is still active")
				}
				// A new sign-in is a new grant and works.
				if _, err := f.refresh(f.tokens(t, agent).RefreshToken); err != nil {
					t.Errorf("refresh after a new sign-in: %v", err)
				}
			} else if err != nil {
				t.Errorf("new refresh token: %v", err)
			}
			if got := f.idp.RefreshCount(agent); got < 3 {
				t.Errorf("RefreshCount = %d, want at least 3", got)
			}
		})
	}
}

func TestParseReusePolicy(t *testing.T) {
	t.Parallel()
	for _, p := range []ReusePolicy{ReuseRevokesGrant, ReuseRefused, ReuseAllowed} {
		if got, err := ParseReusePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParseReusePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParseReusePolicy("sometimes"); err == nil {
		t.Error("ParseReusePolicy accepted an unknown policy")
	}
}

// The token endpoint answers after the configured delay, but the request
// has taken effect before: a client that gives up meanwhile loses the
// rotated token, and presenting the old one again is a reuse.
func TestTokenDelayRotatesFirst(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	f := newFixture(t, func(o *Options) { o.TokenDelay, o.TokenDelayMax = delay, delay })
	first := f.tokens(t, agent)
	began := time.Now()
	if _, err := f.refresh(first.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < delay {
		t.Errorf("refresh answered in %v, want at least %v", took, delay)
	}
	second := f.tokens(t, agent)
	ctx, cancel := context.WithTimeout(context.Background(), delay/3)
	defer cancel()
	_, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: second.RefreshToken}).Token()
	if err == nil {
		t.Fatal("a refresh given up before the delay succeeded")
	}
	_, err = f.refresh(second.RefreshToken)
	wantAAD(t, err, 400, "invalid_grant", 50173)
	if r := f.idp.Reuses(); len(r) != 1 || !r[0].Revoked {
		t.Errorf("reuses = %+v, want one that revoked the grant", r)
	}
}

func TestRefreshScopeSubset(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	// x/oauth2 sends no scope on refresh; MSAL-style clients do.
	refresh := func(scope string) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(f.conf.Endpoint.TokenURL, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {scope},
			"client_id": {testClientID}, "client_secret": {testSecret},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, m := refresh("https://outlook.office.com/SMTP.Send offline_access")
	if status != 200 || m["scope"] != "https://outlook.office.com/SMTP.Send" {
		t.Errorf("subset: %d %v", status, m)
	}
	tok.RefreshToken, _ = m["refresh_token"].(string) // the old one is spent

	if status, m := refresh("https://graph.microsoft.com/Mail.Read"); status != 400 || m["error"] != "invalid_grant" || m["error_codes"].([]any)[0] != 65001.0 {
		t.Errorf("scope not granted: %d %v", status, m)
	}
}

func TestRefreshInactivity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	// Used every 89 days, the grant lives on: each refresh starts a new window.
	rt := tok.RefreshToken
	for range 3 {
		f.clock.Advance(89 * 24 * time.Hour)
		next, err := f.refresh(rt)
		if err != nil {
			t.Fatalf("refresh after 89 days: %v", err)
		}
		rt = next.RefreshToken
	}
	f.clock.Advance(91 * 24 * time.Hour)
	_, err := f.refresh(rt)
	body := wantAAD(t, err, 400, "invalid_grant", 700082)
	if !strings.Contains(body.ErrorDescription, "The refresh token has expired due to inactivity.") ||
		!strings.Contains(body.ErrorDescription, "was inactive for 90.00:00:00") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
}

func TestMaxSessionAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.MaxSessionAge = 30 * 24 * time.Hour })
	tok := f.tokens(t, agent)
	f.clock.Advance(29 * 24 * time.Hour)
	next, err := f.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * 24 * time.Hour)
	_, err = f.refresh(next.RefreshToken)
	body := wantAAD(t, err, 400, "invalid_grant", 70043)
	if !strings.Contains(body.ErrorDescription, "maximum allowed lifetime for this request is 30.00:00:00") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	other := f.tokens(t, support)
	if err := f.idp.Revoke(agent); err != nil {
		t.Fatal(err)
	}
	_, err := f.refresh(tok.RefreshToken)
	body := wantAAD(t, err, 400, "invalid_grant", 50173)
	if !strings.Contains(body.ErrorDescription, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
	if f.introspect(t, tok.AccessToken)["active"] != false {
		t.Error("revoked access token still active")
	}
	if f.introspect(t, other.AccessToken)["active"] != true {
		t.Error("another account's token was revoked")
	}
	// Signing in again gives working tokens.
	fresh := f.tokens(t, agent)
	if _, err := f.refresh(fresh.RefreshToken); err != nil {
		t.Errorf("refresh after re-sign-in: %v", err)
	}
	if err := f.idp.Revoke("nobody@example.com"); err == nil {
		t.Error("Revoke of an unknown account succeeded")
	}
}

func TestInjectedRefreshErrors(t *testing.T) {
	t.Parallel()
	texts := map[int]string{
		700082: "The refresh token has expired due to inactivity.",
		70008:  "has expired due to inactivity",
		50173:  "The provided grant has expired due to it being revoked",
		50132:  "password",
		50133:  "Session is invalid due to expiration or recent password change.",
		50055:  "The password is expired.",
		50057:  "The user account is disabled.",
		70043:  "sign-in frequency checks by conditional access",
		50076:  "you must use multi-factor authentication to access 'https://outlook.office.com'",
		50079:  "you must enroll in multi-factor authentication",
		65001:  "has not consented to use the application with ID '" + testClientID + "' named 'Postdesk'",
		65004:  "User declined to consent to access the app.",
		53003:  "Access has been blocked by Conditional Access policies.",
	}
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	for code, text := range texts {
		if err := f.idp.SetRefreshError(agent, code); err != nil {
			t.Fatal(err)
		}
		for range 2 { // sticky
			_, err := f.refresh(tok.RefreshToken)
			body := wantAAD(t, err, 400, "invalid_grant", code)
			if !strings.Contains(body.ErrorDescription, text) {
				t.Errorf("AADSTS%d description = %q", code, body.ErrorDescription)
			}
		}
	}
	f.idp.SetRefreshError(agent, 0)
	next, err := f.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	f.idp.FailNextRefresh(agent, 50076)
	_, err = f.refresh(next.RefreshToken)
	wantAAD(t, err, 400, "invalid_grant", 50076)
	if _, err := f.refresh(next.RefreshToken); err != nil {
		t.Errorf("FailNextRefresh failed twice: %v", err)
	}
}

func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)

	basic := *f.conf
	basic.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	next, err := basic.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("HTTP Basic client authentication: %v", err)
	}
	tok = next // the first refresh token is spent

	wrong := *f.conf
	wrong.ClientSecret = "guess"
	_, err = wrong.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	body := wantAAD(t, err, 401, "invalid_client", 7000215)
	if !strings.Contains(body.ErrorDescription, "Invalid client secret provided.") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
	wrong.ClientSecret = ""
	_, err = wrong.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantAAD(t, err, 401, "invalid_client", 7000218)

	if err := f.idp.ExpireClientSecret(testClientID); err != nil {
		t.Fatal(err)
	}
	_, err = f.refresh(tok.RefreshToken)
	body = wantAAD(t, err, 401, "invalid_client", 7000222)
	if !strings.Contains(body.ErrorDescription, "The provided client secret keys for app '"+testClientID+"' are expired.") {
		t.Errorf("description = %q", body.ErrorDescription)
	}
	if err := f.idp.SetClientSecret(testClientID, "rotated", time.Time{}); err != nil {
		t.Fatal(err)
	}
	f.conf.ClientSecret = "rotated"
	if _, err := f.refresh(tok.RefreshToken); err != nil {
		t.Errorf("after a new secret: %v", err)
	}

	unknown := *f.conf
	unknown.ClientID = "who"
	_, err = unknown.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantAAD(t, err, 400, "unauthorized_client", 700016)
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	post := func(v url.Values) *http.Response {
		t.Helper()
		resp, err := http.PostForm(f.srv.URL+"/common/oauth2/v2.0/token", v)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	creds := url.Values{"client_id": {testClientID}, "client_secret": {testSecret}}
	with := func(k, v string) url.Values {
		out := url.Values{k: {v}}
		for k, vs := range creds {
			out[k] = vs
		}
		return out
	}
	if r := post(with("grant_type", "client_credentials")); r.StatusCode != 400 {
		t.Errorf("unsupported grant: %d", r.StatusCode)
	}
	if r := post(creds); r.StatusCode != 400 {
		t.Errorf("no grant_type: %d", r.StatusCode)
	}
	_, err := f.refresh("not-a-token")
	wantAAD(t, err, 400, "invalid_grant", 9002313)
}

func TestTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	before := f.idp.TokenRequests()
	f.idp.SetTemporarilyUnavailable(2)
	for range 2 {
		_, err := f.refresh(tok.RefreshToken)
		wantAAD(t, err, 503, "temporarily_unavailable", 90033)
	}
	if _, err := f.refresh(tok.RefreshToken); err != nil {
		t.Errorf("third request: %v", err)
	}
	if got := f.idp.TokenRequests() - before; got != 3 {
		t.Errorf("TokenRequests grew by %d, want 3", got)
	}
	if got := f.idp.RefreshCount(agent); got != 1 {
		t.Errorf("RefreshCount = %d, want 1 (503s never reach the account)", got)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.tokens(t, agent)
	if in := f.introspect(t, "garbage"); len(in) != 1 || in["active"] != false {
		t.Errorf("unknown token: %v", in)
	}
	resp, err := http.PostForm(f.srv.URL+"/introspect", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("no token: %d", resp.StatusCode)
	}

	if err := f.idp.GrantMailbox(agent, "Shared@example.com"); err != nil {
		t.Fatal(err)
	}
	if in := f.introspect(t, tok.AccessToken); in["active"] != true || in["username"] != "shared@example.com" {
		t.Errorf("granted mailbox: %v", in)
	}
	f.idp.GrantMailbox(agent, "second@example.com")
	if in := f.introspect(t, tok.AccessToken); in["username"] != agent {
		t.Errorf("two granted mailboxes: %v", in)
	}

	f.clock.Advance(time.Hour)
	if in := f.introspect(t, tok.AccessToken); len(in) != 1 || in["active"] != false {
		t.Errorf("expired token: %v", in)
	}
}

func TestClockZeroValueFollowsRealTime(t *testing.T) {
	t.Parallel()
	var c Clock
	c.Advance(48 * time.Hour)
	if d := time.Until(c.Now()); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("advanced real clock off by %v", d)
	}
	c.Set(testStart)
	if !c.Now().Equal(testStart) {
		t.Errorf("Set: %v", c.Now())
	}
	if got := timeSpan(90*24*time.Hour + 90*time.Minute + 5*time.Second); got != "90.01:30:05" {
		t.Errorf("timeSpan = %q", got)
	}
}
