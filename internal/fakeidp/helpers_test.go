package fakeidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
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
	testClientID = "6f1c0a3e-postdesk-test"
	testSecret   = "s3cret~value"
	testRedirect = "http://127.0.0.1:8080/oauth/callback"
	agent        = "agent@example.com"
	support      = "support@example.com"
)

var testScopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access", "openid", "email", "profile"}

var testStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fixture struct {
	idp   *IdP
	srv   *httptest.Server
	clock *Clock
	conf  *oauth2.Config
	http  *http.Client // does not follow redirects
}

// newFixture starts an IdP over httptest with two accounts and one
// confidential app. change, if not nil, edits the options first.
func newFixture(t *testing.T, change func(*Options)) *fixture {
	t.Helper()
	clock := NewClock(testStart)
	opts := Options{
		Accounts: []Account{
			{Address: agent, Name: "Ada Agent", Password: "pw-agent"},
			{Address: support, Name: "Support Desk"},
		},
		Apps: []App{{
			ClientID:     testClientID,
			Name:         "Postdesk",
			ClientSecret: testSecret,
			RedirectURIs: []string{testRedirect},
		}},
		Clock:      clock,
		SigningKey: testKey(),
	}
	if change != nil {
		change(&opts)
	}
	idp := New(opts)
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return &fixture{
		idp:   idp,
		srv:   srv,
		clock: clock,
		conf: &oauth2.Config{
			ClientID:     testClientID,
			ClientSecret: testSecret,
			RedirectURL:  testRedirect,
			Scopes:       testScopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:   srv.URL + "/organizations/oauth2/v2.0/authorize",
				TokenURL:  srv.URL + "/organizations/oauth2/v2.0/token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// authURL returns an authorization URL with PKCE S256 and its verifier.
func (f *fixture) authURL(opts ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	return f.conf.AuthCodeURL("st4te", opts...), verifier
}

// get fetches u without following redirects.
func (f *fixture) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := f.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hiddenFields returns the hidden inputs of a page, as a browser sends them.
func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// post submits a form of page to the authorize endpoint with extra fields.
func (f *fixture) post(t *testing.T, page string, extra url.Values) (*http.Response, string) {
	t.Helper()
	form := hiddenFields(page)
	for k, vs := range extra {
		form[k] = vs
	}
	resp, err := f.http.PostForm(f.srv.URL+"/organizations/oauth2/v2.0/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// callback checks resp is a redirect to the registered redirect URI and
// returns its query.
func callback(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %s, want %s", got, testRedirect)
	}
	return loc.Query()
}

// signIn runs the browser flow (GET the page, pick account) and returns the
// code and the verifier.
func (f *fixture) signIn(t *testing.T, account string, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	u, verifier := f.authURL(opts...)
	resp, page := f.get(t, u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page status %d: %s", resp.StatusCode, page)
	}
	q := callback(t, must2(f.post(t, page, url.Values{"account": {account}})))
	if q.Get("code") == "" || q.Get("state") != "st4te" {
		t.Fatalf("callback query = %v", q)
	}
	return q.Get("code"), verifier
}

func must2(resp *http.Response, _ string) *http.Response { return resp }

// tokens signs account in and exchanges the code.
func (f *fixture) tokens(t *testing.T, account string) *oauth2.Token {
	t.Helper()
	code, verifier := f.signIn(t, account)
	tok, err := f.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// refresh exchanges a refresh token the way Postdesk's token source does.
func (f *fixture) refresh(refreshToken string) (*oauth2.Token, error) {
	return f.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// wantAAD checks err is Microsoft's error JSON with the OAuth error, the
// AADSTS code and the HTTP status.
func wantAAD(t *testing.T, err error, status int, oauthErr string, code int) tokenErrorBody {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *oauth2.RetrieveError", err)
	}
	var body tokenErrorBody
	if jerr := json.Unmarshal(re.Body, &body); jerr != nil {
		t.Fatalf("error body %q: %v", re.Body, jerr)
	}
	if re.Response.StatusCode != status || body.Error != oauthErr || len(body.ErrorCodes) != 1 || body.ErrorCodes[0] != code {
		t.Fatalf("got %d %s %v (%s), want %d %s [%d]", re.Response.StatusCode, body.Error, body.ErrorCodes, body.ErrorDescription, status, oauthErr, code)
	}
	prefix := "AADSTS" + itoa(code) + ": "
	if !strings.HasPrefix(body.ErrorDescription, prefix) || !strings.Contains(body.ErrorDescription, "\r\nTrace ID: "+body.TraceID+"\r\nCorrelation ID: "+body.CorrelationID+"\r\nTimestamp: "+body.Timestamp) {
		t.Errorf("error_description = %q", body.ErrorDescription)
	}
	if body.ErrorURI != "https://login.microsoftonline.com/error?code="+itoa(code) || body.TraceID == "" || body.CorrelationID == "" {
		t.Errorf("error body = %+v", body)
	}
	return body
}

func itoa(n int) string { return strconv.Itoa(n) }

// introspect asks the introspection endpoint about token, as Dovecot does.
func (f *fixture) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	resp, err := http.PostForm(f.srv.URL+"/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
