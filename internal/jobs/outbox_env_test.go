package jobs_test

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
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const (
	outboxClientID = "postdesk-outbox-test"
	outboxRedirect = "https://desk.example.test/oauth/callback"
	supportAddr    = "support@example.com"
	customerAddr   = "jane.cooper@customer.test"
)

// desk is one Postdesk on a mail stack: database, OAuth, desk, ingest,
// the sender and its job engine, and (when started) mail sync.
type deskEnv struct {
	t      testing.TB
	ctx    context.Context
	stack  *mailtest.Stack
	idp    *fakeidp.IdP
	db     *store.DB
	vault  *store.Vault
	oauth  *oauth.Service
	desk   *desk.Desk
	admin  *desk.Admin
	ingest *ingest.Ingester
	sender *jobs.Sender
	runner *jobs.Runner
	agent  store.User
	// hooks delivers webhooks (private targets allowed: receivers are on
	// loopback); events dispatches to it.
	hooks  *jobs.Webhooks
	events *jobs.Dispatcher
}

// newStack starts Postfix and Dovecot with a stand-in IdP knowing accounts.
func newStack(t testing.TB, sendAs bool, passwordUsers map[string]string, accounts ...string) (*mailtest.Stack, *fakeidp.IdP) {
	t.Helper()
	opts := fakeidp.Options{Clock: &fakeidp.Clock{}}
	for _, a := range accounts {
		opts.Accounts = append(opts.Accounts, fakeidp.Account{Address: a, Name: a})
	}
	idp := fakeidp.New(opts)
	idp.AddApp(fakeidp.App{ClientID: outboxClientID, Name: "Postdesk", ClientSecret: "s3cret", RedirectURIs: []string{outboxRedirect}})
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, IdP: idp, SendAsCheck: sendAs, PasswordUsers: passwordUsers})
	return stack, idp
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		t.Fatalf("address %q", addr)
	}
	return host, n
}

// newDesk builds a Postdesk on stack with a fresh database of dialect.
func newDesk(t testing.TB, dialect string, stack *mailtest.Stack, idp *fakeidp.IdP) *deskEnv {
	t.Helper()
	e := newDeskStopped(t, dialect, stack, idp)
	e.sender.Start()
	return e
}

// newDeskStopped is newDesk whose sender's sweep is not started: queued
// mail waits until e.sender.Start (or a wake-up).
func newDeskStopped(t testing.TB, dialect string, stack *mailtest.Stack, idp *fakeidp.IdP) *deskEnv {
	t.Helper()
	e := &deskEnv{t: t, ctx: context.Background(), stack: stack, idp: idp, db: storetest.Open(t, dialect)}
	if err := jobs.Migrate(e.ctx, e.db, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", stack.IdPURL)
	p.ClientID, p.ClientSecret = outboxClientID, "s3cret"
	p.MailHosts = []string{"127.0.0.1"} // the test's Dovecot and Postfix stand in for Microsoft's servers
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: e.vault, Providers: []oauth.Provider{p}, RedirectURL: outboxRedirect,
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
	if e.hooks, err = jobs.NewWebhooks(jobs.WebhookOptions{DB: e.db, Vault: e.vault, AllowPrivate: true, Logger: log,
		Backoff: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	e.runner, err = jobs.New(e.db, jobs.Options{Logger: log, Outbox: e.sender, PollInterval: 200 * time.Millisecond,
		Register: e.hooks.Register})
	if err != nil {
		t.Fatal(err)
	}
	e.hooks.SetRunner(e.runner)
	if e.events, err = jobs.NewDispatcher(jobs.DispatcherOptions{DB: e.db, Logger: log, Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	e.events.Register(e.hooks)
	e.db.OnEventsCommitted(e.events.Wake)
	if err := e.runner.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.events.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		e.sender.Stop(ctx)
		e.events.Stop(ctx)
		e.runner.Stop(ctx)
	})
	e.desk = desk.New(e.db, desk.WithEnqueuer(e.sender))
	e.admin = desk.NewAdmin(e.db, e.vault, desk.Providers([]oauth.Provider{p}))
	e.ingest = ingest.New(e.db, ingest.Options{Acknowledge: e.desk.Acknowledge})
	if err := e.db.Write(e.ctx, func(tx *store.Tx) (err error) {
		e.agent, err = tx.CreateUser(e.ctx, store.User{Email: "agent@helpdesk.test", Name: "Agent", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// addMailbox adds a mailbox served by the stack: OAuth (microsoft, signed
// in at once) when password is "", else a password mailbox logging in as login.
func (e *deskEnv) addMailbox(address, login, password string) store.Mailbox {
	e.t.Helper()
	imapHost, imapPort := hostPort(e.t, e.stack.IMAPAddr)
	smtpHost, smtpPort := hostPort(e.t, e.stack.SubmissionAddr)
	spec := desk.MailboxSpec{Address: address, Name: "Example Support", Auth: "microsoft", IMAPHost: imapHost, IMAPPort: imapPort,
		IMAPSecurity: "none", SMTPHost: smtpHost, SMTPPort: smtpPort, SMTPSecurity: "none", Signature: "Example Support"}
	if password != "" {
		spec.Auth, spec.Password, spec.Username = "password", password, login
	}
	mb, err := e.admin.AddMailbox(e.ctx, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if password == "" {
		e.signIn(mb)
	}
	return mb
}

// signIn runs Connect / Reauthenticate against the stand-in.
func (e *deskEnv) signIn(mb store.Mailbox) {
	e.t.Helper()
	signInAt(e.t, e.ctx, e.oauth, e.idp, mb)
}

// signInAt runs Connect / Reauthenticate of mb through svc, choosing its
// account on the stand-in idp, as user 1.
func signInAt(t testing.TB, ctx context.Context, svc *oauth.Service, idp *fakeidp.IdP, mb store.Mailbox) {
	t.Helper()
	u, err := svc.Begin(ctx, mb.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := idp.SignIn(u, mb.Address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Complete(ctx, 1, cb.Query()); err != nil {
		t.Fatal(err)
	}
}

// sync starts mail sync of every mailbox; it stops at cleanup.
func (e *deskEnv) sync() {
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

// customerEmail is a customer's email to a mailbox.
func customerEmail(from, to, subject, messageID, inReplyTo, body string) []byte {
	h := fmt.Sprintf("From: Jane Cooper <%s>\r\nTo: %s\r\nCc: Bob <bob@customer.test>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		from, to, subject, time.Now().Format(time.RFC1123Z), messageID)
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + ">\r\nReferences: <" + inReplyTo + ">\r\n"
	}
	return []byte(h + "\r\n" + body + "\r\n")
}

// newTicket ingests a customer's email and returns its ticket.
func (e *deskEnv) newTicket(mb store.Mailbox, from, subject, messageID string) int64 {
	e.t.Helper()
	res, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(string(customerEmail(from, mb.Address, subject, messageID, "", "Hello, it is broken."))))
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Outcome != ingest.NewTicket {
		e.t.Fatalf("ingest: %v", res)
	}
	return res.TicketID
}

// waitDelivery waits until message id's delivery is in state.
func (e *deskEnv) waitDelivery(id int64, state string, within time.Duration) store.Message {
	e.t.Helper()
	return waitDeliveryState(e.t, e.ctx, e.db, id, state, within)
}

// waitDeliveryState waits until message id's delivery is in state.
func waitDeliveryState(t testing.TB, ctx context.Context, db *store.DB, id int64, state string, within time.Duration) store.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m, err := db.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Delivery != nil && m.Delivery.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %d: delivery %+v, want %s within %s", id, m.Delivery, state, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inbox parses the messages in user's INBOX, in arrival order.
func inbox(t testing.TB, stack *mailtest.Stack, user string) []*mailmsg.Message {
	t.Helper()
	msgs, err := stack.Messages(context.Background(), user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*mailmsg.Message, 0, len(msgs))
	for _, m := range msgs {
		p, err := mailmsg.Parse(strings.NewReader(string(m.Raw)), mailmsg.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// waitInbox waits until user's INBOX holds n messages.
func waitInbox(t testing.TB, stack *mailtest.Stack, user string, n int, within time.Duration) []*mailmsg.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if _, err := stack.WaitMessages(ctx, user, "INBOX", n); err != nil {
		t.Fatalf("%s: waiting for %d messages: %v (have %d)", user, n, err, len(inbox(t, stack, user)))
	}
	return inbox(t, stack, user)
}
