package desk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// assignFixture is two agents, a disabled one, and three tickets.
type assignFixture struct {
	db              *store.DB
	desk            *desk.Desk
	ann, bob, gone  store.User
	t1, t2, t3      int64
	mailboxID       int64
	lastEventBefore int64
}

func newAssignFixture(t *testing.T, db *store.DB) *assignFixture {
	t.Helper()
	ctx := context.Background()
	f := &assignFixture{db: db, desk: desk.New(db)}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	err := db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if f.ann, err = tx.CreateUser(ctx, store.User{Email: "ann@example.com", Name: "Ann", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
			return err
		}
		if f.bob, err = tx.CreateUser(ctx, store.User{Email: "bob@example.com", Role: store.RoleAdmin, PasswordHash: "x"}); err != nil {
			return err
		}
		if f.gone, err = tx.CreateUser(ctx, store.User{Email: "gone@example.com", Name: "Gone", Role: store.RoleAgent, PasswordHash: "x"}); err != nil {
			return err
		}
		mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
		if err != nil {
			return err
		}
		f.mailboxID = mb.ID
		for _, id := range []*int64{&f.t1, &f.t2, &f.t3} {
			if *id, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Help", RequesterAddress: "x@customer.test", CreatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	q := `UPDATE users SET disabled_at = ? WHERE id = ?`
	if db.Dialect() == "postgres" {
		q = `UPDATE users SET disabled_at = $1 WHERE id = $2`
	}
	if _, err := db.SQL().ExecContext(ctx, q, at.UnixMilli(), f.gone.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

// events returns the ticket.assigned events recorded since the last call.
func (f *assignFixture) events(t *testing.T) []store.Event {
	t.Helper()
	list, err := f.db.EventsSince(context.Background(), f.lastEventBefore, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) > 0 {
		f.lastEventBefore = list[len(list)-1].ID
	}
	return list
}

// eventNotes returns the bodies of a ticket's event notes.
func eventNotes(t *testing.T, db *store.DB, ticketID int64) []string {
	t.Helper()
	notes, err := db.TicketNotes(context.Background(), ticketID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range notes {
		if n.Kind == store.NoteEvent {
			out = append(out, n.Body)
		}
	}
	return out
}

func TestAssign(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newAssignFixture(t, db)

		// Bob assigns two tickets (one twice in the list) to Ann: the answer
		// keeps the order asked, the events follow the ids.
		list, err := f.desk.Assign(ctx, []int64{f.t2, f.t1, f.t2}, f.ann.ID, f.bob)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != f.t2 || list[1].ID != f.t1 {
			t.Fatalf("assigned %+v, want tickets %d and %d", list, f.t2, f.t1)
		}
		for _, tk := range list {
			if tk.AssigneeUserID != f.ann.ID || tk.AssigneeName != "Ann" {
				t.Errorf("ticket %d's assignee = %d %q", tk.ID, tk.AssigneeUserID, tk.AssigneeName)
			}
		}
		evs := f.events(t)
		if len(evs) != 2 {
			t.Fatalf("events = %+v, want one per ticket", evs)
		}
		for i, e := range evs {
			want := []int64{f.t1, f.t2}[i]
			if e.Kind != store.EventTicketAssigned || e.TicketID != want || e.MailboxID != f.mailboxID || e.UserID != f.ann.ID ||
				e.ActorUserID != f.bob.ID || e.Data["previous_assignee_id"] != float64(0) {
				t.Errorf("event %d = %+v", i, e)
			}
		}
		if got := eventNotes(t, db, f.t1); len(got) != 1 || got[0] != "Assigned to Ann by bob@example.com" {
			t.Errorf("notes of ticket %d = %q", f.t1, got)
		}

		// The same assignment again changes and records nothing.
		if _, err := f.desk.Assign(ctx, []int64{f.t1}, f.ann.ID, f.bob); err != nil {
			t.Fatal(err)
		}
		if evs := f.events(t); len(evs) != 0 {
			t.Errorf("a no-op assignment recorded %+v", evs)
		}
		if got := eventNotes(t, db, f.t1); len(got) != 1 {
			t.Errorf("a no-op assignment added a note: %q", got)
		}

		// Bob takes ticket 1 from Ann, then unassigns it.
		tk, err := f.desk.Take(ctx, f.t1, f.bob)
		if err != nil {
			t.Fatal(err)
		}
		if tk.AssigneeUserID != f.bob.ID || tk.AssigneeEmail != "bob@example.com" {
			t.Errorf("taken ticket's assignee = %d %q", tk.AssigneeUserID, tk.AssigneeEmail)
		}
		if _, err := f.desk.Assign(ctx, []int64{f.t1}, 0, f.ann); err != nil {
			t.Fatal(err)
		}
		evs = f.events(t)
		if len(evs) != 2 || evs[0].UserID != f.bob.ID || evs[0].ActorUserID != f.bob.ID || evs[0].Data["previous_assignee_id"] != float64(f.ann.ID) ||
			evs[1].UserID != 0 || evs[1].ActorUserID != f.ann.ID || evs[1].Data["previous_assignee_id"] != float64(f.bob.ID) {
			t.Errorf("take then unassign recorded %+v", evs)
		}
		want := []string{"Assigned to Ann by bob@example.com", "Taken by bob@example.com", "Unassigned by Ann"}
		if got := eventNotes(t, db, f.t1); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("timeline of ticket %d = %q, want %q", f.t1, got, want)
		}
	})
}

func TestAssignRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newAssignFixture(t, db)
		for _, tc := range []struct {
			name     string
			tickets  []int64
			assignee int64
			field    string
			is       error
		}{
			{"no tickets", nil, f.ann.ID, "ticket_ids", nil},
			{"too many", make([]int64, desk.MaxAssignTickets+1), f.ann.ID, "ticket_ids", nil},
			{"unknown user", []int64{f.t1}, 99999, "assignee_id", desk.ErrAssigneeUnavailable},
			{"disabled user", []int64{f.t1}, f.gone.ID, "assignee_id", desk.ErrAssigneeUnavailable},
			{"negative user", []int64{f.t1}, -1, "assignee_id", nil},
			{"a missing ticket among real ones", []int64{f.t2, 99999}, f.ann.ID, "ticket_ids", store.ErrNotFound},
		} {
			if tc.name == "too many" {
				for i := range tc.tickets {
					tc.tickets[i] = int64(i + 1)
				}
			}
			_, err := f.desk.Assign(ctx, tc.tickets, tc.assignee, f.bob)
			var v *desk.ValidationError
			if !errors.As(err, &v) || !errors.Is(err, desk.ErrInvalid) || v.Field != tc.field || v.Message == "" {
				t.Errorf("%s: %v (%#v), want a validation error about %s", tc.name, err, v, tc.field)
				continue
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
			}
		}
		// Nothing was assigned: the refused batch rolled back whole.
		tk, err := db.Ticket(ctx, f.t2)
		if err != nil {
			t.Fatal(err)
		}
		if tk.AssigneeUserID != 0 {
			t.Errorf("ticket %d was assigned by a refused batch", f.t2)
		}
		if evs := f.events(t); len(evs) != 0 {
			t.Errorf("refusals recorded events %+v", evs)
		}
		if got := eventNotes(t, db, f.t2); len(got) != 0 {
			t.Errorf("refusals left notes %q", got)
		}
	})
}

func TestReplyAssignsUnassignedTicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		var other store.User
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			other, err = tx.CreateUser(ctx, store.User{Email: "other@example.com", Name: "Other", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		before, err := db.LastEventID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "On it."}); err != nil {
			t.Fatal(err)
		}
		tk, err := db.Ticket(ctx, f.ticketID)
		if err != nil {
			t.Fatal(err)
		}
		if tk.AssigneeUserID != f.agent.ID {
			t.Fatalf("after a reply the ticket's assignee = %d, want the replier %d", tk.AssigneeUserID, f.agent.ID)
		}
		evs, err := db.EventsSince(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Kind != store.EventTicketAssigned || evs[0].UserID != f.agent.ID || evs[0].ActorUserID != f.agent.ID {
			t.Errorf("events of the reply = %+v, want one ticket.assigned", evs)
		}
		if got := eventNotes(t, db, f.ticketID); len(got) != 1 || got[0] != "Taken by Agent with a reply" {
			t.Errorf("timeline = %q", got)
		}
		// A second agent's reply leaves the owner alone.
		if _, err := f.desk.Reply(ctx, f.ticketID, other, desk.ReplyInput{Text: "Me too."}); err != nil {
			t.Fatal(err)
		}
		if tk, _ := db.Ticket(ctx, f.ticketID); tk.AssigneeUserID != f.agent.ID {
			t.Errorf("a reply took an owned ticket: assignee %d", tk.AssigneeUserID)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM events WHERE kind = 'ticket.assigned'`); n != 1 {
			t.Errorf("%d ticket.assigned events, want 1", n)
		}

		// Switched off, a reply assigns nobody.
		if _, err := f.desk.Assign(ctx, []int64{f.ticketID}, 0, f.agent); err != nil {
			t.Fatal(err)
		}
		off := desk.New(db, desk.WithEnqueuer(f.enq), desk.WithAssignOnReply(false))
		if _, err := off.Reply(ctx, f.ticketID, other, desk.ReplyInput{Text: "Once more."}); err != nil {
			t.Fatal(err)
		}
		if tk, _ := db.Ticket(ctx, f.ticketID); tk.AssigneeUserID != 0 {
			t.Errorf("with assign-on-reply off, a reply assigned the ticket to %d", tk.AssigneeUserID)
		}
	})
}
