// Package fakeidp is a stand-in for the Microsoft identity platform
// (login.microsoftonline.com, OAuth 2.0 / OpenID Connect v2.0 endpoints), for
// the demo and for tests. It serves the same paths, JSON shapes and AADSTS
// errors, so Postdesk's OAuth code runs unchanged against it: only the
// authority base URL differs.
//
// What it models:
//   - discovery (/{tenant}/v2.0/.well-known/openid-configuration) and the
//     signing keys (/{tenant}/discovery/v2.0/keys); {tenant} is any segment;
//   - the authorization code flow with PKCE S256 (required here; "plain" is
//     refused), a small HTML sign-in page listing the known accounts, an
//     optional consent step, prompt=none through a session cookie, and
//     Microsoft's two ways of failing: an HTML page with the AADSTS code
//     before the redirect URI is trusted, a redirect with error and
//     error_description after;
//   - the token endpoint (authorization_code, refresh_token) with client
//     secrets (form or HTTP Basic), single-use codes (10 minutes), refresh
//     token rotation with reuse detection (a spent refresh token presented
//     again revokes the whole grant by default; Options.RefreshTokenReuse,
//     and Reuses records every such presentation), an optional answer delay
//     (Options.TokenDelay), inactivity expiry (RefreshTokenInactivity, 90 days),
//     an optional maximum session age (sign-in frequency, AADSTS70043), and
//     Microsoft's error JSON (error, error_description with Trace ID,
//     Correlation ID and Timestamp, error_codes, timestamp, trace_id,
//     correlation_id, error_uri);
//   - RS256 id_tokens (email only with the email scope, name and
//     preferred_username only with profile, as Microsoft documents); opaque
//     access tokens, each for the resource of the scopes it was issued with
//     (one refresh token serves Outlook and Graph: a refresh with Graph
//     scopes gets a Graph token); RFC 7662 introspection at /introspect for
//     Dovecot's oauth2 passdb; AccessTokenInfo for a stand-in resource
//     server (internal/fakegraph, which Mount serves beside the IdP); an
//     OIDC userinfo endpoint;
//   - fault injection per account (Revoke, SetRefreshError, FailNextRefresh),
//     per app (ExpireClientSecret) and globally (SetTemporarilyUnavailable),
//     and a Clock that tests move forward by months.
//
// What it does not model: other grants (client credentials, device code,
// on-behalf-of), response_mode=form_post, certificate credentials, the
// one-resource-per-token rule (AADSTS28000), claims challenges and
// "suberror", conditional access, logout, CSRF on its forms, and JWT access
// tokens (access tokens are opaque; validate them by introspection). Error
// descriptions follow Microsoft's published texts as closely as known, but a
// client must only rely on the error, the AADSTS number and error_codes.
//
// Introspection and shared mailboxes: Dovecot compares the introspected
// "username" with the IMAP login name. A token normally introspects as the
// account that signed in; after GrantMailbox(account, mailbox) with exactly
// one mailbox, that account's tokens introspect as the mailbox instead (so
// they no longer log in to the account's own mailbox). This is a limitation
// of the stand-in: Microsoft checks mailbox permissions, not the token.
//
// All state is in memory, guarded by one mutex; there are no package globals.
package fakeidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Default lifetimes, as Microsoft's.
const (
	DefaultAccessTokenLifetime    = time.Hour
	DefaultRefreshTokenInactivity = 90 * 24 * time.Hour
	// AuthorizationCodeLifetime is how long an authorization code can be
	// redeemed.
	AuthorizationCodeLifetime = 10 * time.Minute
	// DefaultTenantID is the directory (tenant) id in tokens when
	// Options.TenantID is empty.
	DefaultTenantID = "5d3a8c6e-0f4b-4b7a-9e61-2f0c1d7a4b10"
)

// ErrUnknown is returned by the fault-injection methods for an account or
// app that was never added.
var ErrUnknown = errors.New("fakeidp: unknown account or app")

// Account is a user who can sign in.
type Account struct {
	Address string // the sign-in name and email address
	Name    string // display name
	// Password, if set, lets the account sign in by typing it. Every account
	// can also sign in by picking it on the sign-in page.
	Password string
}

// App is a registered application (an Entra "app registration").
type App struct {
	ClientID string
	Name     string // display name on the sign-in and consent pages
	// ClientSecret, if set, is required at the token endpoint (a
	// confidential client); empty means a public client.
	ClientSecret    string
	SecretExpiresAt time.Time // zero: never
	// RedirectURIs are compared exactly with the request's redirect_uri.
	RedirectURIs []string
}

// Options configures an IdP. The zero value works: no accounts, no apps.
type Options struct {
	Accounts []Account
	Apps     []App
	// TenantID is the tid claim and the tenant of the issuer; default
	// DefaultTenantID.
	TenantID string
	// BaseURL is the external URL of the server ("http://127.0.0.1:10080"),
	// used in discovery documents and the issuer. Empty: derived from each
	// request's Host.
	BaseURL string
	// Clock is the time source of every lifetime. Nil: real time.
	Clock *Clock
	// AccessTokenLifetime is expires_in; default DefaultAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// RefreshTokenInactivity is how long a refresh token lives unused
	// (AADSTS700082 after it); default DefaultRefreshTokenInactivity.
	RefreshTokenInactivity time.Duration
	// MaxSessionAge, when set, refuses refreshes of a grant whose sign-in is
	// older (AADSTS70043, a sign-in frequency policy).
	MaxSessionAge time.Duration
	// RefreshTokenReuse says what presenting a spent refresh token (one
	// already exchanged for a new one) does. The zero value, ReuseRevokesGrant,
	// is the strictest real behaviour (OAuth 2.1, RFC 6819 5.2.2.3): the
	// whole grant is revoked. Microsoft itself leaves the old token valid
	// (ReuseAllowed).
	RefreshTokenReuse ReusePolicy
	// TokenDelay and TokenDelayMax slow the token endpoint down: each answer
	// waits a random time in [TokenDelay, TokenDelayMax] of real time
	// (TokenDelayMax below TokenDelay: exactly TokenDelay) after the request
	// took effect, as a slow provider that has already rotated the token
	// does. A client that gives up meanwhile loses the new token.
	TokenDelay    time.Duration
	TokenDelayMax time.Duration
	// RequireConsent shows a consent step the first time an account signs
	// in to an app (and whenever prompt=consent).
	RequireConsent bool
	// SigningKey signs id_tokens. Nil: a new 2048-bit key.
	SigningKey *rsa.PrivateKey
	// Logger receives one line per sign-in and token request (never a token
	// or password). Nil: discard.
	Logger *slog.Logger
}

// IdP is the fake identity provider. It is an http.Handler; create it with
// New.
type IdP struct {
	opts  Options
	clock *Clock
	keys  signingKey
	log   *slog.Logger
	pages *template.Template
	mux   *http.ServeMux

	mu            sync.Mutex
	accounts      map[string]*account // by lower-case address
	accountOrder  []string
	apps          map[string]*App
	codes         map[string]*authCode
	pending       map[string]*pendingSignIn
	refresh       map[string]*refreshToken
	access        map[string]*accessToken
	sessions      map[string]string // session cookie -> account key
	consents      map[string]bool   // account key + " " + client id
	unavailable   int
	tokenRequests int
	issued        int
	reuses        []Reuse
	mounts        []mount
}

// mount is another stand-in served beside the IdP (see Mount).
type mount struct {
	prefix  string // of the requests it serves
	h       http.Handler
	name    string // in the banner
	urlPath string // in the banner
}

type account struct {
	Account
	oid            string
	refreshErr     int  // injected AADSTS code, 0: none
	refreshErrOnce bool // clear refreshErr after one use
	mailboxes      []string
	refreshCount   int
	epoch          int       // grants of an earlier epoch are revoked
	validFrom      time.Time // when the last revocation happened
}

// grant is one sign-in of an account to an app.
type grant struct {
	clientID string
	account  string // key
	scopes   []string
	nonce    string
	authTime time.Time
	epoch    int  // the account's epoch at sign-in
	revoked  bool // a spent refresh token of this grant was presented again
}

type authCode struct {
	grant       *grant
	redirectURI string
	challenge   string
	expires     time.Time
	redeemed    bool
}

type refreshToken struct {
	grant      *grant
	issued     time.Time
	superseded bool
}

type accessToken struct {
	grant   *grant
	scopes  []string // as requested when it was issued: its resource and scp
	issued  time.Time
	expires time.Time
}

// New returns an IdP with opts' accounts and apps.
func New(opts Options) *IdP {
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.RefreshTokenInactivity <= 0 {
		opts.RefreshTokenInactivity = DefaultRefreshTokenInactivity
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	idp := &IdP{
		opts:     opts,
		clock:    opts.Clock,
		log:      opts.Logger,
		accounts: map[string]*account{},
		apps:     map[string]*App{},
		codes:    map[string]*authCode{},
		pending:  map[string]*pendingSignIn{},
		refresh:  map[string]*refreshToken{},
		access:   map[string]*accessToken{},
		sessions: map[string]string{},
		consents: map[string]bool{},
	}
	if idp.clock == nil {
		idp.clock = &Clock{}
	}
	if idp.log == nil {
		idp.log = slog.New(slog.DiscardHandler)
	}
	idp.keys = newSigningKey(opts.SigningKey, idp.clock.Now())
	idp.pages = template.Must(template.New("pages").Funcs(template.FuncMap{"scopeLabel": scopeLabel}).Parse(pageTemplates))
	for _, a := range opts.Accounts {
		idp.AddAccount(a)
	}
	for _, a := range opts.Apps {
		idp.AddApp(a)
	}
	idp.mux = idp.routes()
	return idp
}

func (idp *IdP) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", idp.handleIndex)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", idp.handleDiscovery)
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", idp.handleDiscovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", idp.handleKeys)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", idp.handleAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", idp.handleAuthorizePost)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", idp.handleToken)
	mux.HandleFunc("POST /introspect", idp.handleIntrospect)
	mux.HandleFunc("GET /oidc/userinfo", idp.handleUserinfo)
	mux.HandleFunc("POST /oidc/userinfo", idp.handleUserinfo)
	mux.HandleFunc("GET /{tenant}/openid/userinfo", idp.handleUserinfo)
	mux.HandleFunc("POST /{tenant}/openid/userinfo", idp.handleUserinfo)
	return mux
}

// ServeHTTP implements http.Handler.
func (idp *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, m := range idp.mounted() {
		if strings.HasPrefix(r.URL.Path, m.prefix) {
			m.h.ServeHTTP(w, r)
			return
		}
	}
	idp.mux.ServeHTTP(w, r)
}

// Clock returns the IdP's clock, to move time in tests.
func (idp *IdP) Clock() *Clock { return idp.clock }

// AddAccount adds or replaces an account.
func (idp *IdP) AddAccount(a Account) {
	key := accountKey(a.Address)
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if old, ok := idp.accounts[key]; ok {
		old.Account = a
		return
	}
	sum := sha256.Sum256([]byte(key))
	idp.accounts[key] = &account{Account: a, oid: uuidFrom(sum[:16])}
	idp.accountOrder = append(idp.accountOrder, key)
}

// AddApp adds or replaces an app registration.
func (idp *IdP) AddApp(a App) {
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.apps[a.ClientID] = &a
}

// Accounts returns the accounts in the order they were added.
func (idp *IdP) Accounts() []Account {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	out := make([]Account, 0, len(idp.accountOrder))
	for _, k := range idp.accountOrder {
		out = append(out, idp.accounts[k].Account)
	}
	return out
}

func accountKey(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// baseURL is the external URL of the server as seen by this request.
func (idp *IdP) baseURL(r *http.Request) string {
	if idp.opts.BaseURL != "" || r == nil {
		return idp.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (idp *IdP) issuer(r *http.Request) string {
	return idp.baseURL(r) + "/" + idp.opts.TenantID + "/v2.0"
}

// Clock is a time source that tests can move. The zero value follows real
// time; Advance shifts it, Set freezes it at a given time.
type Clock struct {
	mu     sync.Mutex
	frozen bool
	t      time.Time
	offset time.Duration
}

// NewClock returns a clock frozen at t.
func NewClock(t time.Time) *Clock { return &Clock{frozen: true, t: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.t.Add(c.offset)
	}
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set freezes the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen, c.t, c.offset = true, t, 0
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, as in trace and correlation ids.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return uuidFrom(b)
}

// uuidFrom formats 16 bytes as a version 4 UUID.
func uuidFrom(b []byte) string {
	u := slices.Clone(b[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}
