package desk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// MailboxSpec is what an admin says about a support mailbox. Empty fields
// take the provider's defaults (Microsoft: outlook.office365.com:993 TLS,
// smtp.office365.com:587 STARTTLS, XOAUTH2).
type MailboxSpec struct {
	Address string
	Name    string
	// Auth is an OAuth provider's name ("microsoft", "google", ...) or "password".
	Auth            string
	IMAPHost        string
	IMAPPort        int
	IMAPSecurity    string // tls, starttls, none
	SMTPHost        string
	SMTPPort        int
	SMTPSecurity    string
	AuthMethod      string // xoauth2, oauthbearer (OAuth); plain, login (password)
	Username        string // password mailboxes: the login when it is not the address
	Password        string // password mailboxes; sealed before it is stored
	Folders         []string
	AfterProcessing string // leave (default), seen, move
	MoveTo          string
	InitialDays     *int // default 14; 0 = only new mail
	MaxAgeDays      *int // default 90
}

// Admin performs admins' operations on mailboxes.
type Admin struct {
	db        *store.DB
	vault     *store.Vault
	providers func(name string) (oauth.Provider, bool)
	now       func() time.Time
}

// NewAdmin returns an Admin. providers looks up configured OAuth providers
// (nil: none configured); vault seals passwords (nil: password mailboxes refused).
func NewAdmin(db *store.DB, vault *store.Vault, providers func(string) (oauth.Provider, bool)) *Admin {
	if providers == nil {
		providers = func(string) (oauth.Provider, bool) { return oauth.Provider{}, false }
	}
	return &Admin{db: db, vault: vault, providers: providers, now: time.Now}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// resolve fills defaults and validates a spec into server settings.
func (a *Admin) resolve(spec *MailboxSpec) (store.MailboxServer, error) {
	spec.Address = strings.ToLower(strings.TrimSpace(spec.Address))
	if at := strings.LastIndex(spec.Address, "@"); at < 1 || at == len(spec.Address)-1 || strings.ContainsAny(spec.Address, " <>,;") {
		return store.MailboxServer{}, invalid("%q is not an email address", spec.Address)
	}
	srv := store.MailboxServer{IMAPHost: spec.IMAPHost, IMAPPort: spec.IMAPPort, IMAPSecurity: spec.IMAPSecurity,
		SMTPHost: spec.SMTPHost, SMTPPort: spec.SMTPPort, SMTPSecurity: spec.SMTPSecurity, AuthMethod: spec.AuthMethod,
		Username: spec.Username, Folders: spec.Folders, AfterProcessing: spec.AfterProcessing, MoveTo: spec.MoveTo,
		InitialDays: 14, MaxAgeDays: 90, Enabled: true}
	switch spec.Auth {
	case "":
		return srv, invalid("say how the mailbox signs in: an OAuth provider (microsoft, google) or password")
	case "password":
		if spec.Password == "" {
			return srv, invalid("a password mailbox needs a password")
		}
		if a.vault == nil {
			return srv, invalid("passwords cannot be stored: no secret key is available")
		}
		if srv.AuthMethod == "" {
			srv.AuthMethod = "plain"
		}
		if srv.AuthMethod != "plain" && srv.AuthMethod != "login" {
			return srv, invalid("a password mailbox signs in with plain or login, not %q", srv.AuthMethod)
		}
	default:
		p, ok := a.providers(spec.Auth)
		if !ok {
			return srv, invalid("sign-in provider %q is not configured (set POSTDESK_%s_CLIENT_ID)", spec.Auth, strings.ToUpper(spec.Auth))
		}
		if spec.Password != "" {
			return srv, invalid("an OAuth mailbox has no password: connect it through the provider's sign-in")
		}
		if srv.IMAPHost == "" {
			srv.IMAPHost, srv.IMAPPort, srv.IMAPSecurity = p.IMAPHost, p.IMAPPort, "tls"
		}
		if srv.SMTPHost == "" {
			srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity = p.SMTPHost, p.SMTPPort, "starttls"
		}
		if srv.AuthMethod == "" {
			srv.AuthMethod = "xoauth2"
		}
		if srv.AuthMethod != "xoauth2" && srv.AuthMethod != "oauthbearer" {
			return srv, invalid("an OAuth mailbox signs in with xoauth2 or oauthbearer, not %q", srv.AuthMethod)
		}
	}
	if srv.IMAPHost == "" {
		return srv, invalid("the IMAP server's host name is missing")
	}
	if srv.IMAPSecurity == "" {
		srv.IMAPSecurity = "tls"
	}
	if srv.IMAPPort == 0 {
		srv.IMAPPort = map[string]int{"tls": 993, "starttls": 143, "none": 143}[srv.IMAPSecurity]
	}
	for _, sec := range []string{srv.IMAPSecurity, srv.SMTPSecurity} {
		if sec != "" && sec != "tls" && sec != "starttls" && sec != "none" {
			return srv, invalid("security must be tls, starttls or none, not %q", sec)
		}
	}
	if srv.IMAPSecurity == "none" && !isLoopback(srv.IMAPHost) {
		return srv, invalid("IMAP without TLS is only allowed to this machine (127.0.0.1), not %s", srv.IMAPHost)
	}
	if srv.IMAPPort < 1 || srv.IMAPPort > 65535 || srv.SMTPPort < 0 || srv.SMTPPort > 65535 {
		return srv, invalid("ports must be between 1 and 65535")
	}
	if len(srv.Folders) == 0 {
		srv.Folders = []string{"INBOX"}
	}
	for _, f := range srv.Folders {
		if strings.TrimSpace(f) == "" || strings.ContainsAny(f, "\r\n") {
			return srv, invalid("folder name %q is not valid", f)
		}
	}
	switch srv.AfterProcessing {
	case "", "leave", "seen":
	case "move":
		if strings.TrimSpace(srv.MoveTo) == "" {
			return srv, invalid("moving processed mail needs a folder to move it to")
		}
	default:
		return srv, invalid("after processing must be leave, seen or move, not %q", srv.AfterProcessing)
	}
	if spec.InitialDays != nil {
		if *spec.InitialDays < 0 || *spec.InitialDays > 3650 {
			return srv, invalid("initial days must be between 0 and 3650")
		}
		srv.InitialDays = *spec.InitialDays
	}
	if spec.MaxAgeDays != nil {
		if *spec.MaxAgeDays < 1 || *spec.MaxAgeDays > 3650 {
			return srv, invalid("the catch-up limit must be between 1 and 3650 days")
		}
		srv.MaxAgeDays = *spec.MaxAgeDays
	}
	return srv, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AddMailbox creates a mailbox with its server settings and sign-in kind.
// An OAuth mailbox still has to be connected through the provider's sign-in.
func (a *Admin) AddMailbox(ctx context.Context, spec MailboxSpec) (store.Mailbox, error) {
	srv, err := a.resolve(&spec)
	if err != nil {
		return store.Mailbox{}, err
	}
	var mb store.Mailbox
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		now := a.now().UTC()
		var err error
		mb, err = tx.CreateMailbox(ctx, spec.Address, spec.Name)
		if errors.Is(err, store.ErrConflict) {
			return invalid("mailbox %s already exists", spec.Address)
		}
		if err != nil {
			return err
		}
		srv.MailboxID, srv.UpdatedAt = mb.ID, now
		if err := tx.PutMailboxServer(ctx, srv); err != nil {
			return err
		}
		if spec.Auth != "password" {
			return tx.SetMailboxAuthKind(ctx, mb.ID, store.AuthOAuth, spec.Auth, now)
		}
		sealed, err := a.vault.Seal([]byte(spec.Password), store.MailboxSecret(mb.ID, "password"))
		if err != nil {
			return err
		}
		login := spec.Username
		if login == "" {
			login = spec.Address
		}
		return tx.SetMailboxPassword(ctx, mb.ID, login, sealed, now)
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("add mailbox %s: %w", spec.Address, err)
	}
	return mb, nil
}

// RemoveMailbox stops fetching a mailbox and forgets its credentials. Its
// tickets stay; a mailbox that never received mail is deleted entirely.
func (a *Admin) RemoveMailbox(ctx context.Context, address string) (deleted bool, err error) {
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.MailboxByAddress(ctx, address)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no mailbox %s", address)
		}
		if err != nil {
			return err
		}
		deleted, err = tx.RemoveMailbox(ctx, mb.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("remove mailbox %s: %w", address, err)
	}
	return deleted, nil
}

// ParseDays parses an optional number of days ("" = unset).
func ParseDays(s string) (*int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return nil, invalid("%q is not a number of days", s)
	}
	return &n, nil
}
