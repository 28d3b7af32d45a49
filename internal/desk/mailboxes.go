package desk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
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
	Disabled        bool // fetch nothing until enabled again
}

// ErrExists wraps the error of adding a mailbox whose address is taken
// (together with ErrInvalid).
var ErrExists = errors.New("already exists")

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

// Providers is a providers lookup for NewAdmin over a list of configured providers.
func Providers(list []oauth.Provider) func(name string) (oauth.Provider, bool) {
	return func(name string) (oauth.Provider, bool) {
		for _, p := range list {
			if p.Name == name {
				return p, true
			}
		}
		return oauth.Provider{}, false
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// resolve fills defaults and validates a spec into server settings.
// passwordStored says that a password mailbox already has a sealed
// password, which an empty spec.Password keeps.
func (a *Admin) resolve(spec *MailboxSpec, passwordStored bool) (store.MailboxServer, error) {
	spec.Address = strings.ToLower(strings.TrimSpace(spec.Address))
	if at := strings.LastIndex(spec.Address, "@"); at < 1 || at == len(spec.Address)-1 || strings.ContainsAny(spec.Address, " <>,;") {
		return store.MailboxServer{}, invalid("%q is not an email address", spec.Address)
	}
	srv := store.MailboxServer{IMAPHost: spec.IMAPHost, IMAPPort: spec.IMAPPort, IMAPSecurity: spec.IMAPSecurity,
		SMTPHost: spec.SMTPHost, SMTPPort: spec.SMTPPort, SMTPSecurity: spec.SMTPSecurity, AuthMethod: spec.AuthMethod,
		Username: spec.Username, Folders: spec.Folders, AfterProcessing: spec.AfterProcessing, MoveTo: spec.MoveTo,
		InitialDays: 14, MaxAgeDays: 90, Enabled: !spec.Disabled}
	switch spec.Auth {
	case "":
		return srv, invalid("say how the mailbox signs in: an OAuth provider (microsoft, google) or password")
	case "password":
		if spec.Password == "" && !passwordStored {
			return srv, invalid("a password mailbox needs a password")
		}
		if a.vault == nil && spec.Password != "" {
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
		// The provider's servers fill what the spec leaves out (a port or
		// security given alone is kept, and validated below).
		if srv.IMAPHost == "" {
			srv.IMAPHost = p.IMAPHost
			srv.IMAPPort = cmp.Or(srv.IMAPPort, p.IMAPPort)
			srv.IMAPSecurity = cmp.Or(srv.IMAPSecurity, "tls")
		}
		if srv.SMTPHost == "" {
			srv.SMTPHost = p.SMTPHost
			srv.SMTPPort = cmp.Or(srv.SMTPPort, p.SMTPPort)
			srv.SMTPSecurity = cmp.Or(srv.SMTPSecurity, "starttls")
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
	srv, err := a.resolve(&spec, false)
	if err != nil {
		return store.Mailbox{}, err
	}
	var mb store.Mailbox
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		now := a.now().UTC()
		var err error
		mb, err = tx.CreateMailbox(ctx, spec.Address, spec.Name)
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("%w: mailbox %s %w", ErrInvalid, spec.Address, ErrExists)
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
		return a.setPassword(ctx, tx, mb.ID, spec, now)
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("add mailbox %s: %w", spec.Address, err)
	}
	return mb, nil
}

// Spec returns what is configured for a mailbox, in the form UpdateMailbox
// takes back: change some fields and pass it on. Password is always empty.
// A mailbox without a sign-in (made by an import) has an empty Auth and no
// server settings. A missing mailbox is store.ErrNotFound.
func (a *Admin) Spec(ctx context.Context, id int64) (MailboxSpec, error) {
	mb, err := a.db.Mailbox(ctx, id)
	if err != nil {
		return MailboxSpec{}, fmt.Errorf("read mailbox %d: %w", id, err)
	}
	spec := MailboxSpec{Address: mb.Address, Name: mb.Name}
	au, err := a.db.MailboxAuth(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return MailboxSpec{}, fmt.Errorf("read sign-in of mailbox %d: %w", id, err)
	case au.Kind == store.AuthPassword:
		spec.Auth = "password"
	case au.Kind == store.AuthOAuth:
		spec.Auth = au.Provider
	}
	srv, err := a.db.MailboxServer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return spec, nil
	}
	if err != nil {
		return MailboxSpec{}, fmt.Errorf("read server settings of mailbox %d: %w", id, err)
	}
	initial, maxAge := srv.InitialDays, srv.MaxAgeDays
	spec.IMAPHost, spec.IMAPPort, spec.IMAPSecurity = srv.IMAPHost, srv.IMAPPort, srv.IMAPSecurity
	spec.SMTPHost, spec.SMTPPort, spec.SMTPSecurity = srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity
	spec.AuthMethod, spec.Username, spec.Folders = srv.AuthMethod, srv.Username, srv.Folders
	spec.AfterProcessing, spec.MoveTo = srv.AfterProcessing, srv.MoveTo
	spec.InitialDays, spec.MaxAgeDays, spec.Disabled = &initial, &maxAge, !srv.Enabled
	return spec, nil
}

// UpdateMailbox replaces a mailbox's name, sign-in kind and server settings
// with spec, validated like AddMailbox; start from Spec to change some
// fields only. The address cannot change. An empty Password keeps the
// stored one; a new one is sealed and clears a refused password's state.
// Changing the sign-in kind or the provider forgets the old credentials
// (an OAuth mailbox must then be connected again). A mailbox without a
// sign-in can be renamed without giving one. A missing mailbox is
// store.ErrNotFound.
func (a *Admin) UpdateMailbox(ctx context.Context, id int64, spec MailboxSpec) (store.Mailbox, error) {
	cur, err := a.Spec(ctx, id)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("update mailbox %d: %w", id, err)
	}
	if addr := strings.ToLower(strings.TrimSpace(spec.Address)); addr != "" && addr != cur.Address {
		return store.Mailbox{}, invalid("the address of mailbox %s cannot change: add a mailbox for %s instead", cur.Address, addr)
	}
	spec.Address = cur.Address
	renameOnly := cur
	renameOnly.Name = spec.Name
	if cur.Auth == "" && reflect.DeepEqual(spec, renameOnly) {
		err = a.db.Write(ctx, func(tx *store.Tx) error { return tx.RenameMailbox(ctx, id, spec.Name) })
		if err != nil {
			return store.Mailbox{}, fmt.Errorf("update mailbox %s: %w", cur.Address, err)
		}
		return a.db.Mailbox(ctx, id)
	}
	sameKind := spec.Auth == cur.Auth
	if !sameKind {
		// Settings the caller left as they were belong to the old sign-in:
		// the new one's defaults replace them.
		if spec.AuthMethod == cur.AuthMethod {
			spec.AuthMethod = ""
		}
		if spec.Auth != "password" && spec.IMAPHost == cur.IMAPHost && spec.IMAPPort == cur.IMAPPort && spec.IMAPSecurity == cur.IMAPSecurity {
			spec.IMAPHost, spec.IMAPPort, spec.IMAPSecurity = "", 0, ""
		}
		if spec.Auth != "password" && spec.SMTPHost == cur.SMTPHost && spec.SMTPPort == cur.SMTPPort && spec.SMTPSecurity == cur.SMTPSecurity {
			spec.SMTPHost, spec.SMTPPort, spec.SMTPSecurity = "", 0, ""
		}
	}
	check := a
	if _, ok := a.providers(spec.Auth); sameKind && !ok && spec.Auth != "password" {
		// The provider's settings were removed since the mailbox was added:
		// its own server settings still let an admin change or disable it.
		lenient := *a
		lenient.providers = func(name string) (oauth.Provider, bool) {
			if name == cur.Auth {
				return oauth.Provider{Name: name}, true
			}
			return a.providers(name)
		}
		check = &lenient
	}
	srv, err := check.resolve(&spec, sameKind)
	if err != nil {
		return store.Mailbox{}, err
	}
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		now := a.now().UTC()
		if spec.Name != cur.Name {
			if err := tx.RenameMailbox(ctx, id, spec.Name); err != nil {
				return err
			}
		}
		srv.MailboxID, srv.UpdatedAt = id, now
		if err := tx.PutMailboxServer(ctx, srv); err != nil {
			return err
		}
		switch {
		case spec.Auth != "password" && !sameKind:
			// A fresh row: no tokens or password of the previous sign-in survive.
			return tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: id, Kind: store.AuthOAuth, Provider: spec.Auth, UpdatedAt: now})
		case spec.Auth == "password" && (!sameKind || spec.Password != "" || spec.Username != cur.Username):
			return a.setPassword(ctx, tx, id, spec, now)
		}
		return nil
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("update mailbox %s: %w", cur.Address, err)
	}
	return a.db.Mailbox(ctx, id)
}

// setPassword stores a password mailbox's login and its password, sealed;
// an empty spec.Password keeps the sealed one.
func (a *Admin) setPassword(ctx context.Context, tx *store.Tx, id int64, spec MailboxSpec, now time.Time) error {
	var sealed string
	if spec.Password == "" {
		au, err := tx.MailboxAuth(ctx, id)
		if err != nil {
			return err
		}
		sealed = au.PasswordSealed
	} else {
		var err error
		if sealed, err = a.vault.Seal([]byte(spec.Password), store.MailboxSecret(id, "password")); err != nil {
			return err
		}
	}
	login := spec.Username
	if login == "" {
		login = spec.Address
	}
	return tx.SetMailboxPassword(ctx, id, login, sealed, now)
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
