package store_test

import (
	"context"
	"errors"
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
			{store.TicketFilter{Search: mustParse(t, "invoice")}, map[string]int{"open": 1, "pending": 1, "solved": 1}},
			{store.TicketFilter{Search: mustParse(t, "invoice"), MailboxID: a.ID}, map[string]int{"open": 1, "pending": 0, "solved": 1}},
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

func TestSessionByID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		s := store.Session{TokenHash: "h1", CSRFToken: "c1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
		err := db.Write(ctx, func(tx *store.Tx) error {
			u, err := tx.CreateUser(ctx, store.User{Email: "a@example.com", Role: store.RoleAgent, PasswordHash: "x"})
			if err != nil {
				return err
			}
			s.UserID = u.ID
			return tx.CreateSession(ctx, &s)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, u, err := db.SessionByID(ctx, s.ID, now)
		if err != nil || got.CSRFToken != "c1" || u.Email != "a@example.com" {
			t.Fatalf("session by id = %+v, %+v, %v", got, u, err)
		}
		if _, _, err := db.SessionByID(ctx, s.ID, now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired session: %v, want ErrNotFound", err)
		}
		if _, _, err := db.SessionByID(ctx, s.ID+100, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing session: %v, want ErrNotFound", err)
		}
	})
}
