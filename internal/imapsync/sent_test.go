package imapsync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/postdesk/postdesk/internal/mailtest"
)

func sentMessage(id string) []byte {
	return fmt.Appendf(nil, "From: <support@example.com>\r\nTo: <jane@example.net>\r\nSubject: Re: %s\r\n"+
		"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s>\r\n\r\nOur reply.\r\n", id, id)
}

// checkSent appends three messages, finds them by Message-ID, does not find
// others (a substring of one appended, one differing in case), and reads
// the folder back with the given helper.
func checkSent(t *testing.T, cfg Config, wantName string, readBack func(folder string) []mailtest.Message) {
	t.Helper()
	f, err := OpenSent(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name() != wantName {
		t.Errorf("Name() = %q, want %q", f.Name(), wantName)
	}
	date := time.Date(2026, 11, 3, 9, 30, 0, 0, time.UTC) // in the past: a future date came back from Dovecot as the time of the APPEND
	for _, id := range []string{"reply-1.ticket-7@postdesk.test", "xreply-2.ticket-7@postdesk.test", "Reply-4.Ticket-7@postdesk.test"} {
		if err := f.Append(t.Context(), sentMessage(id), date); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]bool{
		"reply-1.ticket-7@postdesk.test":  true,
		"xreply-2.ticket-7@postdesk.test": true,
		"reply-2.ticket-7@postdesk.test":  false, // a substring of the second
		"reply-3.ticket-7@postdesk.test":  false,
		// SEARCH matches case-insensitively (Dovecot does); the check of
		// the field itself does not.
		"reply-4.ticket-7@postdesk.test": false,
		"Reply-4.Ticket-7@postdesk.test": true,
	} {
		got, err := f.HasMessageID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("HasMessageID(%q) = %v, want %v", id, got, want)
		}
	}
	if _, err := f.HasMessageID(t.Context(), "<reply-1.ticket-7@postdesk.test>"); !errors.Is(err, ErrBadMessageID) {
		t.Errorf("HasMessageID with angle brackets: %v, want ErrBadMessageID", err)
	}
	if readBack == nil {
		return
	}
	msgs := readBack(f.Name())
	if len(msgs) != 3 {
		t.Fatalf("%s holds %d messages, want 3", f.Name(), len(msgs))
	}
	for _, m := range msgs {
		if !slices.Contains(m.Flags, `\Seen`) {
			t.Errorf("flags %v, want \\Seen", m.Flags)
		}
		if !m.InternalDate.Equal(date) {
			t.Errorf("internal date %v, want %v", m.InternalDate, date)
		}
	}
}

func TestDovecotSent(t *testing.T) {
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{"pw@example.com": "secret"}})
	readBack := func(user string) func(string) []mailtest.Message {
		return func(folder string) []mailtest.Message {
			msgs, err := stack.Messages(t.Context(), user, folder)
			if err != nil {
				t.Fatal(err)
			}
			return msgs
		}
	}
	t.Run("xoauth2", func(t *testing.T) {
		cfg := Config{
			Addr: stack.IMAPAddr, Security: SecurityNone, Username: dovecotUser, Auth: AuthXOAuth2,
			Token:  func(context.Context) (string, error) { return stack.Token(dovecotUser) },
			Logger: testLogger(t),
		}
		checkSent(t, cfg, "Sent", readBack(dovecotUser))
	})
	t.Run("password", func(t *testing.T) {
		cfg := Config{
			Addr: stack.IMAPAddr, Security: SecurityNone, Username: "pw@example.com", Auth: AuthPlain,
			Password: func(context.Context) (string, error) { return "secret", nil },
			Logger:   testLogger(t),
		}
		checkSent(t, cfg, "Sent", readBack("pw@example.com"))
	})
	t.Run("revoked token", func(t *testing.T) {
		const user = "revoked@example.com"
		stale, err := stack.Token(user)
		if err != nil {
			t.Fatal(err)
		}
		if err := stack.IdP.Revoke(user); err != nil {
			t.Fatal(err)
		}
		cfg := Config{
			Addr: stack.IMAPAddr, Security: SecurityNone, Username: user, Auth: AuthXOAuth2,
			Token:  func(context.Context) (string, error) { return stale, nil },
			Logger: testLogger(t),
		}
		_, err = OpenSent(t.Context(), cfg)
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("OpenSent with a revoked token = %v, want *AuthError", err)
		}
		cfg.RefreshToken = func(context.Context) (string, error) { return stack.Token(user) }
		f, err := OpenSent(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
}

// specialUseServer is go-imap's in-memory server with RFC 6154 special-use
// attributes, which imapmemserver (beta.8) does not keep: Create records
// them and List answers from that record.
type specialUseServer struct {
	addr string
	mu   sync.Mutex
	uses map[string][]imap.MailboxAttr // every mailbox but INBOX
}

func startSpecialUse(t *testing.T, mailboxes map[string][]imap.MailboxAttr) *specialUseServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	mem.AddUser(user)
	srv := &specialUseServer{uses: map[string][]imap.MailboxAttr{}}
	for _, name := range append([]string{"INBOX"}, slices.Sorted(maps.Keys(mailboxes))...) {
		if err := user.Create(name, nil); err != nil {
			t.Fatal(err)
		}
		if name != "INBOX" {
			srv.uses[name] = mailboxes[name]
		}
	}
	is := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &specialUseSession{Session: mem.NewSession(), srv: srv}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.addr = ln.Addr().String()
	go is.Serve(ln)
	t.Cleanup(func() { is.Close() })
	return srv
}

type specialUseSession struct {
	imapserver.Session
	srv *specialUseServer
}

func (s *specialUseSession) Create(name string, opts *imap.CreateOptions) error {
	if err := s.Session.Create(name, opts); err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.uses[name] = nil
	if opts != nil {
		s.srv.uses[name] = opts.SpecialUse
	}
	return nil
}

// List answers LIST "" "*" (the only form OpenSent sends).
func (s *specialUseSession) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if ref != "" || len(patterns) != 1 || patterns[0] != "*" {
		return fmt.Errorf("unexpected LIST %q %q", ref, patterns)
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if err := w.WriteList(&imap.ListData{Mailbox: "INBOX", Delim: '/'}); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(s.srv.uses)) {
		d := &imap.ListData{Mailbox: name, Delim: '/'}
		if opts != nil && opts.ReturnSpecialUse {
			d.Attrs = s.srv.uses[name]
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func (srv *specialUseServer) config(t *testing.T) Config {
	return Config{
		Addr: srv.addr, Security: SecurityNone, Username: testUser, Auth: AuthPlain,
		Password: func(context.Context) (string, error) { return testPassword, nil },
		Logger:   testLogger(t),
	}
}

func TestSentSpecialUse(t *testing.T) {
	t.Parallel()
	t.Run("a \\Sent folder with another name", func(t *testing.T) {
		t.Parallel()
		srv := startSpecialUse(t, map[string][]imap.MailboxAttr{
			"Archive":    {imap.MailboxAttrArchive},
			"Sent":       nil,
			"Sent Items": {imap.MailboxAttrSent},
		})
		checkSent(t, srv.config(t), "Sent Items", nil)
	})
	t.Run("created with \\Sent when missing", func(t *testing.T) {
		t.Parallel()
		srv := startSpecialUse(t, map[string][]imap.MailboxAttr{"Drafts": {imap.MailboxAttrDrafts}})
		checkSent(t, srv.config(t), DefaultSentName, nil)
		srv.mu.Lock()
		uses, ok := srv.uses[DefaultSentName]
		srv.mu.Unlock()
		if !ok || !slices.Equal(uses, []imap.MailboxAttr{imap.MailboxAttrSent}) {
			t.Errorf("created %q with %v, want [\\Sent]", DefaultSentName, uses)
		}
		// Found by its attribute next time, not created again.
		checkSentAgain(t, srv.config(t))
	})
}

// checkSentAgain opens the Sent folder once more and finds the first
// message appended by checkSent.
func checkSentAgain(t *testing.T, cfg Config) {
	t.Helper()
	f, err := OpenSent(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := f.HasMessageID(t.Context(), "reply-1.ticket-7@postdesk.test"); err != nil || !ok {
		t.Errorf("HasMessageID after reopening = %v, %v", ok, err)
	}
}

func TestChooseSent(t *testing.T) {
	t.Parallel()
	ld := func(name string, attrs ...imap.MailboxAttr) *imap.ListData {
		return &imap.ListData{Mailbox: name, Delim: '/', Attrs: attrs}
	}
	tests := []struct {
		name   string
		list   []*imap.ListData
		want   string
		exists bool
	}{
		{"empty", nil, "Sent", false},
		{"special use wins over the name", []*imap.ListData{ld("Sent"), ld("[Gmail]/Sent Mail", imap.MailboxAttrSent)}, "[Gmail]/Sent Mail", true},
		{"attribute case", []*imap.ListData{ld("Gesendet", `\SENT`)}, "Gesendet", true},
		{"noselect \\Sent skipped", []*imap.ListData{ld("Old", imap.MailboxAttrSent, imap.MailboxAttrNoSelect), ld("Sent Items")}, "Sent Items", true},
		{"name order", []*imap.ListData{ld("Sent Messages"), ld("sent")}, "sent", true},
		{"microsoft without special use", []*imap.ListData{ld("INBOX"), ld("Sent Items")}, "Sent Items", true},
		{"none", []*imap.ListData{ld("INBOX"), ld("Drafts", imap.MailboxAttrDrafts)}, "Sent", false},
	}
	for _, tt := range tests {
		got, exists := chooseSent(tt.list)
		if got != tt.want || exists != tt.exists {
			t.Errorf("%s: chooseSent = %q %v, want %q %v", tt.name, got, exists, tt.want, tt.exists)
		}
	}
}
