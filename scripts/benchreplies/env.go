package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

const (
	supportAddr  = "support@example.com"
	clientID     = "postdesk-bench"
	clientSecret = "bench-s3cret"
	redirectURL  = "https://desk.example.test/oauth/callback"
)

// env is the real stack of the benchmark: Postfix and Dovecot with the
// stand-in Microsoft sign-in, a Postdesk store with one connected OAuth
// mailbox whose SMTP settings point at that Postfix, and an agent.
type env struct {
	log   *slog.Logger
	stack *mailtest.Stack
	idp   *fakeidp.IdP
	db    *store.DB
	oauth *oauth.Service
	mb    store.Mailbox
	agent store.User
	// security is the SMTP security of the mailbox and of the bare loop.
	security string
}

// startEnv starts the mail stack and opens (and migrates) the store in
// dataDir, or on PostgreSQL at databaseURL.
func startEnv(ctx context.Context, log *slog.Logger, dataDir, databaseURL, security string) (*env, error) {
	e := &env{log: log, security: security}
	e.idp = fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: supportAddr, Name: "Support"}}})
	e.idp.AddApp(fakeidp.App{ClientID: clientID, Name: "Postdesk", ClientSecret: clientSecret, RedirectURIs: []string{redirectURL}})
	var err error
	e.stack, err = mailtest.StartStack(ctx, mailtest.Options{Postfix: true, TLS: security != "none", IdP: e.idp})
	if err != nil {
		return nil, fmt.Errorf("start the mail stack: %w", err)
	}
	e.db, err = store.Open(ctx, store.Config{DataDir: dataDir, DatabaseURL: databaseURL, Logger: log})
	if err != nil {
		return e, err
	}
	if _, err := e.db.Migrate(ctx); err != nil {
		return e, err
	}
	if err := jobs.Migrate(ctx, e.db, log); err != nil {
		return e, err
	}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		return e, err
	}
	p := oauth.Microsoft("organizations", e.stack.IdPURL)
	p.ClientID, p.ClientSecret = clientID, clientSecret
	p.MailHosts = []string{"127.0.0.1"} // the stack's Postfix and Dovecot stand in for Microsoft's servers
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: redirectURL, Logger: log})
	if err != nil {
		return e, err
	}
	return e, e.addMailbox(ctx, desk.NewAdmin(e.db, vault, desk.Providers([]oauth.Provider{p})))
}

// addMailbox creates the agent and the OAuth mailbox (SMTP on the stack's
// Postfix submission port, XOAUTH2) and signs it in at the stand-in.
func (e *env) addMailbox(ctx context.Context, admin *desk.Admin) error {
	imapHost, imapPort := splitAddr(e.stack.IMAPAddr)
	smtpHost, smtpPort := splitAddr(e.stack.SubmissionAddr)
	imapSecurity := "starttls"
	if e.security == "none" {
		imapSecurity = "none"
	}
	err := e.db.Write(ctx, func(tx *store.Tx) (err error) {
		e.agent, err = tx.CreateUser(ctx, store.User{Email: "agent@example.com", Name: "Agent", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	})
	if err != nil {
		return fmt.Errorf("create the agent: %w", err)
	}
	// As an admin adds it on Admin -> Emails; paused, so nothing is fetched.
	if e.mb, err = admin.AddMailbox(ctx, desk.MailboxSpec{Address: supportAddr, Name: "Example Support", Auth: "microsoft",
		IMAPHost: imapHost, IMAPPort: imapPort, IMAPSecurity: imapSecurity, SMTPHost: smtpHost, SMTPPort: smtpPort,
		SMTPSecurity: e.security, AuthMethod: "xoauth2", Folders: []string{"INBOX"}, Disabled: true,
		Signature: "Example Support\nhttps://example.com/help"}); err != nil {
		return fmt.Errorf("create the mailbox: %w", err)
	}
	if e.mb, err = e.db.Mailbox(ctx, e.mb.ID); err != nil {
		return err
	}
	const session = 1
	u, err := e.oauth.Begin(ctx, e.mb.ID, session, false)
	if err != nil {
		return fmt.Errorf("sign the mailbox in: %w", err)
	}
	cb, err := e.idp.SignIn(u, supportAddr)
	if err != nil {
		return fmt.Errorf("sign the mailbox in at the stand-in: %w", err)
	}
	if _, err := e.oauth.Complete(ctx, session, cb.Query()); err != nil {
		return fmt.Errorf("complete the mailbox's sign-in: %w", err)
	}
	return nil
}

// addTickets creates n tickets, each with one email from a customer (100
// customers take turns), and returns their ids in order.
func (e *env) addTickets(ctx context.Context, n int, tag string) ([]int64, error) {
	ids := make([]int64, 0, n)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		for i := range n {
			c := i % 100
			addr, name := fmt.Sprintf("customer%02d@customer.example", c), fmt.Sprintf("Customer %02d", c)
			subject := fmt.Sprintf("Order %s-%d has not arrived", tag, i)
			id, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: e.mb.ID, Subject: subject, RequesterAddress: addr,
				RequesterName: name, CreatedAt: at})
			if err != nil {
				return err
			}
			mid := fmt.Sprintf("q-%s-%d@customer.example", tag, i)
			m := store.Message{MailboxID: e.mb.ID, TicketID: id, Direction: "in", Kind: store.KindEmail, MessageID: mid,
				DedupeKey: store.DedupeKey(mid, ""), FromAddress: addr, FromName: name, To: supportAddr, Subject: subject,
				TextBody:   fmt.Sprintf("Hello,\n\nI ordered on Monday and order %s-%d has still not arrived.\nCan you check where it is?\n\nThanks,\n%s", tag, i, name),
				ReceivedAt: at, SentAt: at}
			if err := tx.InsertMessage(ctx, &m); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

// replyText is the agent's text of the i-th reply: a few lines, as agents write.
func replyText(i int) string {
	return fmt.Sprintf("Hello,\n\nthank you for writing. Your parcel left our warehouse yesterday and should reach you "+
		"within two working days; the tracking number is PD%08d.\n\nIf it has not arrived by Friday, answer this "+
		"email and we will send a new one at once.\n\nBest regards,\nAgent", i)
}

// sender is the outbox sender running as serve runs it: the River runner
// with the outbox worker and sweep, and the desk waking it.
type sender struct {
	sender *jobs.Sender
	runner *jobs.Runner
	desk   *desk.Desk
}

func (e *env) startSender(ctx context.Context) (*sender, error) {
	reg := prometheus.NewRegistry()
	s, err := jobs.NewSender(jobs.SenderOptions{DB: e.db, OAuth: e.oauth, Logger: e.log, Registerer: reg, TLSConfig: e.tlsConfigOrNil()})
	if err != nil {
		return nil, err
	}
	r, err := jobs.New(e.db, jobs.Options{Logger: e.log, Registerer: reg, Register: jobs.All(jobs.Core(e.db), jobs.Auth(e.oauth)), Outbox: s})
	if err != nil {
		return nil, err
	}
	if err := r.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	s.Start() // the sweep, as serve starts it
	return &sender{sender: s, runner: r, desk: desk.New(e.db, desk.WithEnqueuer(s))}, nil
}

func (s *sender) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(s.sender.Stop(ctx), s.runner.Stop(ctx))
}

func (e *env) close() error {
	var err error
	if e.oauth != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = e.oauth.Close(ctx)
		cancel()
	}
	if e.db != nil {
		err = errors.Join(err, e.db.Close())
	}
	if e.stack != nil {
		err = errors.Join(err, e.stack.Stop())
	}
	return err
}

func splitAddr(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return host, n
}
