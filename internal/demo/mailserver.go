package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	gosasl "github.com/emersion/go-sasl"
)

// SASL mechanisms the mail server offers.
const (
	mechXOAuth2     = "XOAUTH2"
	mechOAuthBearer = "OAUTHBEARER"
)

// Introspector says whether an access token is live and whom it belongs to
// (RFC 7662: "active" and "username").
type Introspector func(ctx context.Context, token string) (active bool, username string, err error)

// HTTPIntrospector asks an RFC 7662 introspection endpoint, as Dovecot's
// oauth2 passdb does (POST form "token=...", no client authentication).
func HTTPIntrospector(endpoint string, client *http.Client) Introspector {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return func(ctx context.Context, token string) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
		if err != nil {
			return false, "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			return false, "", fmt.Errorf("introspect token: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, "", fmt.Errorf("introspect token: HTTP %d", resp.StatusCode)
		}
		var body struct {
			Active   bool   `json:"active"`
			Username string `json:"username"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return false, "", fmt.Errorf("introspect token: %w", err)
		}
		return body.Active, body.Username, nil
	}
}

// MailServer is an in-memory IMAP server (go-imap's imapmemserver) whose
// users sign in only with an OAuth access token (SASL XOAUTH2 or
// OAUTHBEARER), checked by introspection at the identity provider, the
// way Dovecot is set up for Microsoft-like mailboxes in MAILSTACK.md; its
// ServeSMTP accepts mail submitted with the same tokens. It speaks clear
// text, so it listens on loopback only.
//
// Every start announces a new UIDVALIDITY (RFC 9051 2.3.1.1): the folders
// are new each time, and a checkpoint kept in a data folder from an
// earlier run must not skip their UIDs.
type MailServer struct {
	// OnDelivered, when set (before ServeSMTP), is called after a message
	// submitted over SMTP was put in a recipient's INBOX, once per
	// recipient, on the SMTP session's goroutine: the SMTP client waits
	// for it, so it must not block. raw must not be modified.
	OnDelivered func(to string, raw []byte)

	introspect  Introspector
	log         *slog.Logger
	uidValidity uint32
	mem         *imapmemserver.Server
	srv         *imapserver.Server

	mu    sync.Mutex
	users map[string]*memUser // by lower-case address
}

type memUser struct {
	user     *imapmemserver.User
	password string // internal only: XOAUTH2 logs the session in with it
	// put lists what Deliver and SMTP put in each folder, for Messages.
	put map[string][][]byte
}

// SentFolder is the folder AddMailbox creates beside the INBOX, where the
// SMTP side saves a copy of what a mailbox sends (see ServeSMTP).
const SentFolder = "Sent"

// NewMailServer returns a server with no mailboxes.
func NewMailServer(introspect Introspector, log *slog.Logger) *MailServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &MailServer{introspect: introspect, log: log, mem: imapmemserver.New(), users: map[string]*memUser{},
		uidValidity: uint32(time.Now().Unix())}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{srv: s, remote: c.NetConn().RemoteAddr().String()}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}},
		InsecureAuth: true, // loopback only: see Serve
		Logger:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	return s
}

// AddMailbox creates a mailbox (with an INBOX and a SentFolder) for
// address; it does nothing when the mailbox exists.
func (s *MailServer) AddMailbox(address string) error {
	key := strings.ToLower(address)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[key]; ok {
		return nil
	}
	pw := make([]byte, 24)
	rand.Read(pw)
	u := &memUser{password: base64.RawURLEncoding.EncodeToString(pw), put: map[string][][]byte{}}
	u.user = imapmemserver.NewUser(key, u.password)
	for _, folder := range []string{"INBOX", SentFolder} {
		if err := u.user.Create(folder, nil); err != nil {
			return fmt.Errorf("create %s of %s: %w", folder, address, err)
		}
	}
	s.mem.AddUser(u.user)
	s.users[key] = u
	return nil
}

// Deliver puts a message in address's INBOX, dated date (the INTERNALDATE;
// zero: now), as a delivery agent would. Sessions idling on the INBOX hear
// of it at once.
func (s *MailServer) Deliver(address string, raw []byte, date time.Time) error {
	if err := s.put(address, "INBOX", raw, date, nil); err != nil {
		return fmt.Errorf("deliver to %s: %w", address, err)
	}
	return nil
}

// put appends raw to a folder of address's mailbox and notes it for
// Messages.
func (s *MailServer) put(address, folder string, raw []byte, date time.Time, flags []imap.Flag) error {
	s.mu.Lock()
	u, ok := s.users[strings.ToLower(address)]
	s.mu.Unlock()
	if !ok {
		return errors.New("no such mailbox")
	}
	if _, err := u.user.Append(folder, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: date, Flags: flags}); err != nil {
		return err
	}
	s.mu.Lock()
	u.put[folder] = append(u.put[folder], raw)
	s.mu.Unlock()
	return nil
}

// Messages returns the messages Deliver and the SMTP side put into folder
// of address's mailbox since the server started, oldest first (IMAP
// clients' changes, such as expunges, are not reflected). For tests and for
// the demo's pages.
func (s *MailServer) Messages(address, folder string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(address)]
	if !ok {
		return nil
	}
	return slices.Clone(u.put[folder])
}

// Serve serves IMAP on ln until ctx ends. ln must be a loopback address:
// the server speaks clear text.
func (s *MailServer) Serve(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("demo mail server: %s is not a loopback address", ln.Addr())
	}
	s.log.Info("demo mail server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo mail server: %w", err)
	case <-ctx.Done():
	}
	err := s.srv.Close()
	<-errc
	return err
}

// literal is an imap.LiteralReader over bytes.
type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// session is one IMAP connection: go-imap's in-memory session once
// authenticated, with SASL bearer mechanisms in front and LOGIN refused.
type session struct {
	*imapmemserver.UserSession // nil until authenticated
	srv                        *MailServer
	remote                     string
}

var _ imapserver.SessionSASL = (*session)(nil)

func (s *session) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

// Login refuses passwords: these mailboxes sign in with OAuth only, as
// Microsoft 365 mailboxes with basic authentication turned off.
func (s *session) Login(username, password string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed,
		Text: "Passwords are not accepted: authenticate with XOAUTH2 or OAUTHBEARER"}
}

// Select and Status announce this run's UIDVALIDITY.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := s.UserSession.Select(name, options)
	if d != nil {
		d.UIDValidity = s.srv.uidValidity
	}
	return d, err
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	d, err := s.UserSession.Status(name, options)
	if d != nil && d.UIDValidity != 0 {
		d.UIDValidity = s.srv.uidValidity
	}
	return d, err
}

func (s *session) AuthenticateMechanisms() []string { return []string{mechXOAuth2, mechOAuthBearer} }

func (s *session) Authenticate(mech string) (gosasl.Server, error) {
	switch mech {
	case mechXOAuth2, mechOAuthBearer:
		return &bearerServer{sess: s, mech: mech}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported SASL mechanism: use XOAUTH2 or OAUTHBEARER"}
}

// login makes the session the user's once its token checked out.
func (s *session) login(address string) error {
	s.srv.mu.Lock()
	u, ok := s.srv.users[strings.ToLower(address)]
	s.srv.mu.Unlock()
	if !ok {
		return errors.New("no such mailbox")
	}
	if err := u.user.Login(strings.ToLower(address), u.password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(u.user)
	return nil
}

// bearerServer is the server side of XOAUTH2 and of OAUTHBEARER (RFC 7628).
// A refused token gets the JSON error challenge (RFC 7628 3.2.2; Google's
// and Microsoft's XOAUTH2 send the same), and the exchange fails only after
// the client's dummy response (0x01), as Dovecot does.
type bearerServer struct {
	sess   *session
	mech   string
	failed bool
}

var errAuthFailed = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}

func (b *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed {
		return nil, true, errAuthFailed
	}
	if resp == nil { // no SASL-IR: ask for the initial response
		return []byte{}, false, nil
	}
	user, verdict := b.sess.srv.checkBearer(b.mech, resp, b.sess.remote)
	switch verdict {
	case bearerMalformed:
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Malformed " + b.mech + " response"}
	case bearerUnavailable:
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Cannot check the token right now"}
	case bearerRefused:
		b.failed = true
		return bearerChallenge(), false, nil
	}
	if err := b.sess.login(user); err != nil {
		b.sess.srv.log.Info("demo mail server: no such mailbox", "mechanism", b.mech, "user", user, "remote", b.sess.remote)
		b.failed = true
		return bearerChallenge(), false, nil
	}
	return nil, true, nil
}

// bearerVerdict is what checkBearer found of a bearer initial response.
type bearerVerdict int

const (
	bearerOK          bearerVerdict = iota
	bearerMalformed                 // not an XOAUTH2 / OAUTHBEARER response
	bearerRefused                   // token inactive or someone else's
	bearerUnavailable               // the introspection endpoint failed
)

// checkBearer reads an XOAUTH2 or OAUTHBEARER initial response and asks
// the identity provider about its token (both IMAP and SMTP sign in this
// way). The token is live and user's when the verdict is bearerOK.
func (s *MailServer) checkBearer(mech string, resp []byte, remote string) (user string, v bearerVerdict) {
	user, token, ok := parseBearer(mech, resp)
	if !ok {
		return "", bearerMalformed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, username, err := s.introspect(ctx, token)
	log := s.log.With("mechanism", mech, "user", user, "remote", remote)
	switch {
	case err != nil:
		log.Warn("demo mail server: token check failed", "err", err)
		return user, bearerUnavailable
	case !active || !strings.EqualFold(username, user):
		log.Info("demo mail server: token refused", "active", active)
		return user, bearerRefused
	}
	log.Debug("demo mail server: signed in")
	return user, bearerOK
}

// bearerChallenge is the JSON error challenge of RFC 7628 3.2.2.
func bearerChallenge() []byte {
	challenge, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "mail"})
	return challenge
}

// parseBearer reads the user and token of an initial response:
// XOAUTH2 "user=U\x01auth=Bearer T\x01\x01"; OAUTHBEARER (RFC 7628 3.1)
// "n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01".
func parseBearer(mech string, ir []byte) (user, token string, ok bool) {
	s := string(ir)
	if mech == mechOAuthBearer {
		gs2, rest, found := strings.Cut(s, "\x01")
		if !found {
			return "", "", false
		}
		for _, f := range strings.Split(gs2, ",") {
			if v, found := strings.CutPrefix(f, "a="); found {
				user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(v) // RFC 5801 saslname
			}
		}
		s = rest
	}
	for _, kv := range strings.Split(s, "\x01") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			scheme, t, _ := strings.Cut(v, " ")
			if strings.EqualFold(scheme, "Bearer") {
				token = t
			}
		}
	}
	return user, token, user != "" && token != ""
}
