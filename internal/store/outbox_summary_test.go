package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// OutboxSummary counts a mailbox's outbox by state and finds its newest
// mailbox-wide refusal; sends join into one activity entry while they
// keep coming.
func TestOutboxSummary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		wide := []string{"auth_disabled", "send_as_denied"}
		sum, err := db.OutboxSummary(ctx, f.mb.ID, wide)
		if err != nil || sum.Problem != nil || !sum.LastSentAt.IsZero() || len(sum.Counts) != 6 || sum.Counts[store.DeliveryQueued] != 0 {
			t.Fatalf("empty outbox: %+v, %v", sum, err)
		}
		ids := []int64{f.queue(t, 1, rcpt), f.queue(t, 2, rcpt), f.queue(t, 3, rcpt), f.queue(t, 4, rcpt)}
		f.queue(t, 5, store.Outgoing{EnvelopeFrom: rcpt.EnvelopeFrom, Recipients: rcpt.Recipients, Held: true})
		f.write(t, func(tx *store.Tx) error {
			_, err := tx.ClaimOutbox(ctx, f.mb.ID, "w", f.now, f.now.Add(time.Hour))
			return err
		})
		attempt := func(id int64, at time.Time, outcome func(tx *store.Tx) error) {
			t.Helper()
			f.write(t, func(tx *store.Tx) error {
				if ok, err := tx.BeginAttempt(ctx, id, "w", at); err != nil || !ok {
					t.Fatalf("begin %d: %v %v", id, ok, err)
				}
				return outcome(tx)
			})
		}
		sent1 := f.now.Add(time.Minute)
		attempt(ids[0], sent1, func(tx *store.Tx) error {
			if err := tx.MarkSent(ctx, ids[0], sent1, false); err != nil {
				return err
			}
			return tx.RecordSentActivity(ctx, f.mb.ID, sent1)
		})
		refused := f.now.Add(2 * time.Minute)
		attempt(ids[1], refused, func(tx *store.Tx) error {
			return tx.MarkFailed(ctx, ids[1], "auth_disabled", "535 5.7.139 Authentication unsuccessful", refused)
		})
		attempt(ids[2], refused.Add(time.Second), func(tx *store.Tx) error {
			return tx.MarkFailed(ctx, ids[2], "recipient_unknown", "550 5.1.1 no such user", refused.Add(time.Second))
		})

		sum, err = db.OutboxSummary(ctx, f.mb.ID, wide)
		if err != nil {
			t.Fatal(err)
		}
		c := sum.Counts
		if c[store.DeliverySent] != 1 || c[store.DeliveryFailed] != 2 || c[store.DeliveryQueued] != 1 || c[store.DeliveryHeld] != 1 || !sum.LastSentAt.Equal(sent1) {
			t.Errorf("summary = %+v", sum)
		}
		// The newest mailbox-wide one, not the newer refused recipient.
		if p := sum.Problem; p == nil || p.MessageID != ids[1] || p.TicketID != f.ticketID || p.ErrorKind != "auth_disabled" ||
			p.LastError != "535 5.7.139 Authentication unsuccessful" || !p.At.Equal(refused) || p.State != store.DeliveryFailed {
			t.Errorf("problem = %+v", sum.Problem)
		}
		if sum, _ := db.OutboxSummary(ctx, f.mb.ID, nil); sum.Problem != nil {
			t.Errorf("no kinds asked, problem %+v", sum.Problem)
		}
		if other, _ := db.OutboxSummary(ctx, f.mb.ID+1, wide); other.Counts[store.DeliveryFailed] != 0 || other.Problem != nil {
			t.Errorf("another mailbox's summary = %+v", other)
		}

		// Sends within two minutes of each other are one entry; later ones a new one.
		sent2, sent3 := refused.Add(30*time.Second), refused.Add(10*time.Minute)
		attempt(ids[3], sent2, func(tx *store.Tx) error { return tx.RecordSentActivity(ctx, f.mb.ID, sent2) })
		f.write(t, func(tx *store.Tx) error { return tx.RecordSentActivity(ctx, f.mb.ID, sent3) })
		acts, err := db.MailboxActivity(ctx, f.mb.ID, 10)
		if err != nil || len(acts) != 2 || acts[0].Kind != store.ActivitySend || acts[0].Count != 1 || !acts[0].CreatedAt.Equal(sent3) ||
			acts[1].Count != 2 || !acts[1].CreatedAt.Equal(sent2) {
			t.Errorf("activity = %+v, %v", acts, err)
		}
	})
}
