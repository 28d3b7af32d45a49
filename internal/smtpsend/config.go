package smtpsend

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Security is how the connection to the server is protected.
type Security string

const (
	// SecurityTLS is implicit TLS, usually port 465 (RFC 8314 3.3).
	SecurityTLS Security = "tls"
	// SecurityStartTLS upgrades a plain connection, usually port 587, with
	// STARTTLS (RFC 3207); a server that does not offer it is a KindConfig
	// error, never a fallback to clear text.
	SecurityStartTLS Security = "starttls"
	// SecurityNone sends everything in clear text. It is allowed only to a
	// loopback address (tests, the demo's embedded server); to any other
	// address Dial refuses with KindConfig before dialling.
	SecurityNone Security = "none"
)

// AuthMethod is how the connection authenticates (RFC 4954 AUTH).
type AuthMethod string

const (
	AuthXOAuth2     AuthMethod = "xoauth2"     // SASL XOAUTH2 with Config.Token (Microsoft, Google)
	AuthOAuthBearer AuthMethod = "oauthbearer" // SASL OAUTHBEARER, RFC 7628, with Config.Token
	AuthPlain       AuthMethod = "plain"       // SASL PLAIN, RFC 4616, with Config.Password
	AuthLogin       AuthMethod = "login"       // SASL LOGIN (draft-murchison-sasl-login), with Config.Password
)

// Defaults of the zero Config fields.
const (
	DefaultLocalName      = "localhost"
	DefaultCommandTimeout = time.Minute
	// DataEndTimeout bounds the wait for the reply to the end of the data
	// (RFC 5321 4.5.3.2.6: "DATA Termination: 10 minutes").
	DataEndTimeout = 10 * time.Minute
)

// Config describes how to submit mail for one mailbox. Addr, Username, Auth
// and the matching credential function are required.
type Config struct {
	Addr string // host:port
	// Security defaults to SecurityTLS on port 465 and SecurityStartTLS on
	// any other port.
	Security  Security
	TLSConfig *tls.Config // nil: system roots; ServerName defaults to Addr's host

	// Username is the mailbox address; XOAUTH2 sends it as "user=" and
	// OAUTHBEARER as the authzid.
	Username string
	Auth     AuthMethod
	// Token returns a valid access token (xoauth2, oauthbearer).
	Token func(ctx context.Context) (string, error)
	// RefreshToken returns a new access token after the server refused the
	// one Token gave (it should not return a cached token). It is called at
	// most once per Dial; nil means no retry.
	RefreshToken func(ctx context.Context) (string, error)
	// Password returns the password (plain, login).
	Password func(ctx context.Context) (string, error)

	// LocalName is the name sent with EHLO; default DefaultLocalName.
	LocalName string
	// CommandTimeout bounds the wait for each reply (and each 64 KiB of the
	// message written); default DefaultCommandTimeout. The reply to the end
	// of the data is awaited up to DataEndTimeout.
	CommandTimeout time.Duration

	// Logger receives the connection's logs; give it the mailbox's id
	// (Logger.With("mailbox_id", id)). Nil discards them. Nothing logged
	// contains a token, password or message content.
	Logger *slog.Logger

	// dial replaces the TCP dialler in tests.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// normalize validates c and fills in the defaults. It never touches the
// network: a SecurityNone address that is not loopback is refused here.
func (c Config) normalize() (Config, error) {
	cfgErr := func(format string, args ...any) (Config, error) {
		return c, &Error{Kind: KindConfig, Stage: StageConnect, Err: fmt.Errorf(format, args...)}
	}
	if c.Addr == "" {
		return cfgErr("no server address")
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return cfgErr("server address %q: %w", c.Addr, err)
	}
	if c.Username == "" {
		return cfgErr("no username")
	}
	switch c.Security {
	case "":
		c.Security = SecurityStartTLS
		if port == "465" {
			c.Security = SecurityTLS
		}
	case SecurityTLS, SecurityStartTLS:
	case SecurityNone:
		if !isLoopback(host) {
			return cfgErr("security %q (clear text) is allowed only to a loopback address, not %s", c.Security, host)
		}
	default:
		return cfgErr("unknown security %q", c.Security)
	}
	switch c.Auth {
	case AuthXOAuth2, AuthOAuthBearer:
		if c.Token == nil {
			return cfgErr("auth %s needs a Token function", c.Auth)
		}
	case AuthPlain, AuthLogin:
		if c.Password == nil {
			return cfgErr("auth %s needs a Password function", c.Auth)
		}
	default:
		return cfgErr("unknown auth method %q", c.Auth)
	}
	if c.LocalName == "" {
		c.LocalName = DefaultLocalName
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.dial == nil {
		d := &net.Dialer{Timeout: c.CommandTimeout}
		c.dial = d.DialContext
	}
	return c, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP literal.
// A name other than localhost is not resolved: its address could change
// between this check and the dial.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsConfig returns the TLS configuration for host: a clone of TLSConfig
// with ServerName set and at least TLS 1.2.
func (c *Config) tlsConfig(host string) *tls.Config {
	tc := &tls.Config{}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}
