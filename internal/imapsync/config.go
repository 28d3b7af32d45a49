package imapsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailconn"
)

// Security is how the connection to the server is protected: implicit TLS
// (usually port 993), STARTTLS (usually 143; a server that does not offer it
// is an error), or clear text, allowed only to this machine (mailconn.Check).
type Security = mailconn.Security

// The Security settings.
const (
	SecurityTLS      = mailconn.SecurityTLS
	SecurityStartTLS = mailconn.SecurityStartTLS
	SecurityNone     = mailconn.SecurityNone
)

// AuthMethod is how the session authenticates: XOAUTH2 and OAUTHBEARER with
// Config.Token, SASL PLAIN and the IMAP LOGIN command with Config.Password.
type AuthMethod = mailconn.AuthMethod

// The AuthMethod settings.
const (
	AuthXOAuth2     = mailconn.AuthXOAuth2
	AuthOAuthBearer = mailconn.AuthOAuthBearer
	AuthPlain       = mailconn.AuthPlain
	AuthLogin       = mailconn.AuthLogin
)

// Action is what happens to a message on the server once Store.Handle
// committed it.
type Action string

const (
	// ActionLeave leaves the message untouched; folders are opened read-only
	// with EXAMINE (RFC 9051 6.3.3), so not even \Recent changes.
	ActionLeave Action = "leave"
	// ActionSeen sets \Seen (UID STORE +FLAGS.SILENT, RFC 9051 6.4.6).
	ActionSeen Action = "seen"
	// ActionMove moves the message to Config.MoveTo: UID MOVE (RFC 6851)
	// when the server has it, else UID COPY + \Deleted + UID EXPUNGE
	// (RFC 4315 2.1), else the message is left with a logged warning.
	ActionMove Action = "move"
)

// Defaults of the zero Config fields.
const (
	DefaultMaxAge          = 90 * 24 * time.Hour
	DefaultMaxMessageBytes = 50 << 20
	DefaultIdleRestart     = 25 * time.Minute
	DefaultPollInterval    = time.Minute
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 5 * time.Minute
)

// Config describes one mailbox. Only Addr, Username, Auth and the matching
// credential function are required.
type Config struct {
	Addr      string      // host:port
	Security  Security    // default SecurityTLS
	TLSConfig *tls.Config // nil: system roots; ServerName defaults to Addr's host
	// Resolver looks up Addr's host (nil: the system's resolver); tests
	// give one that never leaves the machine.
	Resolver *net.Resolver

	// Username is the mailbox address; XOAUTH2 sends it as "user=" and
	// OAUTHBEARER as the authzid, also for a shared mailbox.
	Username string
	Auth     AuthMethod
	// Token returns a valid access token (xoauth2, oauthbearer).
	Token func(ctx context.Context) (string, error)
	// RefreshToken returns a new access token after the server refused the
	// one Token gave (it should not return a cached token). It is called at
	// most once per connection attempt; nil means no retry.
	RefreshToken func(ctx context.Context) (string, error)
	// Password returns the password (plain, login).
	Password func(ctx context.Context) (string, error)

	// Folders to sync; default ["INBOX"]. With IDLE the first one is watched
	// and the others are synced at every PollInterval.
	Folders []string
	// InitialDays: on the first connect to a folder (no checkpoint), import
	// messages of the last InitialDays days; 0 imports only new mail.
	InitialDays int
	// MaxAge limits a catch-up: a message above the checkpoint whose
	// INTERNALDATE is older is not fetched but reported with Store.Skipped.
	// Zero means DefaultMaxAge; negative means no limit.
	MaxAge time.Duration
	// MaxMessageBytes: a larger message (RFC822.SIZE) is handed over with
	// its header only and Truncated set. Zero means DefaultMaxMessageBytes;
	// negative means no limit.
	MaxMessageBytes int64

	// IdleRestart ends and restarts IDLE (and syncs once more) after this
	// long; RFC 2177 3 warns that servers may log out an idle client after
	// 30 minutes. Zero means DefaultIdleRestart.
	IdleRestart time.Duration
	// PollInterval is the time between syncs without IDLE. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// NoIdle polls even when the server has IDLE.
	NoIdle bool

	AfterProcessing Action // default ActionLeave
	MoveTo          string // the folder of ActionMove

	// BackoffMin and BackoffMax bound Run's jittered exponential wait
	// between connection attempts. Zero means DefaultBackoffMin/Max.
	BackoffMin, BackoffMax time.Duration

	// Pace, if set, is called before each connection attempt and may
	// wait: the caller spreads many mailboxes' logins over time (no
	// thundering herd at start or after the server restarts). Its error
	// (the context ending) ends Run.
	Pace func(ctx context.Context) error

	// Logger receives the session's logs; give it the mailbox's id
	// (Logger.With("mailbox_id", id)). Nil discards them.
	Logger *slog.Logger
}

// normalize validates c and fills in the defaults.
func (c Config) normalize() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("imapsync: config: no server address")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return c, fmt.Errorf("imapsync: config: address %q: %w", c.Addr, err)
	}
	if c.Username == "" {
		return c, errors.New("imapsync: config: no username")
	}
	switch c.Security {
	case "":
		c.Security = SecurityTLS
	default:
		if err := mailconn.Check(c.Security, host); err != nil {
			return c, fmt.Errorf("imapsync: config: %w", err)
		}
	}
	switch c.Auth {
	case AuthXOAuth2, AuthOAuthBearer:
		if c.Token == nil {
			return c, fmt.Errorf("imapsync: config: auth %s needs a Token function", c.Auth)
		}
	case AuthPlain, AuthLogin:
		if c.Password == nil {
			return c, fmt.Errorf("imapsync: config: auth %s needs a Password function", c.Auth)
		}
	default:
		return c, fmt.Errorf("imapsync: config: unknown auth method %q", c.Auth)
	}
	if len(c.Folders) == 0 {
		c.Folders = []string{"INBOX"}
	}
	switch c.AfterProcessing {
	case "":
		c.AfterProcessing = ActionLeave
	case ActionLeave, ActionSeen:
	case ActionMove:
		if c.MoveTo == "" {
			return c, errors.New("imapsync: config: after-processing move needs a MoveTo folder")
		}
		for _, f := range c.Folders {
			if strings.EqualFold(f, c.MoveTo) {
				return c, fmt.Errorf("imapsync: config: MoveTo %q is also a synced folder", c.MoveTo)
			}
		}
	default:
		return c, fmt.Errorf("imapsync: config: unknown after-processing action %q", c.AfterProcessing)
	}
	if c.InitialDays < 0 {
		return c, errors.New("imapsync: config: negative InitialDays")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	def(&c.IdleRestart, DefaultIdleRestart)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
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
