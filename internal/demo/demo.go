// Package demo is the world around Postdesk that `postdesk demo` runs on one
// machine, with no account anywhere: the stand-in Microsoft sign-in
// (internal/fakeidp) with the demo's accounts and app registration, an
// in-memory IMAP server whose mailboxes accept only those accounts' access
// tokens (XOAUTH2 / OAUTHBEARER checked by RFC 7662 introspection, like
// Dovecot in MAILSTACK.md) with an SMTP submission side shaped like
// Microsoft 365's (see smtpserver.go), which delivers replies to customer
// mailboxes made on demand, sample mail, sample customers who answer a
// reply once (answers.go), and the provisioning an admin would do by hand:
// users, three mailboxes, each connected through the real sign-in flow.
//
// Postdesk itself is not in here: cmd/postdesk runs serve's code with a
// configuration pointing at this world, so the demo exercises exactly what
// production runs. The three mailboxes show the three states an admin
// meets:
//   - support@ is healthy;
//   - billing@ is expiring: it was signed in with a clock set back 83.5
//     days, so with the default 90-day maximum age its re-authentication is
//     due in 6 days (a fresh Reauthenticate makes it healthy again);
//   - sales@ needs re-authentication: its grants were revoked at the
//     stand-in and the refresh that followed was refused (AADSTS50173), so
//     its mail waits on the server until an admin reauthenticates, and so
//     does an agent's reply to a ticket it had before (held in the outbox).
//
// Everything listens on 127.0.0.1 only; state is in memory and dies with the
// process (the IMAP server announces a new UIDVALIDITY on each start, so a
// kept data folder resynchronises rather than skipping UIDs).
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
)

// Domain names the demo's company and its addresses.
type Domain struct {
	Name    string // acme.example
	Support string // healthy
	Billing string // expiring
	Sales   string // needs re-authentication
	Admin   string // the admin who signs in to Postdesk
	Agent   string // an agent, who forwards a missed email
}

// DefaultDomain is Acme's.
func DefaultDomain() Domain {
	const d = "acme.example"
	return Domain{Name: d, Support: "support@" + d, Billing: "billing@" + d, Sales: "sales@" + d,
		Admin: "admin@" + d, Agent: "maria@" + d}
}

// Mailboxes lists the support addresses: support, billing, sales.
func (d Domain) Mailboxes() []string { return []string{d.Support, d.Billing, d.Sales} }

// displayName names a mailbox of the company: "Acme Support" for
// support@acme.example.
func (d Domain) displayName(address string) string {
	company, _, _ := strings.Cut(d.Name, ".")
	local, _, _ := strings.Cut(address, "@")
	title := func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return title(company) + " " + title(local)
}

// Options configures Start.
type Options struct {
	Domain Domain // zero: DefaultDomain
	// RedirectURL is Postdesk's OAuth callback (<base-url>/oauth/callback),
	// registered with the stand-in's app.
	RedirectURL string
	// AnswerAfter is how long a sample customer takes to answer a reply
	// delivered to them (zero: DefaultAnswerAfter; see answers.go).
	AnswerAfter time.Duration
	Logger      *slog.Logger
	// Ports are the ports to listen on when they are free (a kept data
	// folder's, from its last run: the mailboxes' server settings then stay
	// as they were); zero, or taken, takes a free one.
	Ports Ports
}

// Ports are the stand-in sign-in's, the IMAP server's and the SMTP
// server's ports on 127.0.0.1.
type Ports struct {
	IdP  int `json:"idp"`
	IMAP int `json:"imap"`
	SMTP int `json:"smtp"`
}

// listenPreferring listens on 127.0.0.1:port when it is free, else on a
// free port.
func listenPreferring(port int) (net.Listener, error) {
	if port > 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// Ports returns the ports the world listens on.
func (e *Env) Ports() Ports {
	return Ports{IdP: e.idpPort, IMAP: e.MailPort, SMTP: e.SMTPPort}
}

// Env is the running world: the stand-in sign-in and the mail server.
type Env struct {
	Domain Domain
	IdP    *fakeidp.IdP
	// Authority is the stand-in's URL, Postdesk's Microsoft authority.
	Authority string
	// ClientID and ClientSecret are the demo app's registration.
	ClientID, ClientSecret string
	Mail                   *MailServer
	// MailHost and MailPort are the IMAP server's address.
	MailHost string
	MailPort int
	// SMTPPort is the same server's SMTP submission port (on MailHost):
	// AUTH with XOAUTH2 or OAUTHBEARER, no TLS (loopback).
	SMTPPort int

	idpPort     int
	log         *slog.Logger
	answerAfter time.Duration
	answered    answers
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	mu          sync.Mutex
	stopping    bool // Stop was called: no new answers are scheduled
	errs        []error
}

// Start starts the stand-in sign-in and the mail server on free loopback
// ports; Stop ends them.
func Start(opts Options) (*Env, error) {
	if opts.Domain.Name == "" {
		opts.Domain = DefaultDomain()
	}
	if opts.RedirectURL == "" {
		return nil, errors.New("demo: the redirect URL is not set")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idpLn, err := listenPreferring(opts.Ports.IdP)
	if err != nil {
		return nil, fmt.Errorf("demo: listen for the sign-in: %w", err)
	}
	mailLn, err := listenPreferring(opts.Ports.IMAP)
	if err != nil {
		idpLn.Close()
		return nil, fmt.Errorf("demo: listen for the mail server: %w", err)
	}
	smtpLn, err := listenPreferring(opts.Ports.SMTP)
	if err != nil {
		idpLn.Close()
		mailLn.Close()
		return nil, fmt.Errorf("demo: listen for SMTP: %w", err)
	}
	d := opts.Domain
	e := &Env{Domain: d, Authority: "http://" + idpLn.Addr().String(),
		ClientID: "d3m0" + randomHex(14), ClientSecret: randomHex(20), log: log, answerAfter: opts.AnswerAfter}
	if e.answerAfter <= 0 {
		e.answerAfter = DefaultAnswerAfter
	}
	var accounts []fakeidp.Account
	for _, a := range d.Mailboxes() {
		accounts = append(accounts, fakeidp.Account{Address: a, Name: d.displayName(a)})
	}
	e.IdP = fakeidp.New(fakeidp.Options{
		Accounts: accounts, BaseURL: e.Authority, Logger: log.With("component", "fakeidp"),
		Apps: []fakeidp.App{{ClientID: e.ClientID, Name: "Postdesk (demo)", ClientSecret: e.ClientSecret,
			RedirectURIs: []string{opts.RedirectURL}}},
	})
	e.Mail = NewMailServer(HTTPIntrospector(e.Authority+"/introspect", nil), log.With("component", "demo_mail"))
	e.Mail.OnDelivered = e.delivered
	for _, a := range d.Mailboxes() {
		if err := e.Mail.AddMailbox(a); err != nil {
			idpLn.Close()
			mailLn.Close()
			smtpLn.Close()
			return nil, err
		}
	}
	addr := mailLn.Addr().(*net.TCPAddr)
	e.MailHost, e.MailPort = addr.IP.String(), addr.Port
	e.SMTPPort = smtpLn.Addr().(*net.TCPAddr).Port
	e.idpPort = idpLn.Addr().(*net.TCPAddr).Port

	ctx, cancel := context.WithCancel(context.Background())
	e.ctx, e.cancel = ctx, cancel
	e.serve(func() error { return e.IdP.Serve(ctx, idpLn) })
	e.serve(func() error { return e.Mail.Serve(ctx, mailLn) })
	e.serve(func() error { return e.Mail.ServeSMTP(ctx, smtpLn) })
	return e, nil
}

func (e *Env) serve(f func() error) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := f(); err != nil {
			e.mu.Lock()
			e.errs = append(e.errs, err)
			e.mu.Unlock()
		}
	}()
}

// Stop stops the sign-in and the mail server (IMAP and SMTP), drops the
// customers' answers not yet delivered, and waits for them.
func (e *Env) Stop() error {
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.errs...)
}

// SignInURL is the stand-in's page that lists its accounts and apps.
func (e *Env) SignInURL() string { return e.Authority + "/" }

// LiveMail delivers a new sample email every interval, to the mailboxes in
// turn, until ctx ends.
func (e *Env) LiveMail(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	run := randomHex(4)
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m := Live(e.Domain, run, n, time.Now())
		if err := e.Mail.Deliver(m.To, m.Raw, m.Date); err != nil {
			e.log.Error("deliver sample email", "to", m.To, "err", err)
			continue
		}
		e.log.Info("demo: a customer email arrived", "to", m.To)
	}
}
