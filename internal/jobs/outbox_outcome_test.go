package jobs_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// busySession is an SMTP server that answers every message's data with
// 451 4.3.0, as Exchange Online does when it throttles a backlog (Postfix
// cannot be made to do it on demand), after delay.
type busySession struct {
	data  *atomic.Int64
	delay time.Duration
}

func (s *busySession) AuthMechanisms() []string { return []string{"PLAIN"} }
func (s *busySession) Auth(string) (gosasl.Server, error) {
	return gosasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}
func (s *busySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *busySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *busySession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	time.Sleep(s.delay)
	s.data.Add(1)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary server error. Please try again later"}
}
func (s *busySession) Reset()        {}
func (s *busySession) Logout() error { return nil }

// busyEnv is a sender whose mailbox sends through a busySession, with a
// clock shift tests move, and an agent's reply on a customer's ticket.
type busyEnv struct {
	db        *store.DB
	passwords store.PasswordFunc
	sender    *jobs.Sender
	mb        store.Mailbox
	agent     store.User
	ticket    int64
	data      atomic.Int64 // end of data answered
	shift     atomic.Int64 // added to the clock, in nanoseconds
}

func newBusyEnv(t *testing.T, dialect string, delay time.Duration) *busyEnv {
	t.Helper()
	ctx := context.Background()
	e := &busyEnv{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &busySession{data: &e.data, delay: delay}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "smtp.test", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port := hostPort(t, ln.Addr().String())

	e.db = storetest.Open(t, dialect)
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	e.passwords = store.MailboxPasswords(e.db, vault)
	e.sender, err = jobs.NewSender(jobs.SenderOptions{DB: e.db, Passwords: e.passwords, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sender.Stop(ctx) })
	e.mb, err = desk.NewAdmin(e.db, vault, nil).AddMailbox(ctx, desk.MailboxSpec{Address: supportAddr, Name: "Support", Auth: "password", Password: "pw",
		IMAPHost: "127.0.0.1", IMAPPort: 1, IMAPSecurity: "none", SMTPHost: "127.0.0.1", SMTPPort: port, SMTPSecurity: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Write(ctx, func(tx *store.Tx) (err error) {
		e.agent, err = tx.CreateUser(ctx, store.User{Email: "agent@helpdesk.test", Name: "Agent", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	res, err := ingest.New(e.db, ingest.Options{}).Ingest(ctx, e.mb, strings.NewReader("From: "+customerAddr+"\r\nTo: "+supportAddr+"\r\n"+
		"Subject: help\r\nMessage-ID: <q1@customer.test>\r\nDate: "+time.Now().Format(time.RFC1123Z)+"\r\n\r\nHello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.ticket = res.TicketID
	return e
}

func (e *busyEnv) now() time.Time { return time.Now().Add(time.Duration(e.shift.Load())) }

func (e *busyEnv) reply(t *testing.T) store.Message {
	t.Helper()
	m, err := desk.New(e.db).Reply(context.Background(), e.ticket, e.agent, desk.ReplyInput{Text: "We are on it."})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *busyEnv) delivery(t *testing.T, id int64) store.Delivery {
	t.Helper()
	m, err := e.db.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *m.Delivery
}

// A reply held for three days while its mailbox needed a new password is
// retried as long as a new one once released: its first temporary refusal
// queues it again, and it is given up 48 hours after the release, not
// after it was written. (Measured from the writing, the whole released
// backlog failed at its first 451.)
func TestReleasedReplyRetriedForItsFullTime(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) { testReleasedReplyRetried(t, dialect) })
	}
}

func testReleasedReplyRetried(t *testing.T, dialect string) {
	ctx := context.Background()
	e := newBusyEnv(t, dialect, 0)
	setAuth := func(state store.AuthState, code string) {
		t.Helper()
		if err := e.db.Write(ctx, func(tx *store.Tx) error { return tx.SetAuthState(ctx, e.mb.ID, state, code, "", e.now()) }); err != nil {
			t.Fatal(err)
		}
	}
	setAuth(store.AuthNeedsReauth, store.CodePasswordRefused)
	m := e.reply(t)
	if m.Delivery.State != store.DeliveryHeld {
		t.Fatalf("reply written while the password was refused: %s, want held", m.Delivery.State)
	}

	// Three days later the admin gives the new password; the sweep
	// releases the reply and the server refuses it once for now.
	e.shift.Store(int64(72 * time.Hour))
	setAuth(store.AuthOK, "")
	attempt := func(wantAttempts int) store.Delivery {
		t.Helper()
		if err := e.sender.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.sender.Drain(ctx, e.mb.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if d := e.delivery(t, m.ID); d.Attempts >= wantAttempts && d.State != store.DeliverySending || time.Now().After(deadline) {
				return d
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if d := attempt(1); d.State != store.DeliveryQueued || d.Attempts != 1 || d.ErrorKind != "temporary" || e.data.Load() != 1 {
		t.Fatalf("after its release and a 451: %+v (%d answered), want queued again after 1 attempt", d, e.data.Load())
	}
	// Still refused 47 hours after the release: tried again.
	e.shift.Store(int64(72*time.Hour + 47*time.Hour))
	if d := attempt(2); d.State != store.DeliveryQueued || d.Attempts != 2 {
		t.Fatalf("47 hours after its release: %+v, want queued again after 2 attempts", d)
	}
	// 49 hours after the release: given up, saying so.
	e.shift.Store(int64(72*time.Hour + 49*time.Hour))
	if d := attempt(3); d.State != store.DeliveryFailed || d.Attempts != 3 || !strings.Contains(d.LastError, "gave up after 3 attempts over 48h0m0s; last: 451 4.3.0") {
		t.Fatalf("49 hours after its release: %+v, want failed after 3 attempts", d)
	}
}

// The drain's context ends (shutdown, the job stopped) while the server
// is answering the end of data, and it answers 451: the refusal is still
// recorded (queued again), not left "sending" for the next drain to call
// unknown, which would tell the agent a reply that never left may have
// arrived and never retry it.
func TestRefusalRecordedAfterCancel(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newBusyEnv(t, dialect, 1500*time.Millisecond)
			m := e.reply(t)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			e.sender.Drain(ctx, e.mb.ID) // its error is the cancellation
			if d := e.delivery(t, m.ID); e.data.Load() != 1 || d.State != store.DeliveryQueued || d.Attempts != 1 || d.ErrorKind != "temporary" {
				t.Fatalf("after a 451 that came once the drain's context had ended: %+v (%d answered), want queued again", d, e.data.Load())
			}
		})
	}
}

// One message that takes longer than the lease (the server is slow to
// answer its end of data) keeps the mailbox: the lease is renewed while it
// is sent, so another process's drain finds it taken, and the 451 that
// finally comes is recorded as a retry. Renewed only between messages, the
// lease lapsed; the other process called the reply's outcome unknown
// (a note told the agent it may have arrived) and the retry was lost.
func TestLeaseKeptDuringOneSlowSend(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		for _, cancelled := range []bool{false, true} {
			name := dialect
			if cancelled {
				// A's drain is cancelled (a shutdown past its deadline, the
				// job stopped) while the send goes on: the lease must too.
				name += "/drain_cancelled"
			}
			t.Run(name, func(t *testing.T) { testLeaseKept(t, dialect, cancelled) })
		}
	}
}

func testLeaseKept(t *testing.T, dialect string, cancelled bool) {
	ctx := context.Background()
	e := newBusyEnv(t, dialect, 2500*time.Millisecond)
	newSender := func(owner string) *jobs.Sender {
		s, err := jobs.NewSender(jobs.SenderOptions{DB: e.db, Passwords: e.passwords, Owner: owner, Lease: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(ctx) })
		return s
	}
	a, b := newSender("process-a"), newSender("process-b")
	m := e.reply(t)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Drain(actx, e.mb.ID) }()
	if cancelled {
		time.Sleep(300 * time.Millisecond)
		cancel()
		time.Sleep(1200 * time.Millisecond)
	} else {
		time.Sleep(1500 * time.Millisecond) // A waits for the answer; its lease would have lapsed
	}
	if err := b.Drain(ctx, e.mb.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !cancelled {
		t.Fatal(err)
	}
	if d := e.delivery(t, m.ID); e.data.Load() != 1 || d.State != store.DeliveryQueued || d.Attempts != 1 || d.ErrorKind != "temporary" {
		t.Errorf("after a slow 451 with another process draining meanwhile: %+v (%d answered), want queued again after 1 attempt", d, e.data.Load())
	}
	notes, err := e.db.TicketNotes(ctx, e.ticket)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		if strings.Contains(n.Body, "may or may not") {
			t.Errorf("note on the ticket: %s", n.Body)
		}
	}
}
