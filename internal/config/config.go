// Package config declares every Postdesk setting once: its flag, its
// POSTDESK_* environment variable, its default, its documentation and
// whether it is secret. A flag given on the command line wins over the
// environment, which wins over the default. Load validates everything at
// start so that a wrong setting is a clear error, not a surprise later.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration.
type Config struct {
	DataDir     string
	DatabaseURL string
	Listen      string
	BaseURL     *url.URL
	// BaseURLFromListen: no base URL was given, and BaseURL is made from
	// Listen (serve makes it again from the port it got, for port 0).
	BaseURLFromListen bool
	LogLevel          slog.Level
	LogFormat         string
	SupportAddresses  []string
	SessionTTL        time.Duration
	SecretKey         string
	// SecretsLost starts serve although no stored secret opens with the
	// key (it is lost for good): each mailbox needs its password or
	// sign-in again.
	SecretsLost bool

	// Mailbox authorization providers; a provider is enabled by its client ID.
	MicrosoftClientID     string
	MicrosoftClientSecret string
	MicrosoftTenant       string
	MicrosoftAuthority    string
	MicrosoftMaxAge       time.Duration
	GoogleClientID        string
	GoogleClientSecret    string
	GoogleTesting         bool
	WarnLead              time.Duration
	// Generic is any other OAuth 2.0 provider (enabled by its client ID).
	Generic GenericProvider
	// OAuthAllowedHosts are mail hosts trusted with every provider's tokens
	// besides the provider's own IMAP and SMTP servers.
	OAuthAllowedHosts []string
	// MetricsToken, when set, lets /metrics answer requests that send it
	// as a bearer token; MetricsAddr serves /metrics on its own address.
	MetricsToken string
	MetricsAddr  string
	// SyncOwner names this process in mailbox sync leases (default: host/listen address).
	SyncOwner string
	// GraphPoll is how often a mailbox fetched through Microsoft Graph asks
	// for changes.
	GraphPoll time.Duration
	// SyncConnectRate bounds the IMAP logins per second of this process's
	// mail sync (0: no bound): its sessions start and reconnect spread out.
	SyncConnectRate int
	// SigninConcurrency is how many passwords are checked at once (0: automatic).
	SigninConcurrency int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// AssignOnReply: a reply to a ticket nobody owns assigns it to the agent who replied.
	AssignOnReply bool
	// NotifyWindow is how long an agent's notifications are gathered into
	// one email; NotifyMailbox, when set, is the address of the mailbox
	// that sends every notification while it is healthy.
	NotifyWindow  time.Duration
	NotifyMailbox string
	// WebhookAllowPrivate lets webhooks reach private, loopback and
	// link-local addresses (refused by default: server-side request forgery).
	WebhookAllowPrivate bool
}

// GenericProvider is an OAuth 2.0 provider described by its endpoints.
type GenericProvider struct {
	Name, AuthURL, TokenURL, UserinfoURL string
	Scopes                               []string
	ClientID, ClientSecret               string
	IMAPHost, SMTPHost                   string
	IMAPPort, SMTPPort                   int
	RefreshInactivity, MaxAge            time.Duration
}

// option is one setting.
type option struct {
	name   string // flag name; the variable is POSTDESK_ + upper snake case
	def    string
	doc    string
	secret bool
	set    func(c *Config, v string) error
}

// Env is the environment variable of a flag name.
func Env(name string) string {
	return "POSTDESK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ProviderEnvs are the variables that hold an OAuth provider's client ID
// and client secret, by the provider's name as Postdesk configures it
// ("microsoft", "google", "google-testing", or the generic provider's).
func ProviderEnvs(provider string) (clientID, clientSecret string) {
	prefix := "oauth"
	switch provider {
	case "", "microsoft":
		prefix = "microsoft"
	case "google", "google-testing": // one client; POSTDESK_GOOGLE_TESTING only marks it
		prefix = "google"
	}
	return Env(prefix + "-client-id"), Env(prefix + "-client-secret")
}

func options() []option {
	return []option{
		{name: "data", def: "./data", doc: "folder for the SQLite database, attachments and raw messages, and the secret key file",
			set: func(c *Config, v string) error {
				if v == "" {
					return errors.New("must not be empty")
				}
				c.DataDir = v
				return nil
			}},
		{name: "database-url", doc: "PostgreSQL URL (postgres://user:pass@host/db); empty uses SQLite in the data folder", secret: true,
			set: func(c *Config, v string) error {
				if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
					return errors.New("must start with postgres:// or be empty for SQLite")
				}
				c.DatabaseURL = v
				return nil
			}},
		{name: "listen", def: "127.0.0.1:8080", doc: "address the web server listens on",
			set: func(c *Config, v string) error {
				if err := CheckListen(v); err != nil {
					return err
				}
				c.Listen = v
				return nil
			}},
		{name: "base-url", doc: "the address agents use to reach Postdesk (links, secure cookies, OAuth redirects); empty: http:// and the listen address (localhost when it is every interface's)",
			set: func(c *Config, v string) error {
				if v == "" {
					return nil // made from the listen address below
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return errors.New("must be an absolute http:// or https:// URL")
				}
				u.Path = strings.TrimRight(u.Path, "/")
				c.BaseURL = u
				return nil
			}},
		{name: "log-level", def: "info", doc: "debug, info, warn or error",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "debug", "info", "warn", "error":
					return c.LogLevel.UnmarshalText([]byte(v))
				}
				return fmt.Errorf("%q is not a level: must be debug, info, warn or error", v)
			}},
		{name: "log-format", def: "text", doc: "text or json",
			set: func(c *Config, v string) error {
				if v != "text" && v != "json" {
					return errors.New("must be text or json")
				}
				c.LogFormat = v
				return nil
			}},
		{name: "support-addresses", doc: "comma-separated extra addresses of ours (besides the mailboxes): mail from them is never a customer's",
			set: func(c *Config, v string) error {
				c.SupportAddresses = nil
				for _, a := range strings.Split(v, ",") {
					a = strings.ToLower(strings.TrimSpace(a))
					if a == "" {
						continue
					}
					if !strings.Contains(a, "@") {
						return fmt.Errorf("%q is not an email address", a)
					}
					c.SupportAddresses = append(c.SupportAddresses, a)
				}
				return nil
			}},
		{name: "session-ttl", def: "336h", doc: "how long an idle sign-in lasts",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Minute {
					return errors.New("must be a duration of at least 1m, like 336h")
				}
				c.SessionTTL = d
				return nil
			}},
		{name: "secret-key", doc: "base64 32-byte key sealing tokens and passwords; empty uses (and creates) secret.key in the data folder", secret: true,
			set: func(c *Config, v string) error { c.SecretKey = v; return nil }},
		{name: "secrets-lost", def: "false", doc: "start although no stored secret opens with the secret key, because the key they were sealed with is lost for good: each mailbox then needs its password or sign-in again (without it, serve refuses to start with a key that opens none of them)",
			set: func(c *Config, v string) error { return boolean(&c.SecretsLost, v) }},
		{name: "microsoft-client-id", doc: "application (client) ID of the Entra app registration; enables Microsoft 365 mailboxes",
			set: func(c *Config, v string) error { c.MicrosoftClientID = strings.TrimSpace(v); return nil }},
		{name: "microsoft-client-secret", doc: "client secret of the Entra app registration", secret: true,
			set: func(c *Config, v string) error { c.MicrosoftClientSecret = v; return nil }},
		{name: "microsoft-tenant", def: "organizations", doc: "common, organizations, or a tenant ID or domain",
			set: func(c *Config, v string) error {
				if v == "" || strings.ContainsAny(v, "/?#") {
					return errors.New("must be common, organizations, or a tenant ID or domain")
				}
				c.MicrosoftTenant = v
				return nil
			}},
		{name: "microsoft-authority", def: "https://login.microsoftonline.com", doc: "sign-in authority (a sovereign cloud, or the stand-in's URL for the demo)",
			set: func(c *Config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return errors.New("must be an absolute https:// URL")
				}
				c.MicrosoftAuthority = strings.TrimRight(v, "/")
				return nil
			}},
		{name: "microsoft-max-age", def: "2160h", doc: "how long a Microsoft sign-in counts as valid before admins must reauthenticate (0 = until revoked); per mailbox overridable",
			set: func(c *Config, v string) error { return duration(&c.MicrosoftMaxAge, v, 0) }},
		{name: "google-client-id", doc: "OAuth client ID of the Google Cloud project; enables Gmail / Google Workspace mailboxes",
			set: func(c *Config, v string) error { c.GoogleClientID = strings.TrimSpace(v); return nil }},
		{name: "google-client-secret", doc: "OAuth client secret of the Google Cloud project", secret: true,
			set: func(c *Config, v string) error { c.GoogleClientSecret = v; return nil }},
		{name: "google-testing", def: "false", doc: "the Google app's consent screen is in testing (refresh tokens die after 7 days)",
			set: func(c *Config, v string) error {
				return boolean(&c.GoogleTesting, v)
			}},
		{name: "oauth-name", def: "oauth", doc: "name of the generic OAuth 2.0 provider (as admins pick it for a mailbox)",
			set: func(c *Config, v string) error {
				if v == "" || strings.ContainsAny(v, " /") || v == "microsoft" || v == "google" || v == "google-testing" || v == "password" {
					return errors.New("must be a short name other than microsoft, google, google-testing or password")
				}
				c.Generic.Name = v
				return nil
			}},
		{name: "oauth-client-id", doc: "client ID at a generic OAuth 2.0 provider; enables it (needs --oauth-auth-url and --oauth-token-url)",
			set: func(c *Config, v string) error { c.Generic.ClientID = strings.TrimSpace(v); return nil }},
		{name: "oauth-client-secret", doc: "client secret at the generic OAuth 2.0 provider", secret: true,
			set: func(c *Config, v string) error { c.Generic.ClientSecret = v; return nil }},
		{name: "oauth-auth-url", doc: "the generic provider's authorization endpoint",
			set: func(c *Config, v string) error { return optionalURL(&c.Generic.AuthURL, v) }},
		{name: "oauth-token-url", doc: "the generic provider's token endpoint",
			set: func(c *Config, v string) error { return optionalURL(&c.Generic.TokenURL, v) }},
		{name: "oauth-userinfo-url", doc: "the generic provider's OpenID userinfo endpoint (to learn who signed in)",
			set: func(c *Config, v string) error { return optionalURL(&c.Generic.UserinfoURL, v) }},
		{name: "oauth-scopes", def: "openid email offline_access", doc: "space-separated scopes to ask the generic provider for",
			set: func(c *Config, v string) error { c.Generic.Scopes = strings.Fields(v); return nil }},
		{name: "oauth-imap", doc: "the generic provider's IMAP server, host:port (TLS)",
			set: func(c *Config, v string) error { return optionalHostPort(&c.Generic.IMAPHost, &c.Generic.IMAPPort, v) }},
		{name: "oauth-smtp", doc: "the generic provider's SMTP server, host:port (STARTTLS)",
			set: func(c *Config, v string) error { return optionalHostPort(&c.Generic.SMTPHost, &c.Generic.SMTPPort, v) }},
		{name: "oauth-refresh-inactivity", def: "0s", doc: "how long the generic provider's refresh tokens live unused (0: unknown, no such deadline)",
			set: func(c *Config, v string) error { return duration(&c.Generic.RefreshInactivity, v, 0) }},
		{name: "oauth-max-age", def: "0s", doc: "maximum sign-in age at the generic provider before admins must reauthenticate (0: until revoked)",
			set: func(c *Config, v string) error { return duration(&c.Generic.MaxAge, v, 0) }},
		{name: "oauth-allowed-hosts", doc: "comma-separated mail hosts (besides each OAuth provider's own IMAP and SMTP servers) that may receive mailboxes' OAuth tokens",
			set: func(c *Config, v string) error {
				c.OAuthAllowedHosts = nil
				for _, h := range strings.Split(v, ",") {
					h = strings.ToLower(strings.TrimSpace(h))
					if h == "" {
						continue
					}
					if strings.ContainsAny(h, " /@:") && net.ParseIP(strings.Trim(h, "[]")) == nil {
						return fmt.Errorf("%q is not a host name (give hosts without ports)", h)
					}
					c.OAuthAllowedHosts = append(c.OAuthAllowedHosts, h)
				}
				return nil
			}},
		{name: "metrics-token", doc: "bearer token that /metrics requires (Authorization: Bearer TOKEN); without it /metrics answers 401 on the web address", secret: true,
			set: func(c *Config, v string) error {
				if v != "" && len(v) < 16 {
					return errors.New("must be at least 16 characters")
				}
				c.MetricsToken = v
				return nil
			}},
		{name: "metrics-addr", doc: "separate host:port serving /metrics only (keep it private; the token, if set, is required there too)",
			set: func(c *Config, v string) error {
				if v == "" {
					c.MetricsAddr = ""
					return nil
				}
				if err := CheckListen(v); err != nil {
					return err
				}
				c.MetricsAddr = v
				return nil
			}},
		{name: "sync-owner", doc: "name of this process in mailbox sync leases (default: host/listen address, stable across restarts)",
			set: func(c *Config, v string) error { c.SyncOwner = v; return nil }},
		{name: "sync-connect-rate", def: "100", doc: "IMAP logins per second at most, so thousands of mailboxes start (and reconnect after the mail server restarts) spread out (0: no bound)",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 100000 {
					return errors.New("must be a number from 0 (no bound) to 100000")
				}
				c.SyncConnectRate = n
				return nil
			}},
		{name: "signin-concurrency", def: "0", doc: "how many sign-in passwords are checked at once, each taking 64 MiB (0: the number of CPUs, at most 2)",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 256 {
					return errors.New("must be a number from 0 (automatic) to 256")
				}
				c.SigninConcurrency = n
				return nil
			}},
		{name: "trusted-proxies", doc: "comma-separated addresses or CIDR ranges of reverse proxies in front of Postdesk, whose X-Forwarded-For names the client (for sign-in limits per IP)",
			set: func(c *Config, v string) error {
				c.TrustedProxies = nil
				for _, f := range strings.Split(v, ",") {
					f = strings.TrimSpace(f)
					if f == "" {
						continue
					}
					p, err := netip.ParsePrefix(f)
					if err != nil {
						a, aerr := netip.ParseAddr(f)
						if aerr != nil {
							return fmt.Errorf("%q is not an IP address or CIDR range", f)
						}
						p = netip.PrefixFrom(a, a.BitLen())
					}
					c.TrustedProxies = append(c.TrustedProxies, p.Masked())
				}
				return nil
			}},
		{name: "assign-on-reply", def: "true", doc: "assign a ticket nobody owns to the agent who replies to it",
			set: func(c *Config, v string) error {
				return boolean(&c.AssignOnReply, v)
			}},
		{name: "graph-poll", def: "30s", doc: "how often a mailbox fetched through Microsoft Graph asks for new mail (a delta query per folder)",
			set: func(c *Config, v string) error { return duration(&c.GraphPoll, v, time.Second) }},
		{name: "notify-window", def: "1m", doc: "how long an agent's email notifications are gathered into one email (a digest when several arrive)",
			set: func(c *Config, v string) error { return duration(&c.NotifyWindow, v, time.Second) }},
		{name: "notify-mailbox", doc: "address of the mailbox that sends notifications to agents and admins while it is healthy (default: the ticket's own mailbox, else any healthy one)",
			set: func(c *Config, v string) error {
				v = strings.ToLower(strings.TrimSpace(v))
				if v != "" && !strings.Contains(v, "@") {
					return fmt.Errorf("%q is not an email address", v)
				}
				c.NotifyMailbox = v
				return nil
			}},
		{name: "webhook-allow-private", def: "false", doc: "let webhooks reach private, loopback and link-local addresses (a receiver inside your network; refused by default)",
			set: func(c *Config, v string) error {
				return boolean(&c.WebhookAllowPrivate, v)
			}},
		{name: "warn-lead", def: "240h", doc: "how long before a mailbox's authorization runs out admins are warned",
			set: func(c *Config, v string) error { return duration(&c.WarnLead, v, time.Hour) }},
	}
}

func optionalURL(dst *string, v string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute https:// URL")
	}
	*dst = v
	return nil
}

// ListenURL is the http URL of a listen address: localhost for an
// address of every interface (":8080", "0.0.0.0:8080", "[::]:8080").
func ListenURL(listen string) *url.URL {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return &url.URL{Scheme: "http", Host: listen}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}
}

// CheckListen checks an address to listen on: host:port (host may be
// empty: every address), the port a number from 0 to 65535 (0: any free
// port), so a wrong one is named when settings are read rather than when
// the listener fails.
func CheckListen(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be host:port, such as 127.0.0.1:8080: %v", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535 (0: any free port)", port)
	}
	return nil
}

// boolean reads true or false (and 1, 0, t, f as strconv.ParseBool does).
func boolean(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q must be true or false", v)
	}
	*dst = b
	return nil
}

func optionalHostPort(host *string, port *int, v string) error {
	if v == "" {
		return nil
	}
	h, p, err := net.SplitHostPort(v)
	if err != nil || h == "" {
		return errors.New("must be host:port, such as imap.example.com:993")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 1 to 65535", p)
	}
	*host, *port = h, n
	return nil
}

// duration parses a Go duration of at least least (0 allowed when least is 0).
func duration(dst *time.Duration, v string, least time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < least || d < 0 {
		return fmt.Errorf("must be a duration of at least %s, like 240h", least)
	}
	*dst = d
	return nil
}

// Flags declares every option on fs and returns a function that, after
// fs.Parse, resolves and validates the configuration from the flags set,
// then env, then defaults.
func Flags(fs *flag.FlagSet, env func(string) string) func() (*Config, error) {
	opts := options()
	values := make([]*string, len(opts))
	for i, o := range opts {
		doc := o.doc + " (env " + Env(o.name)
		if o.secret {
			doc += ", secret"
		}
		doc += ")"
		values[i] = fs.String(o.name, o.def, doc)
	}
	return func() (*Config, error) {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		c := &Config{}
		var errs []error
		for i, o := range opts {
			v, source := *values[i], "--"+o.name
			if !given[o.name] {
				if e := env(Env(o.name)); e != "" {
					v, source = e, Env(o.name)
				}
			}
			if err := o.set(c, v); err != nil {
				shown := strconv.Quote(v)
				if o.secret {
					shown = "(secret)"
				}
				errs = append(errs, fmt.Errorf("%s %s: %v", source, shown, err))
			}
		}
		if c.BaseURL == nil && c.Listen != "" {
			c.BaseURL, c.BaseURLFromListen = ListenURL(c.Listen), true
		}
		if g := c.Generic; g.ClientID != "" && (g.AuthURL == "" || g.TokenURL == "" || g.IMAPHost == "") {
			errs = append(errs, errors.New("--oauth-client-id: a generic OAuth provider also needs --oauth-auth-url, --oauth-token-url and --oauth-imap"))
		}
		if c.MicrosoftClientSecret != "" && c.MicrosoftClientID == "" {
			errs = append(errs, errors.New("--microsoft-client-secret is set but --microsoft-client-id is not"))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
		return c, nil
	}
}

// Logger builds the process's logger from the configuration.
func (c *Config) Logger(w interface{ Write([]byte) (int, error) }) *slog.Logger {
	ho := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
