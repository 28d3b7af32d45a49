package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests are the Done-when of "a mailbox added in Admin -> Emails is
// fetched": a real Chromium drives the pages, a real Dovecot holds the
// mail (over TLS), the stand-in Microsoft sign-in checks the tokens, and
// the sync runs as serve runs it. Nothing writes mailbox rows but the pages.

const (
	helpAddr = "help@corp.example"
	helpPass = "s3cret-imap"
)

// mailEnv is Postdesk's pages, its OAuth service, its sync and a Dovecot.
type mailEnv struct {
	*env
	stack  *mailtest.Stack
	idp    *fakeidp.IdP
	idpURL string
	sync   *mailsync.Syncer
	port   string // Dovecot's IMAP-over-TLS port
}

func newMailEnv(t *testing.T, dialect string) *mailEnv {
	t.Helper()
	ctx := context.Background()
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: supportAddr, Name: "Support"}},
		RequireConsent: true, SigningKey: idpKey()})
	stack := mailtest.Start(t, mailtest.Options{IdP: idp, TLS: true, PasswordUsers: map[string]string{helpAddr: helpPass}})
	db := storetest.Open(t, dialect)
	m := &mailEnv{env: &env{t: t, db: db, logs: &logtest.Buffer{}}, stack: stack, idp: idp}
	var err error
	if m.user, _, err = auth.CreateUser(ctx, db, adminEmail, "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	m.srv = httptest.NewUnstartedServer(nil)
	redirect := "http://" + m.srv.Listener.Addr().String() + "/oauth/callback"
	idp.AddApp(fakeidp.App{ClientID: idpClientID, Name: "Postdesk", ClientSecret: idpSecret, RedirectURIs: []string{redirect}})
	m.idpURL = strings.Replace(stack.IdPURL, "127.0.0.1", "localhost", 1)
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	// The provider's IMAP server is the test's Dovecot, by configuration
	// (what POSTDESK_MICROSOFT_IMAP_HOST / _PORT set), not by writing rows.
	host, port, _ := net.SplitHostPort(stack.IMAPSAddr)
	m.port = port
	p := oauth.Microsoft("organizations", m.idpURL)
	p.ClientID, p.ClientSecret = idpClientID, idpSecret
	p.IMAPHost = host
	p.IMAPPort, _ = strconv.Atoi(port)
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := oauth.New(oauth.Config{DB: db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: redirect, Logger: log,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	admin := desk.NewAdmin(db, vault, desk.Providers([]oauth.Provider{p}))
	admin.ProbeTLS = stack.TLSConfig()
	if m.h, err = New(Options{DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test", Logger: log, OAuth: svc, Admin: admin}); err != nil {
		t.Fatal(err)
	}
	m.srv.Config.Handler = m.h
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	m.sync = startSync(t, mailsync.Options{DB: db, Ingest: ingest.New(db, ingest.Options{}), OAuth: svc, Passwords: store.MailboxPasswords(db, vault), Logger: log,
		Owner: "web-test", Round: 200 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) {
			cfg.TLSConfig = stack.TLSConfig()
			cfg.BackoffMin, cfg.BackoffMax, cfg.PollInterval = 100*time.Millisecond, time.Second, 300*time.Millisecond
		}})
	return m
}

// startSync runs the mail sync as serve does until the test ends.
func startSync(t *testing.T, opt mailsync.Options) *mailsync.Syncer {
	t.Helper()
	s, err := mailsync.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// customerMail is a customer's email to rcpt.
func customerMail(rcpt, subject string) []byte {
	return []byte("From: Carla Customer <carla@customer.example>\r\nTo: " + rcpt + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(strings.ToLower(subject), " ", ".") + "@customer.example>\r\nDate: " +
		time.Now().UTC().Format(time.RFC1123Z) + "\r\n\r\nHello, " + subject + ".\r\n")
}

// subjects lists the subjects of a mailbox's tickets.
func (m *mailEnv) subjects(mailboxID int64) []string {
	m.t.Helper()
	list, err := m.db.Tickets(context.Background(), store.TicketFilter{MailboxID: mailboxID, Limit: 500})
	if err != nil {
		m.t.Fatal(err)
	}
	var out []string
	for _, tk := range list {
		out = append(out, tk.Subject)
	}
	return out
}

// waitTicket waits until the mailbox has a ticket with subject.
func (m *mailEnv) waitTicket(mailboxID int64, subject string) {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range m.subjects(mailboxID) {
			if s == subject {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("no ticket %q after 30 s; tickets: %q\n%s", subject, m.subjects(mailboxID), m.logs.String())
}

// noTicket checks, after the sync had time to fetch it, that subject did
// not become a ticket.
func (m *mailEnv) noTicket(mailboxID int64, subject string) {
	m.t.Helper()
	time.Sleep(2 * time.Second) // ten sync rounds and several polls
	for _, s := range m.subjects(mailboxID) {
		if s == subject {
			m.t.Fatalf("%q became a ticket", subject)
		}
	}
}

// waitRunning waits until the sync runs (or no longer runs) the mailbox.
func (m *mailEnv) waitRunning(mailboxID int64, want bool) {
	m.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		running := false
		for _, id := range m.sync.Running() {
			running = running || id == mailboxID
		}
		if running == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.t.Fatalf("mailbox %d running = %v after 15 s", mailboxID, !want)
}

// activity reads a mailbox's recent activity (folded in a <details>).
func activity(t *testing.T, ctx context.Context, mailboxID int64) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`Array.from(document.querySelectorAll('#activity-%d li')).map(e => e.textContent.replace(/\s+/g, ' ').trim()).join(' | ')`, mailboxID))
}

// setFields sets form fields by id with JavaScript.
func setFields(t *testing.T, ctx context.Context, values map[string]string) {
	t.Helper()
	for id, v := range values {
		eval[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %q; return true })()`, id, v))
	}
}

// TestBrowserAddMicrosoftMailboxIsFetched: Add a mailbox, sign in and
// consent at the stand-in, and mail delivered to it in Dovecot becomes a
// ticket.
func TestBrowserAddMicrosoftMailboxIsFetched(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			m := newMailEnv(t, dialect)
			o := &oauthEnv{env: m.env, idpURL: m.idpURL}
			ctx := browsertest.New(t)
			o.browserSignIn(t, ctx)
			visit(t, ctx, m.srv.URL+"/admin/emails")
			setFields(t, ctx, map[string]string{"add-address": supportAddr, "add-name": "Support"})
			click(t, ctx, `.add-form button[type="submit"]`)
			o.pickAccount(t, ctx, supportAddr)
			if loc := location(t, ctx); !strings.HasPrefix(loc, m.idpURL) {
				t.Fatalf("no consent page: at %s", loc)
			}
			if status := click(t, ctx, `button[name="action"][value="accept"]`); status != 200 {
				t.Fatalf("after consent: status %d", status)
			}
			mb, err := m.db.MailboxByAddress(context.Background(), supportAddr)
			if err != nil {
				t.Fatal(err)
			}
			if got := chip(t, ctx, mb.ID); got != "Connected" {
				t.Fatalf("chip = %q", got)
			}
			if got := facts(t, ctx, mb.ID); !strings.Contains(got, "Server: 127.0.0.1:"+m.port+" (TLS, XOAUTH2)") {
				t.Errorf("facts = %q", got)
			}
			if err := m.stack.Deliver(context.Background(), supportAddr, customerMail(supportAddr, "Printer on fire")); err != nil {
				t.Fatal(err)
			}
			m.waitTicket(mb.ID, "Printer on fire")
			visit(t, ctx, m.srv.URL+"/admin/emails")
			if got := activity(t, ctx, mb.ID); !strings.Contains(got, "Fetched 1 message") || !strings.Contains(got, "Connected (signed in as support@example.com)") {
				t.Errorf("activity = %q", got)
			}
			if dialect == "sqlite" {
				browsertest.Screenshot(t, ctx, "emails-microsoft-fetched")
				browsertest.Axe(t, ctx, "Emails, a Microsoft mailbox fetched")
			}
		})
	}
}

// TestBrowserPasswordMailboxLifecycle: a password mailbox added from the
// page (a wrong password caught by Test connection in the server's words),
// fetched; then Edit (folders), Pause, Resume and Remove each change what
// the sync does, and Remove keeps the tickets.
func TestBrowserPasswordMailboxLifecycle(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			testPasswordMailboxLifecycle(t, dialect)
		})
	}
}

func testPasswordMailboxLifecycle(t *testing.T, dialect string) {
	m := newMailEnv(t, dialect)
	bg := context.Background()
	o := &oauthEnv{env: m.env}
	ctx := browsertest.New(t)
	shot := func(name string) {
		if dialect == "sqlite" {
			browsertest.Screenshot(t, ctx, name)
		}
	}
	o.browserSignIn(t, ctx)
	visit(t, ctx, m.srv.URL+"/admin/emails")
	click(t, ctx, "#add-password")
	// Several mistakes are all shown at once, each beside its field.
	setFields(t, ctx, map[string]string{"f-address": "help", "f-name": "Help", "f-imap_host": "127.0.0.1", "f-imap_port": "99999",
		"f-initial_days": "-5", "f-password": "wrong-password"})
	if status := click(t, ctx, "#test-connection"); status != 422 {
		t.Errorf("test with three mistakes: status %d", status)
	}
	for id, want := range map[string]string{"#f-address-error": `"help" is not an email address.`, "#f-imap_port-error": "Ports must be between 1 and 65535.",
		"#f-initial_days-error": "Initial days must be between 0 and 3650."} {
		if got := text(t, ctx, id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	shot("emails-password-three-mistakes")
	setFields(t, ctx, map[string]string{"f-address": helpAddr, "f-name": "Help", "f-imap_host": "127.0.0.1", "f-imap_port": m.port,
		"f-initial_days": "14", "f-password": "wrong-password"})
	if status := click(t, ctx, "#test-connection"); status != 422 {
		t.Errorf("test with a wrong password: status %d", status)
	}
	if got := text(t, ctx, "#f-password-error"); !strings.Contains(got, "The server refused the sign-in as "+helpAddr) || !strings.Contains(got, "[AUTHENTICATIONFAILED] Authentication failed.") {
		t.Errorf("wrong password error = %q", got)
	}
	shot("emails-password-test-refused")
	browsertest.Axe(t, ctx, "add a password mailbox, refused by Test connection")
	if _, err := m.db.MailboxByAddress(bg, helpAddr); err == nil {
		t.Fatal("Test connection saved the mailbox")
	}
	setFields(t, ctx, map[string]string{"f-password": helpPass})
	if status := click(t, ctx, "#test-connection"); status != 200 {
		t.Errorf("test with the right password: status %d", status)
	}
	if got := text(t, ctx, "#test-ok"); !strings.HasPrefix(got, "Connection works: signed in to 127.0.0.1 as "+helpAddr+" and found INBOX") {
		t.Errorf("test ok = %q", got)
	}
	setFields(t, ctx, map[string]string{"f-password": helpPass})
	click(t, ctx, "#add-mailbox")
	mb, err := m.db.MailboxByAddress(bg, helpAddr)
	if err != nil {
		t.Fatalf("not added: %v\n%s", err, text(t, ctx, "main"))
	}
	if got := text(t, ctx, ".flash"); got != "Added "+helpAddr+". Its mail is fetched within a minute." {
		t.Errorf("flash = %q", got)
	}
	m.waitRunning(mb.ID, true)
	if err := m.stack.Deliver(bg, helpAddr, customerMail(helpAddr, "First question")); err != nil {
		t.Fatal(err)
	}
	m.waitTicket(mb.ID, "First question")

	// Edit: a message in Junk is fetched once Junk is one of the folders.
	if err := m.stack.Append(bg, helpAddr, "", "Junk", [][]byte{customerMail(helpAddr, "Filed as junk")}); err != nil {
		t.Fatal(err)
	}
	m.noTicket(mb.ID, "Filed as junk")
	visit(t, ctx, fmt.Sprintf("%s/admin/emails/%d/edit", m.srv.URL, mb.ID))
	setFields(t, ctx, map[string]string{"f-folders": "INBOX\nJunk", "f-signature": "-- \nThe help desk", "f-initial_days": "14"})
	click(t, ctx, `.mailbox-form button[type="submit"]`)
	if got := text(t, ctx, ".flash"); got != "Saved the settings of "+helpAddr+"." {
		t.Errorf("flash after edit = %q", got)
	}
	m.waitTicket(mb.ID, "Filed as junk")
	if mbNow, _ := m.db.Mailbox(bg, mb.ID); mbNow.Signature != "-- \nThe help desk" {
		t.Errorf("signature = %q", mbNow.Signature)
	}

	// A refused value is shown beside its field, in desk's words.
	visit(t, ctx, fmt.Sprintf("%s/admin/emails/%d/edit", m.srv.URL, mb.ID))
	setFields(t, ctx, map[string]string{"f-initial_days": "-5"})
	if status := click(t, ctx, `.mailbox-form button[type="submit"]`); status != 422 {
		t.Errorf("bad initial days: status %d", status)
	}
	if got := text(t, ctx, "#f-initial_days-error"); got != "Initial days must be between 0 and 3650." {
		t.Errorf("error beside initial days = %q", got)
	}
	browsertest.Axe(t, ctx, "edit a mailbox, with an error beside a field")

	// Pause: nothing is fetched; Resume: it is, from where it stopped.
	visit(t, ctx, m.srv.URL+"/admin/emails")
	click(t, ctx, fmt.Sprintf("#mailbox-%d .pause-form button", mb.ID))
	if got := chip(t, ctx, mb.ID); got != "Paused" {
		t.Errorf("chip after pause = %q", got)
	}
	shot("emails-paused")
	browsertest.Axe(t, ctx, "Emails, a paused mailbox")
	m.waitRunning(mb.ID, false)
	if err := m.stack.Deliver(bg, helpAddr, customerMail(helpAddr, "While paused")); err != nil {
		t.Fatal(err)
	}
	m.noTicket(mb.ID, "While paused")
	click(t, ctx, fmt.Sprintf("#mailbox-%d .pause-form button", mb.ID))
	if got := text(t, ctx, ".flash"); got != "Resumed "+helpAddr+": fetching again from where it stopped." {
		t.Errorf("flash after resume = %q", got)
	}
	m.waitTicket(mb.ID, "While paused")
	visit(t, ctx, m.srv.URL+"/admin/emails")
	if got := activity(t, ctx, mb.ID); !strings.Contains(got, "Paused") || !strings.Contains(got, "Resumed") || !strings.Contains(got, "Settings changed: folders INBOX, Junk") {
		t.Errorf("activity = %q", got)
	}
	shot("emails-password-fetched")
	browsertest.Axe(t, ctx, "Emails, with recent activity")
	browsertest.AxeAt(t, ctx, "Emails, with recent activity, at phone width", 375, 740)

	// The server's password changes: the mailbox stops with a problem on
	// its card; the new password from Edit fetches again, and the notice
	// shows as resolved without a click.
	if err := m.stack.AddPasswordUser(helpAddr, "new-"+helpPass); err != nil {
		t.Fatal(err)
	}
	if err := m.stack.Kick(bg, helpAddr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if au, err := m.db.MailboxAuth(bg, mb.ID); err == nil && au.State == store.AuthNeedsReauth {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused password was not recorded\n%s", m.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	visit(t, ctx, m.srv.URL+"/admin/emails")
	if got := chip(t, ctx, mb.ID); got != "Password refused" {
		t.Errorf("chip after the password changed = %q", got)
	}
	shot("emails-password-refused")
	browsertest.Axe(t, ctx, "Emails, a refused password")
	visit(t, ctx, fmt.Sprintf("%s/admin/emails/%d/edit", m.srv.URL, mb.ID))
	setFields(t, ctx, map[string]string{"f-password": "new-" + helpPass})
	click(t, ctx, `.mailbox-form button[type="submit"]`)
	if err := m.stack.Deliver(bg, helpAddr, customerMail(helpAddr, "After the new password")); err != nil {
		t.Fatal(err)
	}
	m.waitTicket(mb.ID, "After the new password")
	visit(t, ctx, m.srv.URL+"/admin/emails")
	if got := text(t, ctx, "#notices .notice-needs_reauth .notice-resolution"); !strings.Contains(got, "Resolved Password changed") {
		t.Errorf("notice after the new password = %q (%s)", got, text(t, ctx, "#notices"))
	}
	if got := chip(t, ctx, mb.ID); got != "Password" {
		t.Errorf("chip after the new password = %q", got)
	}

	// Remove, after a confirmation that says the tickets stay.
	tickets := m.subjects(mb.ID)
	click(t, ctx, fmt.Sprintf("#mailbox-%d .remove-link", mb.ID))
	if got := text(t, ctx, ".confirm-page"); !strings.Contains(got, fmt.Sprintf("Its %d tickets stay", len(tickets))) {
		t.Errorf("confirmation = %q", got)
	}
	shot("emails-remove-confirm")
	browsertest.Axe(t, ctx, "remove a mailbox: the confirmation")
	click(t, ctx, "#confirm-remove")
	if got := text(t, ctx, ".flash"); !strings.Contains(got, "Its tickets stay") {
		t.Errorf("flash after remove = %q", got)
	}
	if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('#mailbox-%d').length`, mb.ID)); n != 0 {
		t.Error("the removed mailbox is still listed")
	}
	m.waitRunning(mb.ID, false)
	if err := m.stack.Deliver(bg, helpAddr, customerMail(helpAddr, "After removal")); err != nil {
		t.Fatal(err)
	}
	m.noTicket(mb.ID, "After removal")
	if got := m.subjects(mb.ID); len(got) != len(tickets) {
		t.Errorf("tickets after removal = %q, want %q", got, tickets)
	}
}
