package smtpsend

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailconn"
)

// Security is how the connection to the server is protected: implicit TLS
// (usually port 465), STARTTLS (usually 587; a server that does not offer it
// is a KindConfig error, never a fallback to clear text), or clear text,
// which Dial refuses with KindConfig before dialling unless the server is on
// this machine (mailconn.Check).
type Security = mailconn.Security

// The Security settings.
const (
	SecurityTLS      = mailconn.SecurityTLS
	SecurityStartTLS = mailconn.SecurityStartTLS
	SecurityNone     = mailconn.SecurityNone
)

// AuthMethod is how the connection authenticates (RFC 4954 AUTH): XOAUTH2
// and OAUTHBEARER with Config.Token, PLAIN and LOGIN with Config.Password.
type AuthMethod = mailconn.AuthMethod

// The AuthMethod settings.
const (
	AuthXOAuth2     = mailconn.AuthXOAuth2
	AuthOAuthBearer = mailconn.AuthOAuthBearer
	AuthPlain       = mailconn.AuthPlain
	AuthLogin       = mailconn.AuthLogin
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
	// Resolver looks up Addr's host (nil: the system's resolver); tests
	// give one that never leaves the machine.
	Resolver *net.Resolver

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
	default:
		if err := mailconn.Check(c.Security, host); err != nil {
			return cfgErr("%w", err)
		}
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
	if strings.ContainsFunc(c.LocalName, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return cfgErr("EHLO name %q: not a domain or address literal (RFC 5321 4.1.1.1)", c.LocalName)
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.dial == nil {
		d := &net.Dialer{Timeout: c.CommandTimeout, Resolver: c.Resolver}
		c.dial = d.DialContext
	}
	return c, nil
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
