package notification_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/notification"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)     { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(t time.Time) *clock        { return &clock{t: t} }
func (c *clock) since(t time.Time) int64 { return int64(c.Now().Sub(t) / time.Second) }

// dbEnv is a Postdesk without mail servers: the database, mailboxes with
// (unused) SMTP settings, desk, ingest, the event dispatcher and the
// Mailer, all driven by hand (Dispatch, Run) on a moved clock.
type dbEnv struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	vault  *store.Vault
	admin  *desk.Admin
	desk   *desk.Desk
	ingest *ingest.Ingester
	events *jobs.Dispatcher
	mailer *notification.Mailer
	clock  *clock
}

var baseURL, _ = url.Parse("https://desk.example.test")

func newDBEnv(t *testing.T, dialect string, opts func(*notification.Options)) *dbEnv {
	t.Helper()
	e := &dbEnv{t: t, ctx: context.Background(), db: storetest.Open(t, dialect), clock: newClock(time.Now().UTC().Truncate(time.Millisecond))}
	var err error
	if e.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	e.admin = desk.NewAdmin(e.db, e.vault, nil)
	e.desk = desk.New(e.db)
	e.ingest = ingest.New(e.db, ingest.Options{})
	if e.events, err = jobs.NewDispatcher(jobs.DispatcherOptions{DB: e.db}); err != nil {
		t.Fatal(err)
	}
	o := notification.Options{DB: e.db, BaseURL: baseURL, Window: time.Minute, Now: e.clock.Now}
	if opts != nil {
		opts(&o)
	}
	if e.mailer, err = notification.New(o); err != nil {
		t.Fatal(err)
	}
	e.events.Register(e.mailer)
	return e
}

// passwordMailbox adds a password mailbox with SMTP settings (nothing is
// dialled: no sender runs).
func (e *dbEnv) passwordMailbox(address string) store.Mailbox {
	e.t.Helper()
	mb, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: address, Name: "Support", Auth: "password", Password: "pw",
		IMAPHost: "127.0.0.1", IMAPPort: 10143, IMAPSecurity: "none", SMTPHost: "127.0.0.1", SMTPPort: 10587, SMTPSecurity: "none"})
	if err != nil {
		e.t.Fatal(err)
	}
	return mb
}

// user adds a user with choices and followed mailboxes.
func (e *dbEnv) user(email, role string, n store.NotifyChoices, follows ...int64) store.User {
	e.t.Helper()
	var u store.User
	err := e.db.Write(e.ctx, func(tx *store.Tx) (err error) {
		u, err = tx.CreateUser(e.ctx, store.User{Email: email, Name: strings.Split(email, "@")[0], Role: role, PasswordHash: "x"})
		if err != nil {
			return err
		}
		if err := tx.SetNotifyChoices(e.ctx, u.ID, n); err != nil {
			return err
		}
		u.Notify = n
		return tx.SetFollowedMailboxes(e.ctx, u.ID, follows)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

var msgSeq struct {
	sync.Mutex
	n int
}

// mail ingests a customer's email into mb and returns its result.
func (e *dbEnv) mail(mb store.Mailbox, from, subject, inReplyTo string, extra ...string) ingest.Result {
	e.t.Helper()
	msgSeq.Lock()
	msgSeq.n++
	id := fmt.Sprintf("m%d.%d@customer.test", msgSeq.n, time.Now().UnixNano())
	msgSeq.Unlock()
	h := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n", from, mb.Address, subject,
		time.Now().Format(time.RFC1123Z), id)
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	for _, x := range extra {
		h += x + "\r\n"
	}
	res, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(h+"\r\nHello, it is broken.\r\n"))
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// dispatch hands every committed event to the Mailer.
func (e *dbEnv) dispatch() {
	e.t.Helper()
	if _, err := e.events.Dispatch(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// run does one pass of the Mailer.
func (e *dbEnv) run() {
	e.t.Helper()
	if err := e.mailer.Run(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// sentTo lists the notifications queued to address, parsed.
func (e *dbEnv) sentTo(address string) []sentMail {
	e.t.Helper()
	items, err := e.db.NotificationsSentTo(e.ctx, address)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []sentMail
	for _, it := range items {
		f, err := e.db.Blobs().Open(context.Background(), it.RawSHA256)
		if err != nil {
			e.t.Fatal(err)
		}
		m, err := mailmsg.Parse(f, mailmsg.ParseOptions{})
		f.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, sentMail{OutboxItem: it, msg: m})
	}
	return out
}

type sentMail struct {
	store.OutboxItem
	msg *mailmsg.Message
}
