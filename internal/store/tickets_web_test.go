package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestCountTicketsByStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		var a, b store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if a, err = tx.CreateMailbox(ctx, "a@example.com", ""); err != nil {
				return err
			}
			if b, err = tx.CreateMailbox(ctx, "b@example.com", ""); err != nil {
				return err
			}
			for _, tk := range []store.Ticket{
				{MailboxID: a.ID, Subject: "Invoice wrong", Status: store.StatusOpen},
				{MailboxID: a.ID, Subject: "Invoice missing", Status: store.StatusSolved},
				{MailboxID: a.ID, Subject: "Login broken", Status: store.StatusOpen},
				{MailboxID: b.ID, Subject: "Invoice late", Status: store.StatusPending},
			} {
				tk.RequesterAddress, tk.CreatedAt = "x@customer.test", now
				if _, err := tx.CreateTicket(ctx, tk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			f    store.TicketFilter
			want map[string]int
		}{
			{store.TicketFilter{}, map[string]int{"open": 2, "pending": 1, "solved": 1}},
			{store.TicketFilter{Status: store.StatusSolved}, map[string]int{"open": 2, "pending": 1, "solved": 1}},
			{store.TicketFilter{MailboxID: b.ID}, map[string]int{"open": 0, "pending": 1, "solved": 0}},
			{store.TicketFilter{Query: "invoice"}, map[string]int{"open": 1, "pending": 1, "solved": 1}},
			{store.TicketFilter{Query: "invoice", MailboxID: a.ID}, map[string]int{"open": 1, "pending": 0, "solved": 1}},
		} {
			got, err := db.CountTicketsByStatus(ctx, tc.f)
			if err != nil {
				t.Fatalf("count %+v: %v", tc.f, err)
			}
			for s, n := range tc.want {
				if got[s] != n {
					t.Errorf("count %+v: %s = %d, want %d (all: %v)", tc.f, s, got[s], n, got)
				}
			}
		}
	})
}
