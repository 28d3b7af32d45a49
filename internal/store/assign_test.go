package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestTicketAssignee(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		var ann, bob store.User
		var mb store.Mailbox
		ids := map[string]int64{}
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if ann, err = tx.CreateUser(ctx, store.User{Email: "ann@example.com", Name: "Ann", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
				return err
			}
			if bob, err = tx.CreateUser(ctx, store.User{Email: "bob@example.com", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
				return err
			}
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
				return err
			}
			for i, s := range []string{"printer", "invoice", "login", "refund"} {
				id, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: s, RequesterAddress: "x@customer.test",
					CreatedAt: now.Add(time.Duration(i) * time.Minute)})
				if err != nil {
					return err
				}
				ids[s] = id
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Hour)
		assign := func(ticket, user int64) int64 {
			t.Helper()
			var prev int64
			if err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				prev, err = tx.SetTicketAssignee(ctx, ticket, user, later)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return prev
		}
		if prev := assign(ids["printer"], ann.ID); prev != 0 {
			t.Errorf("first assignment: previous = %d, want 0", prev)
		}
		if prev := assign(ids["printer"], bob.ID); prev != ann.ID {
			t.Errorf("reassignment: previous = %d, want Ann %d", prev, ann.ID)
		}
		if prev := assign(ids["printer"], bob.ID); prev != bob.ID {
			t.Errorf("same assignee again: previous = %d, want Bob %d", prev, bob.ID)
		}
		assign(ids["invoice"], ann.ID)
		assign(ids["login"], ann.ID)
		if prev := assign(ids["login"], 0); prev != ann.ID {
			t.Errorf("unassign: previous = %d, want Ann %d", prev, ann.ID)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.SetTicketAssignee(ctx, 99999, ann.ID, later)
			return err
		}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("assigning a missing ticket: %v, want ErrNotFound", err)
		}

		// Claiming takes only a ticket nobody owns.
		for _, tc := range []struct {
			ticket int64
			want   bool
		}{{ids["printer"], false}, {ids["refund"], true}, {ids["refund"], false}} {
			var got bool
			if err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				got, err = tx.ClaimTicket(ctx, tc.ticket, ann.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("claim ticket %d = %v, want %v", tc.ticket, got, tc.want)
			}
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.SetTicketAssignee(ctx, ids["refund"], 0, now.Add(3*time.Minute))
			return err
		}); err != nil {
			t.Fatal(err)
		}

		tk, err := db.Ticket(ctx, ids["printer"])
		if err != nil {
			t.Fatal(err)
		}
		if tk.AssigneeUserID != bob.ID || tk.AssigneeEmail != "bob@example.com" || tk.AssigneeName != "" {
			t.Errorf("printer's assignee = %d %q %q, want Bob", tk.AssigneeUserID, tk.AssigneeName, tk.AssigneeEmail)
		}
		if !tk.UpdatedAt.Equal(later) {
			t.Errorf("an assignment did not move last activity: %v", tk.UpdatedAt)
		}
		tk, _ = db.Ticket(ctx, ids["invoice"])
		if tk.AssigneeUserID != ann.ID || tk.AssigneeName != "Ann" || tk.AssigneeEmail != "ann@example.com" {
			t.Errorf("invoice's assignee = %d %q %q, want Ann", tk.AssigneeUserID, tk.AssigneeName, tk.AssigneeEmail)
		}
		tk, _ = db.Ticket(ctx, ids["refund"])
		if tk.AssigneeUserID != 0 || tk.AssigneeName != "" || tk.AssigneeEmail != "" {
			t.Errorf("refund's assignee = %d %q %q, want none", tk.AssigneeUserID, tk.AssigneeName, tk.AssigneeEmail)
		}

		subjects := func(f store.TicketFilter) []string {
			t.Helper()
			list, err := db.Tickets(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			n, err := db.CountTickets(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(list) {
				t.Errorf("count %+v = %d, list has %d", f, n, len(list))
			}
			var out []string
			for _, tk := range list {
				out = append(out, tk.Subject)
			}
			return out
		}
		for _, tc := range []struct {
			f    store.TicketFilter
			want []string
		}{
			{store.TicketFilter{Assignee: ann.ID}, []string{"invoice"}},
			{store.TicketFilter{Assignee: bob.ID}, []string{"printer"}},
			{store.TicketFilter{Assignee: store.Unassigned}, []string{"login", "refund"}},
			{store.TicketFilter{Assignee: store.Unassigned, Search: mustParse(t, "log")}, []string{"login"}},
			{store.TicketFilter{}, []string{"login", "invoice", "printer", "refund"}},
		} {
			got := subjects(tc.f)
			if len(got) != len(tc.want) {
				t.Errorf("tickets %+v = %v, want %v", tc.f, got, tc.want)
				continue
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("tickets %+v = %v, want %v", tc.f, got, tc.want)
					break
				}
			}
		}

		for _, tc := range []struct {
			f    store.TicketFilter
			user int64
			want store.ViewCounts
		}{
			{store.TicketFilter{}, ann.ID, store.ViewCounts{Mine: 1, Unassigned: 2, All: 4}},
			{store.TicketFilter{Assignee: store.Unassigned}, bob.ID, store.ViewCounts{Mine: 1, Unassigned: 2, All: 4}},
			{store.TicketFilter{Search: mustParse(t, "-refund status:open")}, ann.ID, store.ViewCounts{Mine: 1, Unassigned: 1, All: 3}}, // printer, invoice, login
			{store.TicketFilter{Status: store.StatusSolved}, ann.ID, store.ViewCounts{}},
		} {
			got, err := db.CountTicketViews(ctx, tc.f, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("views %+v for %d = %+v, want %+v", tc.f, tc.user, got, tc.want)
			}
		}
		// Status tabs count within a view.
		counts, err := db.CountTicketsByStatus(ctx, store.TicketFilter{Assignee: store.Unassigned})
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.StatusOpen] != 2 {
			t.Errorf("open unassigned = %d, want 2", counts[store.StatusOpen])
		}

		// A disabled user is not assignable.
		if err := db.ExecForTest(ctx, `UPDATE users SET disabled_at = ? WHERE id = ?`, later.UnixMilli(), bob.ID); err != nil {
			t.Fatal(err)
		}
		users, err := db.AssignableUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 || users[0].ID != ann.ID {
			t.Errorf("assignable users = %+v, want Ann only", users)
		}
	})
}
