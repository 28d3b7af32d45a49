package fakeidp

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, p := range []string{"/organizations/v2.0/.well-known/openid-configuration", "/" + DefaultTenantID + "/.well-known/openid-configuration"} {
		d := getJSON(t, f.srv.URL+p)
		tenant := strings.Split(p, "/")[1]
		if d["token_endpoint"] != f.srv.URL+"/"+tenant+"/oauth2/v2.0/token" ||
			d["authorization_endpoint"] != f.srv.URL+"/"+tenant+"/oauth2/v2.0/authorize" ||
			d["jwks_uri"] != f.srv.URL+"/"+tenant+"/discovery/v2.0/keys" ||
			d["introspection_endpoint"] != f.srv.URL+"/introspect" ||
			d["userinfo_endpoint"] != f.srv.URL+"/oidc/userinfo" {
			t.Errorf("%s: %v", p, d)
		}
		wantIss := f.srv.URL + "/{tenantid}/v2.0"
		if tenant == DefaultTenantID {
			wantIss = f.srv.URL + "/" + DefaultTenantID + "/v2.0"
		}
		if d["issuer"] != wantIss {
			t.Errorf("%s: issuer %v, want %s", p, d["issuer"], wantIss)
		}
	}
}

// verifyIDToken checks the id_token's signature with the published JWKS.
func verifyIDToken(t *testing.T, f *fixture, raw string) jwt.MapClaims {
	t.Helper()
	keys := getJSON(t, f.srv.URL+"/common/discovery/v2.0/keys")["keys"].([]any)
	jwk := keys[0].(map[string]any)
	if jwk["kty"] != "RSA" || jwk["use"] != "sig" || jwk["x5t"] != jwk["kid"] || len(jwk["x5c"].([]any)) != 1 {
		t.Errorf("jwk = %v", jwk)
	}
	claims := jwt.MapClaims{}
	var err error
	_, err = jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != jwk["kid"] {
			return nil, errors.New("unknown kid")
		}
		return rsaFromJWK(t, jwk), nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(f.clock.Now))
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	return claims
}

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	u, verifier := f.authURL(oauth2.SetAuthURLParam("nonce", "n0nce"), oauth2.SetAuthURLParam("login_hint", agent))
	resp, page := f.get(t, u)
	if resp.StatusCode != 200 || !strings.Contains(page, "Postdesk") || !strings.Contains(page, agent) || !strings.Contains(page, support) {
		t.Fatalf("sign-in page %d:\n%s", resp.StatusCode, page)
	}
	q := callback(t, must2(f.post(t, page, url.Values{"account": {agent}})))
	if q.Get("state") != "st4te" || q.Get("session_state") == "" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := f.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 {
		t.Errorf("token = %+v", tok)
	}
	if s := tok.Extra("scope"); s != "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send openid email profile" {
		t.Errorf("scope = %v", s)
	}
	if tok.Extra("ext_expires_in") != 3600.0 {
		t.Errorf("ext_expires_in = %v", tok.Extra("ext_expires_in"))
	}
	claims := verifyIDToken(t, f, tok.Extra("id_token").(string))
	if claims["aud"] != testClientID || claims["nonce"] != "n0nce" || claims["email"] != agent ||
		claims["preferred_username"] != agent || claims["name"] != "Ada Agent" ||
		claims["tid"] != DefaultTenantID || claims["iss"] != f.srv.URL+"/"+DefaultTenantID+"/v2.0" ||
		claims["oid"] == nil || claims["sub"] == nil || claims["exp"] == nil || claims["nbf"] == nil || claims["iat"] == nil {
		t.Errorf("claims = %v", claims)
	}

	in := f.introspect(t, tok.AccessToken)
	if in["active"] != true || in["username"] != agent || in["client_id"] != testClientID ||
		in["exp"] != float64(testStart.Add(time.Hour).Unix()) || !strings.Contains(in["scope"].(string), "IMAP.AccessAsUser.All") {
		t.Errorf("introspection = %v", in)
	}

	req, _ := http.NewRequest("GET", f.srv.URL+"/oidc/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	uresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	json.NewDecoder(uresp.Body).Decode(&ui)
	uresp.Body.Close()
	if ui["email"] != agent || ui["sub"] != claims["sub"] || ui["name"] != "Ada Agent" {
		t.Errorf("userinfo = %v", ui)
	}
	req.Header.Set("Authorization", "Bearer nope")
	if uresp, _ = http.DefaultClient.Do(req); uresp.StatusCode != 401 {
		t.Errorf("userinfo with bad token: %d", uresp.StatusCode)
	}
}

func TestIDTokenClaimsFollowScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) {})
	f.conf.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "openid", "email"}
	tok := f.tokens(t, agent)
	claims := verifyIDToken(t, f, tok.Extra("id_token").(string))
	if claims["email"] != agent || claims["preferred_username"] != nil || claims["name"] != nil {
		t.Errorf("claims with openid email = %v", claims)
	}
	if tok.RefreshToken != "" {
		t.Errorf("refresh token without offline_access")
	}
}

func TestPasswordSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	u, _ := f.authURL()
	_, page := f.get(t, u)
	for _, bad := range []url.Values{
		{"email": {agent}, "password": {"wrong"}, "action": {"password"}},
		{"email": {support}, "password": {""}, "action": {"password"}}, // no password set
		{"email": {"nobody@example.com"}, "password": {"x"}, "action": {"password"}},
	} {
		resp, body := f.post(t, page, bad)
		if resp.StatusCode != 200 || !strings.Contains(body, `role="alert"`) {
			t.Errorf("%v: %d %s", bad, resp.StatusCode, body)
		}
	}
	q := callback(t, must2(f.post(t, page, url.Values{"email": {"AGENT@example.com"}, "password": {"pw-agent"}, "action": {"password"}})))
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	if err := f.idp.SetPassword(support, "new-pw"); err != nil {
		t.Fatal(err)
	}
	q = callback(t, must2(f.post(t, page, url.Values{"email": {support}, "password": {"new-pw"}, "action": {"password"}})))
	if q.Get("code") == "" {
		t.Fatalf("no code after SetPassword: %v", q)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	u, _ := f.authURL()
	_, page := f.get(t, u)
	q := callback(t, must2(f.post(t, page, url.Values{"action": {"cancel"}})))
	if q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004: User declined to consent") || q.Get("state") != "st4te" {
		t.Errorf("cancel callback = %v", q)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := url.Values{
		"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	tests := []struct {
		name     string
		change   url.Values
		page     int    // AADSTS code shown on an error page
		redirect string // error sent to the redirect URI
		code     string
	}{
		{"unknown app", url.Values{"client_id": {"nope"}}, 700016, "", ""},
		{"missing client", url.Values{"client_id": {""}}, 900144, "", ""},
		{"redirect mismatch", url.Values{"redirect_uri": {testRedirect + "/x"}}, 50011, "", ""},
		{"no pkce", url.Values{"code_challenge": {""}}, 0, "invalid_request", "AADSTS9002325"},
		{"plain pkce", url.Values{"code_challenge_method": {"plain"}}, 0, "invalid_request", "AADSTS9002325"},
		{"implicit", url.Values{"response_type": {"token"}}, 0, "unsupported_response_type", "AADSTS700054"},
		{"no scope", url.Values{"scope": {""}}, 0, "invalid_request", "AADSTS900144"},
		{"bad prompt", url.Values{"prompt": {"maybe"}}, 0, "invalid_request", "AADSTS90023"},
	}
	for _, tt := range tests {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for k, vs := range tt.change {
			v[k] = vs
		}
		resp, body := f.get(t, f.srv.URL+"/common/oauth2/v2.0/authorize?"+v.Encode())
		if tt.page != 0 {
			if resp.StatusCode != 400 || !strings.Contains(body, "AADSTS"+itoa(tt.page)+":") {
				t.Errorf("%s: %d, page:\n%s", tt.name, resp.StatusCode, body)
			}
			continue
		}
		q := callback(t, resp)
		if q.Get("error") != tt.redirect || !strings.HasPrefix(q.Get("error_description"), tt.code+":") || q.Get("state") != "s" {
			t.Errorf("%s: callback %v", tt.name, q)
		}
	}
}

func TestConsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.RequireConsent = true })
	u, verifier := f.authURL()
	_, page := f.get(t, u)
	resp, consent := f.post(t, page, url.Values{"account": {agent}})
	if resp.StatusCode != 200 || !strings.Contains(consent, "Permissions requested") || !strings.Contains(consent, "over IMAP") {
		t.Fatalf("consent page %d:\n%s", resp.StatusCode, consent)
	}
	q := callback(t, must2(f.post(t, consent, url.Values{"action": {"decline"}})))
	if q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004:") {
		t.Errorf("decline: %v", q)
	}
	// A used ticket is gone.
	if resp, _ := f.post(t, consent, url.Values{"action": {"accept"}}); resp.StatusCode != 400 {
		t.Errorf("replayed consent ticket: %d", resp.StatusCode)
	}
	_, consent = f.post(t, page, url.Values{"account": {agent}})
	q = callback(t, must2(f.post(t, consent, url.Values{"action": {"accept"}})))
	if _, err := f.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	// Consent is remembered.
	q = callback(t, must2(f.post(t, page, url.Values{"account": {agent}})))
	if q.Get("code") == "" {
		t.Errorf("second sign-in asked for consent again: %v", q)
	}
}

func TestPromptNone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	jar, _ := cookiejar.New(nil)
	f.http.Jar = jar
	u, _ := f.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	q := callback(t, must2(f.get(t, u)))
	if q.Get("error") != "login_required" || !strings.HasPrefix(q.Get("error_description"), "AADSTS50058:") {
		t.Errorf("prompt=none without session: %v", q)
	}
	f.signIn(t, support)
	u, verifier := f.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	q = callback(t, must2(f.get(t, u)))
	tok, err := f.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if in := f.introspect(t, tok.AccessToken); in["username"] != support {
		t.Errorf("silent sign-in as %v", in["username"])
	}
}

func TestSignInAndIssueTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.RequireConsent = true })
	u, verifier := f.authURL()
	cb, err := f.idp.SignIn(u, agent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.idp.SignIn(u, "nobody@example.com"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := f.idp.SignIn(strings.Replace(u, testClientID, "other", 1), agent); err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("unknown app: %v", err)
	}
	toks, err := f.idp.IssueTokens(testClientID, support, "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")
	if err != nil || toks.RefreshToken == "" || toks.IDToken != "" || !toks.Expiry.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("IssueTokens = %+v, %v", toks, err)
	}
	if in := f.introspect(t, toks.AccessToken); in["active"] != true || in["username"] != support {
		t.Errorf("introspection = %v", in)
	}
	if _, err := f.refresh(toks.RefreshToken); err != nil {
		t.Errorf("refresh issued token: %v", err)
	}
}

func TestIndexPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	resp, body := f.get(t, f.srv.URL+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, agent) || !strings.Contains(body, testRedirect) || strings.Contains(body, testSecret) {
		t.Errorf("index %d:\n%s", resp.StatusCode, body)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp := New(Options{Accounts: []Account{{Address: agent}}, SigningKey: testKey()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- idp.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/common/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := Run(context.Background(), "256.0.0.1:bad", Options{SigningKey: testKey()}); err == nil {
		t.Error("Run on a bad address succeeded")
	}
}

func rsaFromJWK(t *testing.T, jwk map[string]any) *rsa.PublicKey {
	t.Helper()
	n, err1 := base64.RawURLEncoding.DecodeString(jwk["n"].(string))
	e, err2 := base64.RawURLEncoding.DecodeString(jwk["e"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("jwk n/e: %v %v", err1, err2)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}
