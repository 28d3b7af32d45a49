package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestEventsDispatchedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		var mb store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support"); err != nil {
				return err
			}
			for _, e := range []store.Event{
				{Kind: store.EventMailboxAuthStateChange, MailboxID: mb.ID, Data: map[string]any{"state": "needs_reauth", "previous": "connected"}, CreatedAt: at},
				{Kind: store.EventMessageQuarantined, MailboxID: mb.ID, MessageID: 7, CreatedAt: at.Add(time.Second)},
			} {
				if err := tx.AddEvent(ctx, &e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// An event of a rolled-back change is never told.
		boom := errors.New("boom")
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.AddEvent(ctx, &store.Event{Kind: store.EventTicketCreated, TicketID: 99}); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.AddEvent(ctx, &store.Event{}) }); err == nil {
			t.Fatal("an event without a kind was recorded")
		}

		var claimed []store.Event
		err = db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if claimed, err = tx.ClaimEvents(ctx, 10); err != nil {
				return err
			}
			ids := make([]int64, len(claimed))
			for i, e := range claimed {
				ids[i] = e.ID
			}
			return tx.MarkEventsDispatched(ctx, ids, at.Add(time.Minute))
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 2 || claimed[0].Kind != store.EventMailboxAuthStateChange || claimed[1].Kind != store.EventMessageQuarantined {
			t.Fatalf("claimed %+v", claimed)
		}
		if e := claimed[0]; e.MailboxID != mb.ID || e.Data["state"] != "needs_reauth" || e.Data["previous"] != "connected" || !e.CreatedAt.Equal(at) || e.TicketID != 0 {
			t.Fatalf("first event = %+v", e)
		}
		if claimed[1].MessageID != 7 || claimed[1].Data != nil {
			t.Fatalf("second event = %+v", claimed[1])
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			again, err := tx.ClaimEvents(ctx, 10)
			if len(again) != 0 {
				t.Errorf("dispatched events claimed again: %+v", again)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		since, err := db.EventsSince(ctx, claimed[0].ID, 10)
		if err != nil || len(since) != 1 || since[0].ID != claimed[1].ID || since[0].DispatchedAt.IsZero() {
			t.Fatalf("EventsSince = %+v, %v", since, err)
		}
		if last, err := db.LastEventID(ctx); err != nil || last != claimed[1].ID {
			t.Fatalf("LastEventID = %d, %v", last, err)
		}
	})
}
