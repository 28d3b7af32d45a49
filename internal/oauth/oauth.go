// Package oauth keeps support mailboxes authorized with OAuth 2.0
// (Microsoft 365, Google, or any provider described by its endpoints), and
// says loudly when one stops being authorized.
//
// Design:
//   - Providers are data (Provider): endpoints, scopes, mail hosts and the
//     two lifetimes that matter, so Microsoft's public cloud, a sovereign
//     cloud and the stand-in fakeidp are one code path.
//   - Connect and Reauthenticate are one flow: Begin records a random state
//     (only its SHA-256 is stored) bound to the admin's session and the
//     mailbox, single use, 10 minutes, with a sealed PKCE S256 verifier;
//     Complete checks it, exchanges the code, learns the signed-in account
//     from the ID token (or the userinfo endpoint) and refuses another
//     account unless the admin chose to allow it. A refused callback changes
//     nothing but the state it spent.
//   - TokenFor hands out access tokens, refreshing 5 minutes ahead (at most
//     a fifth of the token's lifetime ahead). One refresh per mailbox at a
//     time across every caller and every process on the database
//     (singleflight per mailbox, and a refresh lease on the row; see
//     refresh.go), so a rotated refresh token is never presented twice; the
//     rotated token is committed, compare-and-swap on the old one, before
//     the new access token is used, and Close waits for refreshes in flight.
//   - Classify sorts provider errors into Permanent (the mailbox needs
//     re-authentication, with the reason in plain words), ProviderFault (the
//     application is refused: fix the client secret; every mailbox of that
//     provider shows it) and Temporary (retried with jittered back-off,
//     never marks a mailbox broken).
//   - Two deadlines, one warning (State): expires_at (last successful
//     refresh + the provider's inactivity window, pushed forward by a daily
//     RefreshNow) and reauth_due_at (authorized_at + maximum age, 0 = until
//     revoked). A mailbox is expiring from WarnLead before the earlier one,
//     stays expiring (overdue) and keeps fetching past reauth_due_at while
//     the provider accepts refreshes, and needs re-authentication only when
//     the provider refuses or expires_at passes. Evaluate records one notice
//     per change of state.
//   - Secrets are sealed by store.Vault, bound to their row. No token ever
//     reaches a log line or an error string: provider errors are replaced by
//     their classification (see ProviderError).
//   - Time comes from Config.Now, so tests move a fake clock by months.
//
// Several serve processes on one database refresh a mailbox one at a time:
// the others wait for the lease holder's result and use it. Nothing relies
// on a provider leaving a superseded refresh token valid.
package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/store"
)

// ProviderKind is the family of a provider; it selects error parsing
// (AADSTS codes) and defaults.
type ProviderKind string

// Provider kinds.
const (
	KindMicrosoft ProviderKind = "microsoft"
	KindGoogle    ProviderKind = "google"
	KindGeneric   ProviderKind = "generic"
)

// Day is 24 hours, the unit of every authorization lifetime.
const Day = 24 * time.Hour

// Default lifetimes.
const (
	MicrosoftRefreshInactivity     = 90 * Day
	MicrosoftDefaultMaxAge         = 90 * Day
	GoogleRefreshInactivity        = 183 * Day
	GoogleTestingRefreshInactivity = 7 * Day
	DefaultWarnLead                = 10 * Day
)

// MicrosoftAuthority is the public cloud's sign-in authority.
const MicrosoftAuthority = "https://login.microsoftonline.com"

// MicrosoftScopes are the scopes a Microsoft 365 mailbox needs: IMAP and
// SMTP as the user, a refresh token, and an ID token naming the account.
var MicrosoftScopes = []string{
	"https://outlook.office.com/IMAP.AccessAsUser.All",
	"https://outlook.office.com/SMTP.Send",
	"offline_access", "openid", "email",
}

// GoogleScopes are the scopes a Gmail / Google Workspace mailbox needs.
var GoogleScopes = []string{"https://mail.google.com/", "openid", "email"}

// Provider describes an OAuth 2.0 provider and its mail servers.
type Provider struct {
	Name        string // unique; stored with each mailbox ("microsoft", "google", ...)
	Kind        ProviderKind
	AuthURL     string
	TokenURL    string
	UserinfoURL string // optional: asked when the ID token names no account
	Scopes      []string
	IMAPHost    string
	IMAPPort    int
	SMTPHost    string
	SMTPPort    int
	// GraphURL is the provider's Microsoft Graph API root (Microsoft only;
	// "" : no Graph transport), GraphResource its scopes' prefix (default
	// MicrosoftGraphResource).
	GraphURL      string
	GraphResource string
	// MailHosts are further hosts trusted with this provider's tokens
	// (POSTDESK_OAUTH_ALLOWED_HOSTS): a tenant's own IMAP gateway, or the
	// demo's and tests' loopback server. See AllowsMailHost.
	MailHosts []string
	// ClientID and ClientSecret identify the application (secret empty: a
	// public client, PKCE only).
	ClientID     string
	ClientSecret string
	// RefreshInactivity is how long a refresh token lives unused.
	RefreshInactivity time.Duration
	// DefaultMaxAge is the maximum authorization age for mailboxes that set
	// none (0: until revoked).
	DefaultMaxAge time.Duration
	// WarnLead is how long before a deadline a mailbox shows as expiring.
	WarnLead time.Duration
}

// Microsoft returns Microsoft 365 with tenant ("common", "organizations"
// or a tenant id; default "organizations") at authority (default
// MicrosoftAuthority; a sovereign cloud or the stand-in's URL otherwise).
func Microsoft(tenant, authority string) Provider {
	if tenant == "" {
		tenant = "organizations"
	}
	authority = strings.TrimSuffix(authority, "/")
	userinfo := "https://graph.microsoft.com/oidc/userinfo"
	graph := MicrosoftGraphURL
	if authority == "" {
		authority = MicrosoftAuthority
	} else if g, ok := sovereignGraph[authority]; ok {
		graph = g
	} else if authority != MicrosoftAuthority {
		userinfo = authority + "/oidc/userinfo" // the stand-in serves it here
		graph = authority + "/graph/v1.0"       // and its stand-in Graph here
	}
	return Provider{
		Name:              "microsoft",
		Kind:              KindMicrosoft,
		AuthURL:           authority + "/" + tenant + "/oauth2/v2.0/authorize",
		TokenURL:          authority + "/" + tenant + "/oauth2/v2.0/token",
		UserinfoURL:       userinfo,
		Scopes:            append([]string(nil), MicrosoftScopes...),
		IMAPHost:          "outlook.office365.com",
		IMAPPort:          993,
		SMTPHost:          "smtp.office365.com",
		SMTPPort:          587,
		GraphURL:          graph,
		RefreshInactivity: MicrosoftRefreshInactivity,
		DefaultMaxAge:     MicrosoftDefaultMaxAge,
		WarnLead:          DefaultWarnLead,
	}
}

// sovereignGraph is the Graph endpoint of each national cloud's sign-in
// authority (learn.microsoft.com/graph/deployments).
var sovereignGraph = map[string]string{
	"https://login.microsoftonline.us": "https://graph.microsoft.us/v1.0",
	"https://login.chinacloudapi.cn":   "https://microsoftgraph.chinacloudapi.cn/v1.0",
}

// Google returns Gmail / Google Workspace for a published app (refresh
// tokens live 6 months unused).
func Google() Provider {
	return Provider{
		Name:              "google",
		Kind:              KindGoogle,
		AuthURL:           "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL:          "https://oauth2.googleapis.com/token",
		UserinfoURL:       "https://openidconnect.googleapis.com/v1/userinfo",
		Scopes:            append([]string(nil), GoogleScopes...),
		IMAPHost:          "imap.gmail.com",
		IMAPPort:          993,
		SMTPHost:          "smtp.gmail.com",
		SMTPPort:          587,
		RefreshInactivity: GoogleRefreshInactivity,
		WarnLead:          DefaultWarnLead,
	}
}

// GoogleTesting is Google for an app whose consent screen is in "testing":
// its refresh tokens die after 7 days whatever happens.
func GoogleTesting() Provider {
	p := Google()
	p.Name = "google-testing"
	p.RefreshInactivity = GoogleTestingRefreshInactivity
	p.DefaultMaxAge = GoogleTestingRefreshInactivity
	return p
}

// Generic returns a provider from explicit endpoints; set the mail hosts,
// client and lifetimes on the result.
func Generic(name, authURL, tokenURL, userinfoURL string, scopes []string) Provider {
	return Provider{
		Name: name, Kind: KindGeneric,
		AuthURL: authURL, TokenURL: tokenURL, UserinfoURL: userinfoURL,
		Scopes:   append([]string(nil), scopes...),
		IMAPPort: 993, SMTPPort: 587,
		WarnLead: DefaultWarnLead,
	}
}

// Config configures a Service.
type Config struct {
	DB    *store.DB
	Vault *store.Vault
	// Providers by Name; DefaultProvider is used for mailboxes that chose
	// none (default: the first).
	Providers       []Provider
	DefaultProvider string
	// RedirectURL is Postdesk's callback, registered with every provider.
	RedirectURL string
	HTTPClient  *http.Client     // nil: http.DefaultClient with a 30 s timeout
	Now         func() time.Time // nil: time.Now
	Logger      *slog.Logger
	// StateLifetime is how long a sign-in may take (default 10 minutes).
	StateLifetime time.Duration
	// RefreshAhead is how long before expiry an access token is renewed
	// (default 5 minutes), at most a fifth of the token's lifetime.
	RefreshAhead time.Duration
	// Retry paces the attempts of one refresh that fails temporarily
	// (default 3 attempts, 1 s doubling to 30 s, jittered).
	Retry Backoff
	// Sleep waits between attempts (nil: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// OnAuthorized runs in the transaction that records a completed sign-in
	// (Connect or Reauthenticate): the outbox releases the mailbox's held
	// replies there and wakes its sender. Nil: nothing.
	OnAuthorized func(ctx context.Context, tx *store.Tx, mailboxID int64) error
	// GraphHTTP sends Microsoft Graph requests (nil: msgraph's default);
	// GraphTune adjusts each mailbox's Graph client as it is made (tests:
	// back-off hooks).
	GraphHTTP *http.Client
	GraphTune func(c *msgraph.Client)
}

// Service is the OAuth side of every mailbox. Safe for concurrent use.
type Service struct {
	cfg       Config
	db        *store.DB
	vault     *store.Vault
	providers map[string]Provider
	log       *slog.Logger
	now       func() time.Time
	refreshes singleflight.Group
	owner     string // this Service's name on refresh leases

	closeMu  sync.Mutex
	closing  bool
	closed   chan struct{} // closed by Close
	inflight sync.WaitGroup
	flying   map[int64]int // refreshes in flight by mailbox

	tempMu    sync.Mutex
	tempFails map[int64]int // consecutive temporary refresh failures

	graphMu sync.Mutex
	graph   map[graphKey]*msgraph.Client // one per mailbox (GraphClient)
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Vault == nil {
		return nil, errors.New("oauth: a database and a vault are required")
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("oauth: no provider configured")
	}
	s := &Service{cfg: cfg, db: cfg.DB, vault: cfg.Vault, providers: map[string]Provider{}, tempFails: map[int64]int{}, log: cfg.Logger, now: cfg.Now,
		owner: leaseOwner(), closed: make(chan struct{}), flying: map[int64]int{}, graph: map[graphKey]*msgraph.Client{}}
	for _, p := range cfg.Providers {
		if p.Name == "" || p.AuthURL == "" || p.TokenURL == "" || p.ClientID == "" {
			return nil, fmt.Errorf("oauth: provider %q needs a name, authorization and token URLs and a client ID", p.Name)
		}
		if _, dup := s.providers[p.Name]; dup {
			return nil, fmt.Errorf("oauth: provider %q is configured twice", p.Name)
		}
		if p.WarnLead == 0 {
			p.WarnLead = DefaultWarnLead
		}
		s.providers[p.Name] = p
	}
	if s.cfg.DefaultProvider == "" {
		s.cfg.DefaultProvider = cfg.Providers[0].Name
	}
	if _, ok := s.providers[s.cfg.DefaultProvider]; !ok {
		return nil, fmt.Errorf("oauth: default provider %q is not configured", s.cfg.DefaultProvider)
	}
	if cfg.RedirectURL == "" {
		return nil, errors.New("oauth: the redirect URL is not set")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.HTTPClient == nil {
		s.cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if s.cfg.StateLifetime <= 0 {
		s.cfg.StateLifetime = 10 * time.Minute
	}
	if s.cfg.RefreshAhead <= 0 {
		s.cfg.RefreshAhead = 5 * time.Minute
	}
	if s.cfg.Retry.Attempts == 0 {
		s.cfg.Retry = DefaultBackoff
	}
	if s.cfg.Sleep == nil {
		s.cfg.Sleep = sleepCtx
	}
	return s, nil
}

// leaseOwner names this Service on refresh leases: host, process and a
// random part (two Services in one process are two owners).
func leaseOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Provider returns a configured provider by name.
func (s *Service) Provider(name string) (Provider, bool) {
	p, ok := s.providers[name]
	return p, ok
}

// providerFor returns the provider of a mailbox's row ("" : the default).
func (s *Service) providerFor(name string) (Provider, error) {
	if name == "" {
		name = s.cfg.DefaultProvider
	}
	p, ok := s.providers[name]
	if !ok {
		return Provider{}, fmt.Errorf("oauth provider %q is not configured (was it removed from the settings?)", name)
	}
	return p, nil
}

// utcNow is the injected clock in UTC, at millisecond precision (as stored).
func (s *Service) utcNow() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Providers lists the configured providers in configuration order.
func (s *Service) Providers() []Provider {
	out := make([]Provider, 0, len(s.cfg.Providers))
	for _, p := range s.cfg.Providers {
		out = append(out, s.providers[p.Name])
	}
	return out
}
