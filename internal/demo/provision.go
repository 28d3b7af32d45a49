package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// Password is the demo users' password, printed in the welcome: the demo
// listens on loopback and its sign-in page lets anyone be anyone anyway.
const Password = "demo-password"

// expiringAge is how long ago billing@ was signed in: with the default
// 90-day maximum age, its re-authentication is due in 6 days and a half
// (pages round down: "in 6 days").
const expiringAge = 83*oauth.Day + 12*time.Hour

// Postdesk is what provisioning needs of the Postdesk it runs against.
type Postdesk struct {
	DB    *store.DB
	Vault *store.Vault
	// Providers are the configured OAuth providers (the demo's Microsoft
	// pointed at the stand-in among them); RedirectURL is the callback.
	Providers   []oauth.Provider
	RedirectURL string
	SessionTTL  time.Duration
	Logger      *slog.Logger
}

// Provisioned is what Provision set up.
type Provisioned struct {
	// Mailboxes are the mailbox ids by address.
	Mailboxes map[string]int64
	// Seeded counts the sample emails delivered per address.
	Seeded map[string]int
	// Statuses are the mailboxes' authorization states once provisioned.
	Statuses map[string]oauth.Status
	// HeldReply is the agent's reply on sales@'s ticket that waits for
	// its re-authentication (the messages row's id; 0 when a kept data
	// folder's reply was sent in an earlier run).
	HeldReply int64
}

// Provision does what an admin would: it adds the admin and an agent (both
// with Password), adds the three mailboxes on the demo's mail server (or
// moves them there, for a kept data folder), connects each through the
// real sign-in (oauth Begin, the stand-in's sign-in, oauth Complete), puts
// billing@ and sales@ in their states (see the package documentation) and
// delivers the seed mail. Run it before Postdesk starts fetching, so that
// sales@'s mail is still waiting on the server.
func (e *Env) Provision(ctx context.Context, p Postdesk) (Provisioned, error) {
	d := e.Domain
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Provisioned{Mailboxes: map[string]int64{}, Seeded: map[string]int{}, Statuses: map[string]oauth.Status{}}
	for _, u := range []struct{ email, name, role string }{
		{d.Admin, "Alex Admin", store.RoleAdmin},
		{d.Agent, "Maria Santos", store.RoleAgent},
	} {
		if err := ensureUser(ctx, p.DB, u.email, u.name, u.role); err != nil {
			return res, err
		}
	}

	admin := desk.NewAdmin(p.DB, p.Vault, desk.Providers(p.Providers))
	for _, address := range d.Mailboxes() {
		id, err := e.ensureMailbox(ctx, p.DB, admin, address)
		if err != nil {
			return res, err
		}
		res.Mailboxes[address] = id
	}

	newService := func(now func() time.Time) (*oauth.Service, error) {
		return oauth.New(oauth.Config{DB: p.DB, Vault: p.Vault, Providers: p.Providers, RedirectURL: p.RedirectURL,
			Logger: log, Now: now})
	}
	svc, err := newService(nil)
	if err != nil {
		return res, err
	}
	back, err := newService(func() time.Time { return time.Now().Add(-expiringAge) })
	if err != nil {
		return res, err
	}
	// The sign-ins belong to an admin's session, as in the browser.
	sessions := auth.New(p.DB, p.SessionTTL)
	_, sess, _, err := sessions.Login(ctx, d.Admin, Password, "postdesk demo", "127.0.0.1")
	if err != nil {
		return res, fmt.Errorf("sign in as %s: %w", d.Admin, err)
	}
	defer sessions.Logout(context.WithoutCancel(ctx), sess.ID)

	if err := e.Connect(ctx, svc, res.Mailboxes[d.Support], sess.ID, d.Support); err != nil {
		return res, err
	}
	if err := e.Connect(ctx, back, res.Mailboxes[d.Billing], sess.ID, d.Billing); err != nil {
		return res, err
	}
	if err := e.Connect(ctx, svc, res.Mailboxes[d.Sales], sess.ID, d.Sales); err != nil {
		return res, err
	}
	// sales@: its grants are revoked (as a password reset does), and the
	// next refresh is refused: the mailbox needs re-authentication.
	if err := e.IdP.Revoke(d.Sales); err != nil {
		return res, err
	}
	if _, err := svc.FreshToken(ctx, res.Mailboxes[d.Sales]); !errors.Is(err, oauth.ErrNeedsReauth) {
		return res, fmt.Errorf("expected the refresh of %s to be refused, got %v", d.Sales, err)
	}
	// sales@ had fetched a customer's email before, and the agent answered
	// it after the sign-in broke: the reply is held until an admin
	// reauthenticates.
	if res.HeldReply, err = e.heldReply(ctx, p.DB, res.Mailboxes[d.Sales], log); err != nil {
		return res, err
	}
	// Record billing@'s state (and its notice) as the daily check would.
	statuses, err := svc.EvaluateAll(ctx)
	if err != nil {
		return res, err
	}
	for _, st := range statuses {
		res.Statuses[st.Address] = st
	}

	seed := Seed(d, time.Now())
	for _, m := range seed {
		if err := e.Mail.Deliver(m.To, m.Raw, m.Date); err != nil {
			return res, err
		}
		res.Seeded[m.To]++
	}
	log.Info("demo provisioned", "mailboxes", len(res.Mailboxes), "seeded", len(seed))
	return res, nil
}

// heldReply files Earlier on sales@ as the fetch before the break did, and
// has the agent answer it through desk.Reply, which holds the reply while
// the mailbox needs re-authentication. With a kept data folder, the
// ticket is there already, and so is its reply (held or, once
// reauthenticated in an earlier run, sent): nothing more is written.
func (e *Env) heldReply(ctx context.Context, db *store.DB, mailboxID int64, log *slog.Logger) (int64, error) {
	mb, err := db.Mailbox(ctx, mailboxID)
	if err != nil {
		return 0, err
	}
	m := Earlier(e.Domain, time.Now())
	r, err := ingest.New(db, ingest.Options{Logger: log}).Ingest(ctx, mb, bytes.NewReader(m.Raw))
	if err != nil {
		return 0, fmt.Errorf("file the earlier email of %s: %w", mb.Address, err)
	}
	if r.TicketID == 0 {
		return 0, fmt.Errorf("the earlier email of %s opened no ticket: %s", mb.Address, r.Reason)
	}
	thread, err := db.TicketMessages(ctx, r.TicketID)
	if err != nil {
		return 0, err
	}
	for _, msg := range thread {
		if msg.Direction != "out" {
			continue
		}
		if msg.Delivery != nil && msg.Delivery.State == store.DeliveryHeld {
			return msg.ID, nil
		}
		return 0, nil // sent after an earlier run's Reauthenticate
	}
	agent, err := db.UserByEmail(ctx, e.Domain.Agent)
	if err != nil {
		return 0, err
	}
	reply, err := desk.New(db).Reply(ctx, r.TicketID, agent, desk.ReplyInput{Text: heldReplyText})
	if err != nil {
		return 0, fmt.Errorf("write the agent's reply on %s: %w", mb.Address, err)
	}
	if reply.Delivery == nil || reply.Delivery.State != store.DeliveryHeld {
		return 0, fmt.Errorf("the agent's reply on %s is not held: %+v", mb.Address, reply.Delivery)
	}
	return reply.ID, nil
}

// Connect signs mailboxID in as account through the stand-in: Begin, the
// stand-in's sign-in page decision, Complete, as the browser round trip.
func (e *Env) Connect(ctx context.Context, svc *oauth.Service, mailboxID, sessionID int64, account string) error {
	authURL, err := svc.Begin(ctx, mailboxID, sessionID, false)
	if err != nil {
		return err
	}
	callback, err := e.IdP.SignIn(authURL, account)
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", account, err)
	}
	if _, err := svc.Complete(ctx, sessionID, callback.Query()); err != nil {
		return fmt.Errorf("connect %s: %w", account, err)
	}
	return nil
}

// ensureUser adds a user with Password, or resets an existing one's.
func ensureUser(ctx context.Context, db *store.DB, email, name, role string) error {
	u, err := db.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		_, _, err = auth.CreateUser(ctx, db, email, name, role, Password)
		return err
	}
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(Password)
	if err != nil {
		return err
	}
	return db.Write(ctx, func(tx *store.Tx) error { return tx.SetPasswordHash(ctx, u.ID, hash) })
}

// ensureMailbox adds address as a Microsoft mailbox on the demo's mail
// server, or points an existing one (a kept data folder) at this run's,
// keeping what an admin changed besides the servers (name, signature,
// folders).
func (e *Env) ensureMailbox(ctx context.Context, db *store.DB, admin *desk.Admin, address string) (int64, error) {
	// Replies go out through the demo's SMTP side, which saves the sent
	// copy itself as Microsoft 365 does: no APPEND to Sent.
	saveSent := false
	servers := func(spec *desk.MailboxSpec) {
		spec.Auth, spec.AuthMethod = "microsoft", "xoauth2"
		spec.IMAPHost, spec.IMAPPort, spec.IMAPSecurity = e.MailHost, e.MailPort, "none"
		spec.SMTPHost, spec.SMTPPort, spec.SMTPSecurity = e.MailHost, e.SMTPPort, "none"
		spec.SaveSent = &saveSent
	}
	mb, err := db.MailboxByAddress(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		name := e.Domain.displayName(address)
		spec := desk.MailboxSpec{Address: address, Name: name, Signature: name + "\n" + e.Domain.Name}
		servers(&spec)
		mb, err = admin.AddMailbox(ctx, spec)
		return mb.ID, err
	}
	if err != nil {
		return 0, err
	}
	spec, err := admin.Spec(ctx, mb.ID)
	if err != nil {
		return 0, err
	}
	servers(&spec)
	if _, err := admin.UpdateMailbox(ctx, mb.ID, spec); err != nil {
		return 0, err
	}
	return mb.ID, nil
}
