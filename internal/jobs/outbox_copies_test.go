package jobs_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// sentReplies stores n replies of ticket as already sent by mb, each
// asking for a copy in Sent (as MarkSent does for a save_sent mailbox),
// with Message-IDs copy-<tag>-<i>@example.com; missing names replies whose
// stored source is missing. It returns their Message-IDs by row id.
func (e *deskEnv) sentReplies(mb store.Mailbox, ticket int64, tag string, n int, missing map[int]bool) map[int64]string {
	e.t.Helper()
	ids := map[int64]string{}
	now := time.Now().UTC()
	err := e.db.Write(e.ctx, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbox(e.ctx, mb.ID, "test", now, now.Add(time.Minute)); err != nil {
			return err
		}
		for i := range n {
			mid := fmt.Sprintf("copy-%s-%d@example.com", tag, i)
			raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: copy %d\r\nMessage-ID: <%s>\r\nDate: %s\r\n\r\nReply %d.\r\n",
				mb.Address, customerAddr, i, mid, now.Format(time.RFC1123Z), i)
			sum, size, err := e.db.Blobs().Put(strings.NewReader(raw))
			if err != nil {
				return err
			}
			m := store.Message{MailboxID: mb.ID, TicketID: ticket, Direction: "out", Kind: store.KindReply,
				DedupeKey: store.DedupeKey(mid, ""), MessageID: mid, Subject: fmt.Sprintf("Re: copy %d", i), ReceivedAt: now,
				TextBody: "Reply.", RawSHA256: sum, RawSize: size}
			if err := tx.QueueMessage(e.ctx, &m, store.Outgoing{EnvelopeFrom: mb.Address, Recipients: []string{customerAddr}}); err != nil {
				return err
			}
			if _, err := tx.BeginAttempt(e.ctx, m.ID, "test", now); err != nil {
				return err
			}
			if err := tx.MarkSent(e.ctx, m.ID, now, true); err != nil {
				return err
			}
			ids[m.ID] = mid
			if missing[i] {
				// The store keeps a row's blob with it; only a blob lost
				// behind its back can be missing.
				if _, err := tx.SQLTx().ExecContext(e.ctx, storetest.LoseBlobStatement(e.db), sum); err != nil {
					return err
				}
				e.db.Blobs().Release(sum)
			}
		}
		return tx.ReleaseOutbox(e.ctx, mb.ID, "test")
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// sentFolder returns the Message-IDs in user's Sent folder and how often
// each is there.
func sentFolder(t *testing.T, e *deskEnv, user string) map[string]int {
	t.Helper()
	msgs, err := e.stack.Messages(e.ctx, user, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range msgs {
		_, rest, _ := bytes.Cut(m.Raw, []byte("Message-ID: <"))
		id, _, _ := bytes.Cut(rest, []byte(">"))
		got[string(id)]++
	}
	return got
}

// Every copy for Sent of a mailbox that sent more than a batch (and more
// than the 1,000 rows one list reads) is appended to Dovecot's Sent once,
// and no mail is sent for it.
func TestSentCopiesBeyondOneBatch(t *testing.T) {
	const n = 1005
	users := map[string]string{}
	for _, d := range storetest.Dialects {
		users["copies-"+d+"@example.com"] = "pw"
	}
	stack, idp := newStack(t, false, users)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDeskStopped(t, dialect, stack, idp)
			addr := "copies-" + dialect + "@example.com"
			mb := e.addMailbox(addr, "", "pw")
			if srv, err := e.db.MailboxServer(e.ctx, mb.ID); err != nil || !srv.SaveSent {
				t.Fatalf("a password mailbox does not save sent copies: %+v, %v", srv, err)
			}
			ticket := e.newTicket(mb, customerAddr, "Copies", "copies-"+dialect+"@customer.test")
			start := time.Now()
			ids := e.sentReplies(mb, ticket, "many", n, nil)
			stored := time.Since(start)
			if err := e.sender.Drain(e.ctx, mb.ID); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d sent replies stored in %s, their copies appended in %s", n, stored.Round(time.Millisecond), (time.Since(start) - stored).Round(time.Millisecond))
			got := sentFolder(t, e, addr)
			if len(got) != n {
				t.Errorf("Sent holds %d distinct replies, want %d", len(got), n)
			}
			for id, mid := range ids {
				if got[mid] != 1 {
					t.Errorf("reply %s is %d times in Sent", mid, got[mid])
				}
				o, err := e.db.OutboxItem(e.ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if o.CopyPending || o.State != store.DeliverySent || o.Attempts != 1 {
					t.Fatalf("after the drain: %+v", o)
				}
			}
			if c, _ := e.db.OutboxCounts(e.ctx); c[store.DeliverySent] != n {
				t.Errorf("outbox counts %v", c)
			}
		})
	}
}

// A copy that cannot be appended stays pending for a later drain, is
// tried at most three times and then given up with a line in the
// mailbox's activity; the copies after it wait and are kept; nothing is
// ever sent again for a copy.
func TestSentCopyFailuresAreBounded(t *testing.T) {
	const addr = "copies-fail@example.com"
	stack, idp := newStack(t, false, map[string]string{addr: "pw"})
	e := newDeskStopped(t, "sqlite", stack, idp)
	mb := e.addMailbox(addr, "", "pw")
	ticket := e.newTicket(mb, customerAddr, "Copies", "copies-fail@customer.test")
	ids := e.sentReplies(mb, ticket, "a", 4, map[int]bool{1: true}) // the second one's source is missing
	byIndex := map[string]int64{}
	for id, mid := range ids {
		byIndex[mid] = id
	}
	item := func(i int) store.OutboxItem {
		t.Helper()
		o, err := e.db.OutboxItem(e.ctx, byIndex[fmt.Sprintf("copy-a-%d@example.com", i)])
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// A sender of its own on a frozen clock: a copy's retry time comes
	// when the test says so.
	clock := fakeidp.NewClock(time.Now())
	sender, err := jobs.NewSender(jobs.SenderOptions{DB: e.db, Passwords: store.MailboxPasswords(e.db, e.vault),
		Backoff: []time.Duration{time.Minute}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	drain := func() {
		t.Helper()
		if err := sender.Drain(e.ctx, mb.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantCopy := func(i int, pending bool, attempts int) {
		t.Helper()
		if o := item(i); o.CopyPending != pending || o.CopyAttempts != attempts || o.State != store.DeliverySent || o.Attempts != 1 {
			t.Fatalf("reply %d: copy pending %v after %d tries, state %s after %d attempts; want pending %v after %d tries, sent once",
				i, o.CopyPending, o.CopyAttempts, o.State, o.Attempts, pending, attempts)
		}
	}
	gaveUp := func() int {
		t.Helper()
		acts, err := e.db.MailboxActivity(e.ctx, mb.ID, 50)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range acts {
			if a.Kind == store.ActivityError && strings.Contains(a.Message, "could not keep a copy in the Sent folder after 3 tries") {
				n++
			}
		}
		return n
	}
	retry := 2 * time.Minute // more than the back-off, a minute ±20 %

	drain()
	wantCopy(0, false, 0)
	wantCopy(1, true, 1)
	wantCopy(2, true, 0) // not tried: waits with the failed one
	drain()              // not due yet: no try
	wantCopy(1, true, 1)
	clock.Advance(retry)
	drain()
	wantCopy(1, true, 2)
	clock.Advance(retry)
	drain()
	wantCopy(1, false, 3)
	if gaveUp() != 1 {
		t.Fatal("no activity line for the copy given up")
	}
	wantCopy(3, true, 0)
	clock.Advance(retry)
	drain()
	for _, i := range []int{2, 3} {
		wantCopy(i, false, 0)
	}
	got := sentFolder(t, e, addr)
	for _, i := range []int{0, 2, 3} {
		if n := got[fmt.Sprintf("copy-a-%d@example.com", i)]; n != 1 {
			t.Errorf("reply %d is %d times in Sent", i, n)
		}
	}
	if len(got) != 3 {
		t.Errorf("Sent holds %v", got)
	}

	// The Sent folder cannot be reached: every due copy counts a try.
	closed := closedPort(t)
	if _, err := e.db.SQL().ExecContext(e.ctx, fmt.Sprintf(`UPDATE mailbox_servers SET imap_port = %d WHERE mailbox_id = %d`, closed, mb.ID)); err != nil {
		t.Fatal(err)
	}
	more := e.sentReplies(mb, ticket, "b", 2, nil)
	for try := 1; try <= 3; try++ {
		drain()
		for id := range more {
			o, err := e.db.OutboxItem(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.CopyAttempts != try || o.CopyPending != (try < 3) || o.State != store.DeliverySent || o.Attempts != 1 {
				t.Fatalf("try %d: %+v", try, o)
			}
		}
		clock.Advance(retry)
	}
	if gaveUp() != 2 {
		t.Errorf("%d activity lines for copies given up, want 2", gaveUp())
	}
	if has, err := e.db.HasOutboxWork(e.ctx, mb.ID, clock.Now().Add(time.Hour)); err != nil || has {
		t.Errorf("work left after every copy was kept or given up: %v, %v", has, err)
	}
	// No mail was sent for any copy: Postfix accepted none of them.
	var mids []string
	for _, m := range []map[int64]string{ids, more} {
		for _, mid := range m {
			mids = append(mids, mid)
		}
	}
	if got := acceptedOrder(stack.Logs(), mids); len(got) != 0 {
		t.Errorf("Postfix accepted replies stored as sent: %v", got)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
