package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// outboxFixture is a mailbox with a ticket.
type outboxFixture struct {
	db       *store.DB
	mb       store.Mailbox
	ticketID int64
	now      time.Time
}

func newOutboxFixture(t testing.TB, db *store.DB) *outboxFixture {
	t.Helper()
	ctx := context.Background()
	f := &outboxFixture{db: db, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	err := db.Write(ctx, func(tx *store.Tx) (err error) {
		f.mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support")
		if err != nil {
			return err
		}
		f.ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mb.ID, Subject: "Printer", RequesterAddress: "ann@customer.test", CreatedAt: f.now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// queue stores an outgoing message (n names it) and returns its id.
func (f *outboxFixture) queue(t testing.TB, n int, out store.Outgoing) int64 {
	t.Helper()
	ctx := context.Background()
	mid := fmt.Sprintf("pd.%d@example.com", n)
	m := store.Message{MailboxID: f.mb.ID, TicketID: f.ticketID, Direction: "out", Kind: store.KindReply,
		DedupeKey: store.DedupeKey(mid, ""), MessageID: mid, Subject: "Re: Printer", ReceivedAt: f.now,
		TextBody: "hello", RawSHA256: storetest.PutBlob(t, f.db, "raw "+mid), RawSize: 10}
	if out.Auto {
		m.Kind = store.KindAck
	}
	if err := f.db.Write(ctx, func(tx *store.Tx) error { return tx.QueueMessage(ctx, &m, out) }); err != nil {
		t.Fatal(err)
	}
	if m.Delivery == nil {
		t.Fatal("QueueMessage left Delivery nil")
	}
	return m.ID
}

func (f *outboxFixture) write(t testing.TB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := f.db.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func (f *outboxFixture) item(t *testing.T, id int64) store.OutboxItem {
	t.Helper()
	o, err := f.db.OutboxItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var rcpt = store.Outgoing{EnvelopeFrom: "support@example.com", Recipients: []string{"Ann@Customer.test"}}

func TestOutboxLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		a, b := f.queue(t, 1, rcpt), f.queue(t, 2, rcpt)

		next, err := db.NextQueued(ctx, f.mb.ID)
		if err != nil || next.ID != a {
			t.Fatalf("next queued = %d, %v; want %d (oldest first)", next.ID, err, a)
		}
		if next.Recipients[0] != "ann@customer.test" || next.EnvelopeFrom != "support@example.com" || next.MessageID != "pd.1@example.com" || next.RawSize != 10 {
			t.Errorf("item = %+v", next)
		}
		due, err := db.DueOutboxMailboxes(ctx, f.now)
		if err != nil || len(due) != 1 || due[0] != f.mb.ID {
			t.Fatalf("due mailboxes = %v, %v", due, err)
		}

		// No attempt without the lease.
		var began bool
		f.write(t, func(tx *store.Tx) (err error) { began, err = tx.BeginAttempt(ctx, a, "w1", f.now); return err })
		if began {
			t.Fatal("an attempt was recorded without holding the lease")
		}
		var claimed bool
		f.write(t, func(tx *store.Tx) (err error) {
			claimed, err = tx.ClaimOutbox(ctx, f.mb.ID, "w1", f.now, f.now.Add(time.Minute))
			return err
		})
		if !claimed {
			t.Fatal("first claim failed")
		}
		f.write(t, func(tx *store.Tx) (err error) {
			claimed, err = tx.ClaimOutbox(ctx, f.mb.ID, "w2", f.now.Add(30*time.Second), f.now.Add(90*time.Second))
			return err
		})
		if claimed {
			t.Fatal("a second owner claimed a live lease")
		}
		f.write(t, func(tx *store.Tx) (err error) { began, err = tx.BeginAttempt(ctx, a, "w1", f.now); return err })
		if !began {
			t.Fatal("attempt not recorded")
		}
		o := f.item(t, a)
		if o.State != store.DeliverySending || o.Attempts != 1 || o.AttemptOwner != "w1" || !o.AttemptStartedAt.Equal(f.now) {
			t.Fatalf("after BeginAttempt: %+v", o)
		}
		// Twice is refused: the row is no longer queued.
		f.write(t, func(tx *store.Tx) (err error) { began, err = tx.BeginAttempt(ctx, a, "w1", f.now); return err })
		if began {
			t.Fatal("a second attempt of a message being sent was recorded")
		}
		// While w1's lease lives, its sending row is not due for anyone.
		if due, _ := db.DueOutboxMailboxes(ctx, f.now.Add(10*time.Second)); len(due) != 1 {
			t.Fatalf("due = %v (b is still queued)", due)
		}
		f.write(t, func(tx *store.Tx) error { return tx.MarkSent(ctx, a, f.now.Add(time.Second), true) })
		o = f.item(t, a)
		if o.State != store.DeliverySent || !o.SentAt.Equal(f.now.Add(time.Second)) || !o.CopyPending {
			t.Fatalf("after MarkSent: %+v", o)
		}
		f.write(t, func(tx *store.Tx) error { return tx.MarkCopied(ctx, a) })

		// b: a temporary failure waits until next, and keeps order.
		f.write(t, func(tx *store.Tx) (err error) { began, err = tx.BeginAttempt(ctx, b, "w1", f.now); return err })
		retryAt := f.now.Add(2 * time.Minute)
		f.write(t, func(tx *store.Tx) error {
			return tx.MarkRetry(ctx, b, "throttled", "451 4.3.2\r\n please slow down", retryAt, f.now)
		})
		o = f.item(t, b)
		if o.State != store.DeliveryQueued || o.ErrorKind != "throttled" || o.LastError != "451 4.3.2 please slow down" || !o.NextAttemptAt.Equal(retryAt) {
			t.Fatalf("after MarkRetry: %+v", o)
		}
		if has, _ := db.HasOutboxWork(ctx, f.mb.ID, f.now); has {
			t.Error("work before the retry time")
		}
		if has, _ := db.HasOutboxWork(ctx, f.mb.ID, retryAt); !has {
			t.Error("no work at the retry time")
		}
		// A permanent failure; then an agent retries it.
		f.write(t, func(tx *store.Tx) (err error) {
			if _, err := tx.ClaimOutbox(ctx, f.mb.ID, "w1", retryAt, retryAt.Add(time.Minute)); err != nil {
				return err
			}
			began, err = tx.BeginAttempt(ctx, b, "w1", retryAt)
			return err
		})
		if !began {
			t.Fatal("attempt after renewing the lease not recorded")
		}
		f.write(t, func(tx *store.Tx) error {
			return tx.MarkFailed(ctx, b, "recipient_unknown", "550 5.1.1 no such user", retryAt)
		})
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.MarkSent(ctx, b, retryAt, false) })
		if !errors.Is(err, store.ErrWrongState) {
			t.Fatalf("MarkSent of a failed message: %v, want ErrWrongState", err)
		}
		f.write(t, func(tx *store.Tx) error { return tx.Requeue(ctx, b, retryAt) })
		o = f.item(t, b)
		if o.State != store.DeliveryQueued || o.Attempts != 2 || o.LastError != "" {
			t.Fatalf("after Requeue: %+v", o)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.Requeue(ctx, a, retryAt) })
		if !errors.Is(err, store.ErrWrongState) {
			t.Fatalf("Requeue of a sent message: %v, want ErrWrongState", err)
		}

		// Deliveries on the ticket's messages.
		msgs, err := db.TicketMessages(ctx, f.ticketID)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("messages = %d, %v", len(msgs), err)
		}
		if d := msgs[0].Delivery; d == nil || d.State != store.DeliverySent || d.Attempts != 1 {
			t.Errorf("first delivery = %+v", d)
		}
		if d := msgs[1].Delivery; d == nil || d.State != store.DeliveryQueued || d.Attempts != 2 {
			t.Errorf("second delivery = %+v", d)
		}
		m, err := db.Message(ctx, a)
		if err != nil || m.Delivery == nil || m.Delivery.State != store.DeliverySent {
			t.Fatalf("Message(a).Delivery = %+v, %v", m.Delivery, err)
		}
		counts, err := db.OutboxCounts(ctx)
		if err != nil || counts[store.DeliverySent] != 1 || counts[store.DeliveryQueued] != 1 || counts[store.DeliveryHeld] != 0 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
	})
}

// A sender that died mid-attempt: its sending row becomes due once its
// lease lapses, and a new sender can take the mailbox over.
func TestOutboxTakeoverAndUnknown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		a := f.queue(t, 1, rcpt)
		f.write(t, func(tx *store.Tx) error {
			if _, err := tx.ClaimOutbox(ctx, f.mb.ID, "dead", f.now, f.now.Add(time.Minute)); err != nil {
				return err
			}
			_, err := tx.BeginAttempt(ctx, a, "dead", f.now)
			return err
		})
		if due, _ := db.DueOutboxMailboxes(ctx, f.now.Add(30*time.Second)); len(due) != 0 {
			t.Fatalf("due while the lease lives: %v", due)
		}
		later := f.now.Add(2 * time.Minute)
		if due, _ := db.DueOutboxMailboxes(ctx, later); len(due) != 1 {
			t.Fatalf("not due after the lease lapsed: %v", due)
		}
		var claimed bool
		f.write(t, func(tx *store.Tx) (err error) {
			claimed, err = tx.ClaimOutbox(ctx, f.mb.ID, "new", later, later.Add(time.Minute))
			return err
		})
		if !claimed {
			t.Fatal("takeover after the lease lapsed failed")
		}
		stranded, err := db.OutboxItems(ctx, f.mb.ID, store.DeliverySending, 0)
		if err != nil || len(stranded) != 1 || stranded[0].AttemptOwner != "dead" {
			t.Fatalf("stranded = %+v, %v", stranded, err)
		}
		// The dead sender can no longer record anything.
		b := f.queue(t, 2, rcpt)
		var began bool
		f.write(t, func(tx *store.Tx) (err error) { began, err = tx.BeginAttempt(ctx, b, "dead", later); return err })
		if began {
			t.Fatal("a sender whose lease was taken over recorded an attempt")
		}
		f.write(t, func(tx *store.Tx) error { return tx.MarkUnknown(ctx, a, "stopped after sending", later) })
		o := f.item(t, a)
		if o.State != store.DeliveryUnknown || o.ErrorKind != "outcome_unknown" {
			t.Fatalf("after MarkUnknown: %+v", o)
		}
		// An agent says it arrived.
		f.write(t, func(tx *store.Tx) error { return tx.MarkSent(ctx, a, later, false) })
		if o := f.item(t, a); o.State != store.DeliverySent || o.CopyPending {
			t.Fatalf("after MarkSent of unknown: %+v", o)
		}
		f.write(t, func(tx *store.Tx) error { return tx.ReleaseOutbox(ctx, f.mb.ID, "new") })
		f.write(t, func(tx *store.Tx) (err error) {
			claimed, err = tx.ClaimOutbox(ctx, f.mb.ID, "third", later, later.Add(time.Minute))
			return err
		})
		if !claimed {
			t.Fatal("claim after release failed")
		}
	})
}

func TestOutboxHoldAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		held := store.Outgoing{EnvelopeFrom: rcpt.EnvelopeFrom, Recipients: rcpt.Recipients, Held: true}
		ids := []int64{f.queue(t, 1, held), f.queue(t, 2, rcpt), f.queue(t, 3, rcpt)}
		if o := f.item(t, ids[0]); o.State != store.DeliveryHeld {
			t.Fatalf("queued held: %+v", o)
		}
		var n int
		f.write(t, func(tx *store.Tx) (err error) { n, err = tx.HoldQueued(ctx, f.mb.ID, f.now); return err })
		if n != 2 {
			t.Fatalf("held %d, want 2", n)
		}
		if due, _ := db.DueOutboxMailboxes(ctx, f.now); len(due) != 0 {
			t.Fatalf("held mail is due: %v", due)
		}
		f.write(t, func(tx *store.Tx) (err error) { n, err = tx.ReleaseHeld(ctx, f.mb.ID, f.now); return err })
		if n != 3 {
			t.Fatalf("released %d, want 3", n)
		}
		items, err := db.OutboxItems(ctx, f.mb.ID, store.DeliveryQueued, 0)
		if err != nil || len(items) != 3 {
			t.Fatalf("queued = %d, %v", len(items), err)
		}
		for i, o := range items {
			if o.ID != ids[i] {
				t.Errorf("order: item %d is %d, want %d", i, o.ID, ids[i])
			}
		}
		// A held message can fail for good (its mailbox was removed).
		f.write(t, func(tx *store.Tx) (err error) { _, err = tx.HoldQueued(ctx, f.mb.ID, f.now); return err })
		f.write(t, func(tx *store.Tx) error {
			return tx.MarkFailed(ctx, ids[0], "config", "the mailbox was removed", f.now)
		})
	})
}

func TestAcknowledgementCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		ack := store.Outgoing{EnvelopeFrom: rcpt.EnvelopeFrom, Recipients: []string{"ann@customer.test"}, Auto: true}
		f.queue(t, 1, ack)
		f.queue(t, 2, ack)
		f.queue(t, 3, rcpt) // an agent's reply does not count
		n, err := db.AcksSentTo(ctx, "ANN@customer.test", f.now.Add(-time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("acks = %d, %v; want 2", n, err)
		}
		if n, _ := db.AcksSentTo(ctx, "ann@customer.test", f.now.Add(time.Minute)); n != 0 {
			t.Fatalf("acks since later = %d", n)
		}
		// Ack settings and save_sent round trip.
		f.write(t, func(tx *store.Tx) error {
			return tx.SetMailboxAck(ctx, f.mb.ID, true, "Ticket {{ticket}}: {{subject}}")
		})
		mb, err := db.Mailbox(ctx, f.mb.ID)
		if err != nil || !mb.AckEnabled || mb.AckTemplate != "Ticket {{ticket}}: {{subject}}" {
			t.Fatalf("mailbox = %+v, %v", mb, err)
		}
		f.write(t, func(tx *store.Tx) error {
			return tx.PutMailboxServer(ctx, store.MailboxServer{MailboxID: f.mb.ID, IMAPHost: "imap.example.com", IMAPPort: 993,
				IMAPSecurity: "tls", AuthMethod: "plain", SaveSent: true})
		})
		srv, err := db.MailboxServer(ctx, f.mb.ID)
		if err != nil || !srv.SaveSent {
			t.Fatalf("server = %+v, %v", srv, err)
		}
	})
}
