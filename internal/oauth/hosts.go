package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// A mailbox's access token is a bearer credential: whoever receives it can
// read the mailbox. It is sent only to the provider's own mail servers
// (Provider.IMAPHost and SMTPHost) or to hosts the server's configuration
// trusts (Provider.MailHosts). desk refuses any other host when an admin
// sets one, and the sync asks for tokens through HostTokenFunc, which
// checks the host it is about to send them to once more.

// NormalizeHost is the form in which mail hosts are compared and stored:
// lower case, without surrounding spaces, a trailing dot or IPv6 brackets.
func NormalizeHost(host string) string {
	h := strings.ToLower(strings.TrimSpace(host))
	h = strings.TrimSuffix(h, ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// TrustedHosts lists the hosts p's tokens may be sent to, normalized, in
// the order: IMAP, SMTP, then the configured extra hosts.
func (p Provider) TrustedHosts() []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range append([]string{p.IMAPHost, p.SMTPHost}, p.MailHosts...) {
		if h = NormalizeHost(h); h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// AllowsMailHost reports whether p's tokens may be sent to host.
func (p Provider) AllowsMailHost(host string) bool {
	h := NormalizeHost(host)
	if h == "" {
		return false
	}
	for _, t := range p.TrustedHosts() {
		if t == h {
			return true
		}
	}
	return false
}

// HostError refuses to hand a token for a host the mailbox's provider does
// not trust. Nothing was sent.
type HostError struct {
	MailboxID int64
	Provider  string
	Host      string
}

func (e *HostError) Error() string {
	return fmt.Sprintf("mailbox %d: %s is not a mail server of %s, so its token is not sent there (trusted: the provider's servers and POSTDESK_OAUTH_ALLOWED_HOSTS)",
		e.MailboxID, e.Host, e.Provider)
}

// Is makes a HostError a permanent failure: retrying cannot help until an
// admin changes the mailbox's server or the configuration.
func (e *HostError) Is(target error) bool { return target == ErrHostNotTrusted }

// ErrHostNotTrusted matches every *HostError.
var ErrHostNotTrusted = errors.New("mail host not trusted with the provider's tokens")

// CheckHost returns a *HostError unless the provider of mailboxID trusts host.
func (s *Service) CheckHost(ctx context.Context, mailboxID int64, host string) error {
	a, err := s.db.MailboxAuth(ctx, mailboxID)
	if err != nil {
		return s.readErr(mailboxID, err)
	}
	p, err := s.providerFor(a.Provider)
	if err != nil || !p.AllowsMailHost(host) {
		return &HostError{MailboxID: mailboxID, Provider: a.Provider, Host: NormalizeHost(host)}
	}
	return nil
}

// HostTokenFunc is TokenFunc (fresh: FreshTokenFunc) for a session that
// sends the token to host: every call first checks that the mailbox's
// provider trusts host, and fails with a *HostError otherwise.
func (s *Service) HostTokenFunc(mailboxID int64, host string, fresh bool) func(context.Context) (string, error) {
	get := s.TokenFunc(mailboxID)
	if fresh {
		get = s.FreshTokenFunc(mailboxID)
	}
	return func(ctx context.Context) (string, error) {
		if err := s.CheckHost(ctx, mailboxID, host); err != nil {
			return "", err
		}
		return get(ctx)
	}
}

// ForgetSignIn forgets a mailbox's tokens in the caller's transaction,
// because where they would be sent changed: the refresh and access tokens
// are erased, the mailbox needs a new sign-in (needs_reauth with reason,
// code "servers_changed"), and the admins get a notice. Fetching stops
// until an admin connects the mailbox again. Who signed in (the account) is
// kept, so the new sign-in is checked against it.
func ForgetSignIn(ctx context.Context, tx *store.Tx, mailboxID int64, reason string, at time.Time) error {
	if err := tx.ForgetMailboxTokens(ctx, mailboxID, store.AuthNeedsReauth, CodeServersChanged, reason, at); err != nil {
		return err
	}
	mb, err := tx.Mailbox(ctx, mailboxID)
	if err != nil {
		return err
	}
	return tx.AddNotice(ctx, &store.Notice{MailboxID: mailboxID, Kind: string(store.AuthNeedsReauth),
		Message: mb.Address + ": " + reason, CreatedAt: at})
}

// CodeServersChanged is the error code of a sign-in forgotten because the
// mailbox's mail servers changed.
const CodeServersChanged = "servers_changed"

// ResetSignIn makes a mailbox sign in with provider from scratch, in the
// caller's transaction: a fresh authorization row with no token, password
// or account (an admin must connect it).
func ResetSignIn(ctx context.Context, tx *store.Tx, mailboxID int64, provider string, at time.Time) error {
	return tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: mailboxID, Kind: store.AuthOAuth, Provider: provider, UpdatedAt: at})
}
