package desk

import (
	"context"
	"crypto/tls"
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
	// Signature is appended to replies sent from the mailbox ("" for none;
	// at most MaxSignatureBytes).
	Signature string
	// SaveSent: APPEND a copy of each sent reply to the Sent folder (nil:
	// on, except for Microsoft 365 and Gmail, which save it themselves).
	SaveSent *bool
	// AckEnabled: a new ticket's requester gets an acknowledgement (off
	// by default), written from AckTemplate: "" is DefaultAckTemplate;
	// {{ticket}} and {{subject}} are its only placeholders.
	AckEnabled  bool
	AckTemplate string
	// FetchTransport is "imap" (default) or "graph", SendTransport "smtp"
	// (default) or "graph": Microsoft Graph, for a Microsoft 365 mailbox
	// whose tenant switched IMAP or SMTP AUTH off.
	FetchTransport, SendTransport string
}

// MaxSignatureBytes bounds a mailbox's signature.
const MaxSignatureBytes = 4 << 10

// Admin performs admins' operations on mailboxes.
type Admin struct {
	// ProbeTLS is the TLS configuration of TestConnection (nil: the
	// system's roots); tests trust their own certificate authority here.
	ProbeTLS *tls.Config
	// ProbeResolver looks up the servers' names for TestConnection (nil:
	// the system's resolver); tests give one that never leaves the machine.
	ProbeResolver *net.Resolver
	// OAuth gives TestMailbox an OAuth mailbox's access token (nil: OAuth
	// mailboxes are not tested once saved).
	OAuth *oauth.Service
	// Outbox wakes a mailbox's sender when SetTransports queues replies
	// again (nil: the sender's sweep finds them).
	Outbox Enqueuer

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
		exists := &ValidationError{Field: "address", Message: fmt.Sprintf("mailbox %s already exists", spec.Address), Err: ErrExists}
		// A removed mailbox (kept for its tickets) comes back. Looked up
		// first: on PostgreSQL a refused insert ends the transaction.
		old, err := tx.MailboxByAddress(ctx, spec.Address)
		switch {
		case err == nil && !old.Removed():
			return exists
		case err == nil:
			if err := tx.RestoreMailbox(ctx, old.ID, spec.Name); err != nil {
				return err
			}
			mb, err = tx.Mailbox(ctx, old.ID)
		case errors.Is(err, store.ErrNotFound):
			mb, err = tx.CreateMailbox(ctx, spec.Address, spec.Name)
			if errors.Is(err, store.ErrConflict) {
				return exists
			}
		}
		if err != nil {
			return err
		}
		if spec.Signature != "" {
			if err := tx.SetMailboxSignature(ctx, mb.ID, spec.Signature); err != nil {
				return err
			}
			mb.Signature = spec.Signature
		}
		if spec.AckEnabled || spec.AckTemplate != "" {
			if err := tx.SetMailboxAck(ctx, mb.ID, spec.AckEnabled, spec.AckTemplate); err != nil {
				return err
			}
			mb.AckEnabled, mb.AckTemplate = spec.AckEnabled, spec.AckTemplate
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
	if err == nil && mb.Removed() {
		err = store.ErrNotFound
	}
	if err != nil {
		return MailboxSpec{}, fmt.Errorf("read mailbox %d: %w", id, err)
	}
	spec := MailboxSpec{Address: mb.Address, Name: mb.Name, Signature: mb.Signature, AckEnabled: mb.AckEnabled, AckTemplate: mb.AckTemplate}
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
	saveSent := srv.SaveSent
	spec.SaveSent = &saveSent
	spec.AuthMethod, spec.Username, spec.Folders = srv.AuthMethod, srv.Username, srv.Folders
	spec.AfterProcessing, spec.MoveTo = srv.AfterProcessing, srv.MoveTo
	spec.InitialDays, spec.MaxAgeDays, spec.Disabled = &initial, &maxAge, !srv.Enabled
	spec.FetchTransport, spec.SendTransport = srv.FetchTransport, srv.SendTransport
	return spec, nil
}

// Updated is what UpdateMailbox did.
type Updated struct {
	Mailbox store.Mailbox
	// SignInForgotten says the mailbox's OAuth tokens were forgotten: its
	// mail servers (or its provider) changed, and tokens are only sent
	// where they were given for. Nothing is fetched until an admin
	// connects the mailbox again. Notice says so in plain words.
	SignInForgotten bool
	Notice          string
	// NeedsSignIn: the transports need scopes the sign-in was not granted
	// (Scopes are those a sign-in asks for now); Requeued counts replies
	// SMTP refused with 5.7.139 queued again to go through Graph.
	NeedsSignIn bool
	Scopes      []string
	Requeued    int
}

// UpdateMailbox replaces a mailbox's name, sign-in kind and server settings
// with spec, validated like AddMailbox; start from Spec to change some
// fields only. The address cannot change. An empty Password keeps the
// stored one; a new one is sealed and clears a refused password's state.
// Changing the sign-in kind or the provider forgets the old credentials
// (an OAuth mailbox must then be connected again), and so does changing an
// OAuth mailbox's IMAP or SMTP server (host, port or security): its tokens
// were given for the old ones (Updated.SignInForgotten). A mailbox without
// a sign-in can be renamed without giving one. A missing mailbox is
// store.ErrNotFound; a refused change is a *ValidationError.
func (a *Admin) UpdateMailbox(ctx context.Context, id int64, spec MailboxSpec) (Updated, error) {
	cur, err := a.Spec(ctx, id)
	if err != nil {
		return Updated{}, fmt.Errorf("update mailbox %d: %w", id, err)
	}
	if addr := strings.ToLower(strings.TrimSpace(spec.Address)); addr != "" && addr != cur.Address {
		return Updated{}, invalid("address", "the address of mailbox %s cannot change: add a mailbox for %s instead", cur.Address, addr)
	}
	spec.Address = cur.Address
	if err := checkSignature(spec.Signature); err != nil {
		return Updated{}, err
	}
	if err := checkAck(&spec); err != nil {
		return Updated{}, err
	}
	renameOnly := cur
	renameOnly.Name, renameOnly.Signature = spec.Name, spec.Signature
	renameOnly.AckEnabled, renameOnly.AckTemplate = spec.AckEnabled, spec.AckTemplate
	if cur.Auth == "" && reflect.DeepEqual(spec, renameOnly) {
		if spec.AckEnabled {
			return Updated{}, invalid("ack_enabled", "acknowledgements are sent by email, and %s has no server settings", cur.Address)
		}
		err = a.db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.SetMailboxSignature(ctx, id, spec.Signature); err != nil {
				return err
			}
			if err := tx.SetMailboxAck(ctx, id, spec.AckEnabled, spec.AckTemplate); err != nil {
				return err
			}
			return tx.RenameMailbox(ctx, id, spec.Name)
		})
		if err != nil {
			return Updated{}, fmt.Errorf("update mailbox %s: %w", cur.Address, err)
		}
		mb, err := a.db.Mailbox(ctx, id)
		return Updated{Mailbox: mb}, err
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
		// its own server settings still let an admin change or disable it
		// (but not point it, and its tokens, at another server).
		lenient := *a
		lenient.providers = func(name string) (oauth.Provider, bool) {
			if name == cur.Auth {
				return oauth.Provider{Name: name, IMAPHost: cur.IMAPHost, SMTPHost: cur.SMTPHost}, true
			}
			return a.providers(name)
		}
		check = &lenient
	}
	srv, err := check.resolve(&spec, sameKind)
	if err != nil {
		return Updated{}, err
	}
	oauthKind := spec.Auth != "password"
	var moves []string
	if old, new := endpoint(cur.IMAPHost, cur.IMAPPort, cur.IMAPSecurity), endpoint(srv.IMAPHost, srv.IMAPPort, srv.IMAPSecurity); old != new {
		moves = append(moves, "the IMAP server changed from "+old+" to "+new)
	}
	if old, new := endpoint(cur.SMTPHost, cur.SMTPPort, cur.SMTPSecurity), endpoint(srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity); old != new {
		moves = append(moves, "the SMTP server changed from "+old+" to "+new)
	}
	var out Updated
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		now := a.now().UTC()
		if spec.Name != cur.Name {
			if err := tx.RenameMailbox(ctx, id, spec.Name); err != nil {
				return err
			}
		}
		if spec.Signature != cur.Signature {
			if err := tx.SetMailboxSignature(ctx, id, spec.Signature); err != nil {
				return err
			}
		}
		if spec.AckEnabled != cur.AckEnabled || spec.AckTemplate != cur.AckTemplate {
			if err := tx.SetMailboxAck(ctx, id, spec.AckEnabled, spec.AckTemplate); err != nil {
				return err
			}
		}
		if change := changeNote(cur, spec); change != "" {
			if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: id, Kind: store.ActivityAuth, Message: change, CreatedAt: now}); err != nil {
				return err
			}
		}
		srv.MailboxID, srv.UpdatedAt = id, now
		if err := tx.PutMailboxServer(ctx, srv); err != nil {
			return err
		}
		if p, ok := check.providers(spec.Auth); ok && oauthKind && sameKind && len(moves) == 0 {
			if err := a.transportChanged(ctx, tx, &out, p, srv, cur.SendTransport, now); err != nil {
				return err
			}
		}
		au, err := tx.MailboxAuth(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		hadTokens := au.Kind == store.AuthOAuth && (au.RefreshTokenSealed != "" || au.AccessTokenSealed != "")
		switch {
		case oauthKind && !sameKind:
			// A fresh row: no tokens or password of the previous sign-in survive.
			if hadTokens {
				out.SignInForgotten = true
				out.Notice = fmt.Sprintf("The sign-in provider changed from %s to %s, so Postdesk forgot the mailbox's sign-in. "+
					"Connect it again (Admin -> Emails) to fetch its mail.", cur.Auth, spec.Auth)
			}
			return oauth.ResetSignIn(ctx, tx, id, spec.Auth, now)
		case oauthKind && len(moves) > 0 && hadTokens:
			out.SignInForgotten = true
			out.Notice = capitalize(strings.Join(moves, " and ")) + ", so Postdesk forgot the mailbox's sign-in: " +
				"its tokens are only ever sent to the servers they were given for. Connect it again (Reauthenticate in Admin -> Emails) to fetch its mail."
			return oauth.ForgetSignIn(ctx, tx, id, out.Notice, now)
		case spec.Auth == "password" && (!sameKind || spec.Password != "" || spec.Username != cur.Username):
			return a.setPassword(ctx, tx, id, spec, now)
		}
		return nil
	})
	if err != nil {
		return Updated{}, fmt.Errorf("update mailbox %s: %w", cur.Address, err)
	}
	out.Mailbox, err = a.db.Mailbox(ctx, id)
	return out, err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
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
		if errors.Is(err, store.ErrNotFound) || err == nil && mb.Removed() {
			return invalid("address", "there is no mailbox %s", address)
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
		return nil, invalid("", "%q is not a number of days", s)
	}
	return &n, nil
}
