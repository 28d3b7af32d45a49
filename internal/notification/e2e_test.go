package notification_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/notification"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const (
	e2eClientID = "postdesk-notify-test"
	e2eRedirect = "https://desk.example.test/oauth/callback"
)

// liveEnv is a whole Postdesk running on real Postfix and Dovecot, with
// the stand-in Microsoft: OAuth, the outbox sender and its job engine, the
// event dispatcher and the Mailer running as serve runs them.
type liveEnv struct {
	t      *testing.T
	ctx    context.Context
	stack  *mailtest.Stack
	idp    *fakeidp.IdP
	db     *store.DB
	vault  *store.Vault
	oauth  *oauth.Service
	admin  *desk.Admin
	desk   *desk.Desk
	ingest *ingest.Ingester
	sender *jobs.Sender
	logs   *logtest.Buffer // what the sender logged, from Info up
}

func newLiveEnv(t *testing.T, dialect string, accounts ...string) *liveEnv {
	t.Helper()
	opts := fakeidp.Options{Clock: &fakeidp.Clock{}}
	for _, a := range accounts {
		opts.Accounts = append(opts.Accounts, fakeidp.Account{Address: a, Name: a})
	}
	idp := fakeidp.New(opts)
	idp.AddApp(fakeidp.App{ClientID: e2eClientID, Name: "Postdesk", ClientSecret: "s3cret", RedirectURIs: []string{e2eRedirect}})
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, IdP: idp})
	e := &liveEnv{t: t, ctx: context.Background(), stack: stack, idp: idp, db: storetest.Open(t, dialect)}
	if err := jobs.Migrate(e.ctx, e.db, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", stack.IdPURL)
	p.ClientID, p.ClientSecret = e2eClientID, "s3cret"
	p.MailHosts = []string{"127.0.0.1"}
	e.logs = &logtest.Buffer{}
	log := slog.New(slog.NewMultiHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		slog.NewTextHandler(e.logs, nil)))
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: e.vault, Providers: []oauth.Provider{p}, RedirectURL: e2eRedirect,
		Now: idp.Clock().Now, Sleep: func(context.Context, time.Duration) error { return nil }, Logger: log,
		OnAuthorized: func(ctx context.Context, tx *store.Tx, id int64) error { return e.sender.Authorized(ctx, tx, id) }})
	if err != nil {
		t.Fatal(err)
	}
	e.sender, err = jobs.NewSender(jobs.SenderOptions{DB: e.db, OAuth: e.oauth, Passwords: store.MailboxPasswords(e.db, e.vault),
		Logger: log, Sweep: time.Second, Backoff: []time.Duration{200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(e.db, jobs.Options{Logger: log, Outbox: e.sender, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	events, err := jobs.NewDispatcher(jobs.DispatcherOptions{DB: e.db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// As serve wires them; the default loop interval (10 s) and a short
	// batching window.
	mailer, err := notification.New(notification.Options{DB: e.db, OAuth: e.oauth, Enqueuer: e.sender, BaseURL: baseURL,
		Window: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	events.Register(mailer)
	e.db.OnEventsCommitted(events.Wake)
	if err := runner.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.sender.Start()
	events.Start()
	mailer.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		mailer.Stop(ctx)
		events.Stop(ctx)
		e.sender.Stop(ctx)
		runner.Stop(ctx)
	})
	e.desk = desk.New(e.db, desk.WithEnqueuer(e.sender))
	e.admin = desk.NewAdmin(e.db, e.vault, desk.Providers([]oauth.Provider{p}))
	e.ingest = ingest.New(e.db, ingest.Options{})
	return e
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q", addr)
	}
	return host, n
}

// mailbox adds an OAuth (Microsoft) mailbox served by the stack and signs
// it in at the stand-in.
func (e *liveEnv) mailbox(address string) store.Mailbox {
	e.t.Helper()
	imapHost, imapPort := splitHostPort(e.t, e.stack.IMAPAddr)
	smtpHost, smtpPort := splitHostPort(e.t, e.stack.SubmissionAddr)
	mb, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: address, Name: "Example Support", Auth: "microsoft",
		IMAPHost: imapHost, IMAPPort: imapPort, IMAPSecurity: "none", SMTPHost: smtpHost, SMTPPort: smtpPort, SMTPSecurity: "none"})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.oauth.Begin(e.ctx, mb.ID, 1, false)
	if err != nil {
		e.t.Fatal(err)
	}
	cb, err := e.idp.SignIn(u, mb.Address)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.oauth.Complete(e.ctx, 1, cb.Query()); err != nil {
		e.t.Fatal(err)
	}
	return mb
}

func (e *liveEnv) user(email, role string) store.User {
	e.t.Helper()
	var u store.User
	if err := e.db.Write(e.ctx, func(tx *store.Tx) (err error) {
		u, err = tx.CreateUser(e.ctx, store.User{Email: email, Name: strings.Split(email, "@")[0], Role: role, PasswordHash: "x"})
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// sync runs mail sync of every mailbox until the test ends.
func (e *liveEnv) sync() {
	e.t.Helper()
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: e.ingest, OAuth: e.oauth, Passwords: store.MailboxPasswords(e.db, e.vault),
		Owner: "test-" + strconv.FormatInt(time.Now().UnixNano(), 36), Round: 200 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) { cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, time.Second }})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// inbox parses the messages in user's Dovecot INBOX.
func (e *liveEnv) inbox(user string) []*mailmsg.Message {
	e.t.Helper()
	msgs, err := e.stack.Messages(e.ctx, user, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*mailmsg.Message
	for _, m := range msgs {
		p, err := mailmsg.Parse(strings.NewReader(string(m.Raw)), mailmsg.ParseOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// waitInbox waits until user's INBOX holds n messages.
func (e *liveEnv) waitInbox(user string, n int, within time.Duration) []*mailmsg.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, within)
	defer cancel()
	if _, err := e.stack.WaitMessages(ctx, user, "INBOX", n); err != nil {
		e.t.Fatalf("%s: waiting for %d messages: %v", user, n, err)
	}
	return e.inbox(user)
}

// An agent takes a ticket; the customer's answer, delivered by SMTP to the
// support mailbox in Dovecot and fetched by mail sync, joins the ticket and
// sends the agent a notification that arrives in the agent's Dovecot
// mailbox, from the support mailbox, as automatic mail, never to the
// customer and never on the ticket.
func TestCustomerAnswerReachesAgentsMailbox(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			const support, customer, agent = "support@example.com", "jane.cooper@customer.test", "ann@helpdesk.test"
			e := newLiveEnv(t, dialect, support)
			mb := e.mailbox(support)
			ann := e.user(agent, store.RoleAgent) // default choices: answers and assignments
			e.sync()

			first := fmt.Sprintf("From: Jane Cooper <%s>\r\nTo: %s\r\nSubject: Printer on fire\r\nDate: %s\r\nMessage-ID: <q1@customer.test>\r\n\r\nIt is burning.\r\n",
				customer, support, time.Now().Format(time.RFC1123Z))
			if err := e.stack.SendSMTP(e.ctx, customer, []string{support}, []byte(first)); err != nil {
				t.Fatal(err)
			}
			ticket := waitTicket(t, e, mb.ID, 1)
			if _, err := e.desk.Take(e.ctx, ticket, ann); err != nil {
				t.Fatal(err)
			}
			answer := fmt.Sprintf("From: Jane Cooper <%s>\r\nTo: %s\r\nSubject: Re: Printer on fire\r\nDate: %s\r\nMessage-ID: <a1@customer.test>\r\nIn-Reply-To: <q1@customer.test>\r\n\r\nNow it is smoking.\r\n",
				customer, support, time.Now().Format(time.RFC1123Z))
			sentAt := time.Now()
			if err := e.stack.SendSMTP(e.ctx, customer, []string{support}, []byte(answer)); err != nil {
				t.Fatal(err)
			}
			got := e.waitInbox(agent, 1, 30*time.Second)
			t.Logf("%s: the customer's answer reached the agent's mailbox as a notification %.1f s after it was sent (batching window 1 s)",
				dialect, time.Since(sentAt).Seconds())
			n := got[0]
			if n.Subject != fmt.Sprintf("Jane Cooper <%s> answered on #%d: Printer on fire", customer, ticket) ||
				len(n.From) != 1 || n.From[0].Address != support || n.From[0].Name != "Postdesk" || len(n.To) != 1 || n.To[0].Address != agent ||
				n.Auto == "" || !strings.Contains(n.Text, fmt.Sprintf("https://desk.example.test/tickets/%d", ticket)) {
				t.Errorf("notification: subject %q from %v to %v auto %q\n%s", n.Subject, n.From, n.To, n.Auto, n.Text)
			}
			msgs, err := e.db.TicketMessages(e.ctx, ticket)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 2 {
				t.Errorf("the ticket shows %d messages, want the two emails", len(msgs))
			}
			time.Sleep(2 * time.Second) // a second notification or a copy to the customer would be here by now
			if n := len(e.inbox(agent)); n != 1 {
				t.Errorf("the agent has %d notifications, want 1 (taking the ticket herself tells her nothing)", n)
			}
			if n := len(e.inbox(customer)); n != 0 {
				t.Errorf("the customer got %d messages", n)
			}
			// The sender's log names it a notification, not a reply.
			if logs := e.logs.String(); !strings.Contains(logs, `msg="notification sent"`) || strings.Contains(logs, `msg="reply sent"`) {
				t.Errorf("the sender's log does not call the notification one:\n%s", logs)
			}
		})
	}
}

func waitTicket(t *testing.T, e *liveEnv, mailboxID int64, n int) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := e.db.Tickets(e.ctx, store.TicketFilter{MailboxID: mailboxID})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) >= n {
			return list[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket after 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Mailbox A's token is revoked at the stand-in and its next refresh fails:
// every admin receives ONE email about it, through mailbox B, within a
// minute (the time is printed), while mail sync also meets the refusal.
func TestRevokedTokenEmailsEveryAdmin(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			const boxA, boxB = "a@example.com", "b@example.com"
			admins := []string{"root@helpdesk.test", "ops@helpdesk.test"}
			e := newLiveEnv(t, dialect, boxA, boxB)
			mbA := e.mailbox(boxA)
			mbB := e.mailbox(boxB)
			for _, a := range admins {
				e.user(a, store.RoleAdmin)
			}
			e.user("agent@helpdesk.test", store.RoleAgent)
			e.sync()
			time.Sleep(500 * time.Millisecond) // both mailboxes connected and idle

			if err := e.idp.Revoke(boxA); err != nil {
				t.Fatal(err)
			}
			e.idp.Clock().Advance(2 * time.Minute) // past "refreshed a moment ago"
			start := time.Now()
			if err := e.oauth.RefreshNow(e.ctx, mbA.ID); err == nil {
				t.Fatal("the refresh of a revoked grant succeeded")
			}
			var worst time.Duration
			for _, a := range admins {
				got := e.waitInbox(a, 1, time.Minute)
				took := time.Since(start)
				worst = max(worst, took)
				m := got[0]
				if m.Subject != "Postdesk: a@example.com needs reauthentication" || len(m.From) != 1 || m.From[0].Address != mbB.Address ||
					m.Auto == "" || !strings.Contains(m.Text, "https://desk.example.test/admin/emails#notices") {
					t.Errorf("%s: subject %q from %v auto %q\n%s", a, m.Subject, m.From, m.Auto, m.Text)
				}
			}
			t.Logf("%s: every admin received the email about the revoked token %.1f s after the failing refresh (must be under 60 s)", dialect, worst.Seconds())
			if worst > time.Minute {
				t.Errorf("took %s, want within a minute", worst)
			}
			// Sync meets the refusal too; still one email each.
			time.Sleep(3 * time.Second)
			for _, a := range append(admins, "agent@helpdesk.test") {
				want := 1
				if a == "agent@helpdesk.test" {
					want = 0
				}
				if n := len(e.inbox(a)); n != want {
					t.Errorf("%s has %d emails, want %d", a, n, want)
				}
			}
			for _, addr := range []string{boxA, boxB} {
				if n := len(e.inbox(addr)); n != 0 {
					t.Errorf("support mailbox %s received %d notifications", addr, n)
				}
			}
		})
	}
}
