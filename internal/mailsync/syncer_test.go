package mailsync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const (
	syncClientID = "postdesk-sync-test"
	syncRedirect = "https://desk.example.test/oauth/callback"
	supportAddr  = "support@example.com"
)

// syncEnv is a real Dovecot with the stand-in Microsoft sign-in, a
// database, an OAuth service and a connected mailbox.
type syncEnv struct {
	t     *testing.T
	ctx   context.Context
	stack *mailtest.Stack
	idp   *fakeidp.IdP
	db    *store.DB
	oauth *oauth.Service
	mb    store.Mailbox
	// provider is the stand-in Microsoft as oauth knows it.
	provider oauth.Provider
}

func newSyncEnv(t *testing.T, dialect string) *syncEnv {
	t.Helper()
	return newSyncEnvWith(t, dialect, nil)
}

// newSyncEnvWith is newSyncEnv with the stand-in's options changed; the
// oauth service then follows the stand-in's clock.
func newSyncEnvWith(t *testing.T, dialect string, change func(*fakeidp.Options)) *syncEnv {
	t.Helper()
	opts := fakeidp.Options{Accounts: []fakeidp.Account{{Address: supportAddr, Name: "Support"}}, Clock: &fakeidp.Clock{}}
	if change != nil {
		change(&opts)
	}
	idp := fakeidp.New(opts)
	idp.AddApp(fakeidp.App{ClientID: syncClientID, Name: "Postdesk", ClientSecret: "s3cret", RedirectURIs: []string{syncRedirect}})
	stack := mailtest.Start(t, mailtest.Options{IdP: idp})
	e := &syncEnv{t: t, ctx: context.Background(), stack: stack, idp: idp, db: storetest.Open(t, dialect)}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	p := oauth.Microsoft("organizations", stack.IdPURL)
	p.ClientID, p.ClientSecret = syncClientID, "s3cret"
	host, port, _ := strings.Cut(stack.IMAPAddr, ":")
	p.MailHosts = []string{host} // the test's Dovecot stands in for Microsoft's servers
	e.provider = p
	e.oauth, err = oauth.New(oauth.Config{DB: e.db, Vault: vault, Providers: []oauth.Provider{p}, RedirectURL: syncRedirect,
		Now: idp.Clock().Now, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	var portN int
	fmt.Sscan(port, &portN)
	err = e.db.Write(e.ctx, func(tx *store.Tx) error {
		var err error
		if e.mb, err = tx.CreateMailbox(e.ctx, supportAddr, "Support"); err != nil {
			return err
		}
		if err := tx.SetMailboxAuthKind(e.ctx, e.mb.ID, store.AuthOAuth, "microsoft", time.Now()); err != nil {
			return err
		}
		return tx.PutMailboxServer(e.ctx, store.MailboxServer{MailboxID: e.mb.ID, IMAPHost: host, IMAPPort: portN,
			IMAPSecurity: "none", AuthMethod: "xoauth2", Folders: []string{"INBOX"}, InitialDays: 14, MaxAgeDays: 90, Enabled: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.connect()
	return e
}

// connect signs the mailbox in at the stand-in (Connect or Reauthenticate).
func (e *syncEnv) connect() {
	e.t.Helper()
	u, err := e.oauth.Begin(e.ctx, e.mb.ID, 1, false)
	if err != nil {
		e.t.Fatal(err)
	}
	cb, err := e.idp.SignIn(u, supportAddr)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.oauth.Complete(e.ctx, 1, cb.Query()); err != nil {
		e.t.Fatal(err)
	}
}

// run starts a Syncer; it stops at cleanup.
func (e *syncEnv) run(owner string) *mailsync.Syncer {
	e.t.Helper()
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.oauth,
		Owner: owner, Round: 200 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) { cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, time.Second }})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

func message(i int, date time.Time) []byte {
	return []byte(fmt.Sprintf("From: Customer %d <c%d@customer.example>\r\nTo: %s\r\nSubject: Question %d\r\n"+
		"Date: %s\r\nMessage-ID: <q%d@customer.example>\r\n\r\nHello, question %d.\r\n", i, i%50, supportAddr, i, date.Format(time.RFC1123Z), i, i))
}

func (e *syncEnv) deliver(from, to int, date func(i int) time.Time) {
	e.t.Helper()
	for i := from; i < to; i++ {
		if err := e.stack.Deliver(e.ctx, supportAddr, message(i, date(i))); err != nil {
			e.t.Fatalf("deliver %d: %v", i, err)
		}
	}
}

// waitTickets waits until the database holds n messages for the mailbox.
func (e *syncEnv) waitMessages(n int, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		got, err := e.db.CountMessages(e.ctx, e.mb.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if got == n {
			return time.Since(start)
		}
		if got > n {
			e.t.Fatalf("%d messages stored, want %d: duplicates", got, n)
		}
		if time.Since(start) > within {
			st, _ := e.db.SyncStatus(e.ctx, e.mb.ID)
			e.t.Fatalf("after %s: %d of %d messages stored (sync status %+v)", within, got, n, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertExactlyOnce checks that n distinct Message-IDs are stored, each once.
func (e *syncEnv) assertExactlyOnce(n int) {
	e.t.Helper()
	tickets, err := e.db.CountTickets(e.ctx, store.TicketFilter{})
	if err != nil || tickets != n {
		e.t.Fatalf("%d tickets, want %d (%v)", tickets, n, err)
	}
	if got, _ := e.db.CountMessages(e.ctx, e.mb.ID); got != n {
		e.t.Fatalf("%d messages, want %d", got, n)
	}
}

func now(int) time.Time { return time.Now() }

// 1,000 messages delivered while Postdesk runs become exactly 1,000
// tickets; a new message arrives through IDLE within 5 seconds.
func TestSyncDeliveredWhileRunning(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	e.run("p1")
	e.deliver(0, 1000, now)
	e.waitMessages(1000, 2*time.Minute)
	e.assertExactlyOnce(1000)
	start := time.Now()
	e.deliver(1000, 1001, now)
	latency := e.waitMessages(1001, 5*time.Second)
	t.Logf("IDLE: a delivered message became a ticket in %s (measured from delivery start %s)", latency, time.Since(start))
	st, _ := e.db.SyncStatus(e.ctx, e.mb.ID)
	if st.MessagesDay != 1001 || st.LastSuccessAt.IsZero() {
		t.Errorf("sync status = %+v", st)
	}
}

// The stand-in revokes the token: the mailbox needs re-authentication and
// stops; 300 messages arrive over 3 days; after Reauthenticate all 300
// become tickets, none twice.
func TestSyncCatchesUpAfterReauthentication(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	e.run("p1")
	e.deliver(0, 10, now)
	e.waitMessages(10, time.Minute)

	if err := e.idp.Revoke(supportAddr); err != nil {
		t.Fatal(err)
	}
	// The session is dropped (as servers do); at the next login Dovecot
	// refuses the revoked token, the refresh-and-retry is refused by the
	// provider, and the mailbox needs re-authentication.
	if err := e.stack.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := e.oauth.Status(e.ctx, e.mb.ID)
		if st.State == store.AuthNeedsReauth {
			if !strings.Contains(st.Reason, "revoked") && !strings.Contains(st.Code, "50173") {
				t.Errorf("needs_reauth reason = %q (%s), want the provider's revocation", st.Reason, st.Code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state after revocation = %s", st.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	threeDaysAgo := time.Now().Add(-72 * time.Hour)
	e.deliver(10, 310, func(i int) time.Time { return threeDaysAgo.Add(time.Duration(i-10) * 14 * time.Minute) })
	time.Sleep(time.Second)
	if got, _ := e.db.CountMessages(e.ctx, e.mb.ID); got != 10 {
		t.Fatalf("fetched %d messages while the mailbox needed re-authentication", got)
	}
	e.connect() // Reauthenticate
	e.waitMessages(310, 2*time.Minute)
	e.assertExactlyOnce(310)
}

// Dovecot restarts mid-sync; the sync recovers by itself.
func TestSyncSurvivesDovecotRestart(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	e.run("p1")
	e.deliver(0, 300, now)
	if err := e.stack.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.deliver(300, 400, now)
	e.waitMessages(400, 2*time.Minute)
	e.assertExactlyOnce(400)
}

// The folder is recreated with the same messages (new UIDVALIDITY): no duplicates.
func TestSyncUIDValidityChange(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	e.run("p1")
	e.deliver(0, 50, now)
	e.waitMessages(50, time.Minute)
	before, _ := mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "INBOX")
	uv, err := e.stack.RecreateFolder(e.ctx, supportAddr, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if uv == before.UIDValidity {
		t.Fatal("UIDVALIDITY did not change")
	}
	e.deliver(50, 60, now)
	e.waitMessages(60, time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, _ := mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "INBOX")
		if cp.UIDValidity == uv && cp.LastUID >= 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint = %+v, want UIDVALIDITY %d and the rescan finished", cp, uv)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.assertExactlyOnce(60)
}

// Two syncers on one PostgreSQL (as two processes would be): the mailbox is
// synced by one of them; when it stops, the other takes over within a
// minute, with no duplicates. cmd/postdesk tests the same with real serve
// processes killed with SIGKILL.
func TestSyncLeasesOnPostgres(t *testing.T) {
	e := newSyncEnv(t, "postgres")
	ctxA, stopA := context.WithCancel(e.ctx)
	a, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.oauth,
		Owner: "process-a", Round: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	doneA := make(chan struct{})
	go func() { defer close(doneA); a.Run(ctxA) }()
	e.deliver(0, 20, now)
	e.waitMessages(20, time.Minute)
	b := e.run("process-b")
	time.Sleep(time.Second)
	if len(a.Running()) != 1 || len(b.Running()) != 0 {
		t.Fatalf("running: a %v, b %v; want the mailbox on a only", a.Running(), b.Running())
	}
	stopA()
	<-doneA
	start := time.Now()
	for len(b.Running()) != 1 {
		if time.Since(start) > time.Minute {
			t.Fatal("b did not take the mailbox over within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("takeover after a clean stop: %s", time.Since(start))
	e.deliver(20, 40, now)
	e.waitMessages(40, time.Minute)
	e.assertExactlyOnce(40)
	if owner, _ := e.db.LeaseOwner(e.ctx, e.mb.ID, time.Now()); owner != "process-b" {
		t.Fatalf("lease owner = %q", owner)
	}
}

// A customer's email is missed (it landed in Junk, which is not fetched);
// an agent forwards it 3 days later: a ticket from the customer, dated 3
// days ago. When the admin adds Junk to the folders and the mailbox catches
// up on the original, nothing new is created.
func TestSyncForwardRecoveryThenCatchUp(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	err := e.db.Write(e.ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(e.ctx, store.User{Email: "agent@example.com", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run("p1")
	sent := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Minute)
	original := []byte("From: Ann Customer <ann@customer.example>\r\nTo: " + supportAddr + "\r\nSubject: Broken blender\r\n" +
		"Date: " + sent.Format(time.RFC1123Z) + "\r\nMessage-ID: <orig-blender@customer.example>\r\n\r\nMy blender broke.\r\n")
	if err := e.stack.Append(e.ctx, supportAddr, "", "Junk", [][]byte{original}); err != nil {
		t.Fatal(err)
	}
	forward := []byte("From: Agent <agent@example.com>\r\nTo: " + supportAddr + "\r\nSubject: Fwd: Broken blender\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <fwd-blender@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"This was in Junk.\r\n\r\n---------- Forwarded message ---------\r\nFrom: Ann Customer <ann@customer.example>\r\n" +
		"Date: " + sent.Format("Mon, Jan 2, 2006 at 3:04 PM") + "\r\nSubject: Broken blender\r\nTo: <" + supportAddr + ">\r\n\r\nMy blender broke.\r\n")
	if err := e.stack.Deliver(e.ctx, supportAddr, forward); err != nil {
		t.Fatal(err)
	}
	e.waitMessages(2, time.Minute) // the forward and the recovered original
	tickets, _ := e.db.Tickets(e.ctx, store.TicketFilter{})
	if len(tickets) != 1 || tickets[0].RequesterAddress != "ann@customer.example" || !tickets[0].CreatedAt.Equal(sent) {
		t.Fatalf("tickets = %+v; want one from ann dated %s", tickets, sent)
	}
	// The admin adds Junk: the sync restarts with it and catches up.
	srv, _ := e.db.MailboxServer(e.ctx, e.mb.ID)
	srv.Folders, srv.UpdatedAt = []string{"INBOX", "Junk"}, time.Time{}
	if err := e.db.Write(e.ctx, func(tx *store.Tx) error { return tx.PutMailboxServer(e.ctx, srv) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if cp, _ := mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "Junk"); cp.LastUID >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Junk was never synced")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, _ := e.db.CountTickets(e.ctx, store.TicketFilter{}); n != 1 {
		t.Fatalf("%d tickets after the catch-up, want 1", n)
	}
	if msgs, _ := e.db.TicketMessages(e.ctx, tickets[0].ID); len(msgs) != 1 {
		t.Fatalf("the ticket shows %d messages, want the original once", len(msgs))
	}
}

// A mailbox paused (its settings saved with Enabled false) stops at once,
// not at the next refresh of the mailbox list, and resumes at once: a
// tryout paused a mailbox that went on fetching and acknowledging for 9 s.
// The Syncer runs with its defaults (a round and a refresh of 5 s).
func TestSyncPauseTakesEffectAtOnce(t *testing.T) {
	e := newSyncEnv(t, "sqlite")
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: ingest.New(e.db, ingest.Options{}), OAuth: e.oauth, Owner: "pause-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	running := func(want bool, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for !slices.Contains(s.Running(), e.mb.ID) == want {
			if time.Since(start) > within {
				t.Fatalf("mailbox running = %v %v after the change, want %v", !want, within, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	running(true, 15*time.Second)
	setEnabled := func(enabled bool) {
		t.Helper()
		err := e.db.Write(e.ctx, func(tx *store.Tx) error {
			srv, err := tx.MailboxServer(e.ctx, e.mb.ID)
			if err != nil {
				return err
			}
			srv.Enabled = enabled
			return tx.PutMailboxServer(e.ctx, srv)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setEnabled(false)
	t.Logf("paused: stopped after %v", running(false, 2*time.Second))
	setEnabled(true)
	t.Logf("resumed: running after %v", running(true, 2*time.Second))
}
