package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// MaxAssignTickets bounds the tickets of one assignment (a bulk
// selection is at most a few pages of the list).
const MaxAssignTickets = 500

// ErrAssigneeUnavailable is wrapped by the *ValidationError (Field
// "assignee_id") of an assignment to a user who does not exist or is
// disabled.
var ErrAssigneeUnavailable = errors.New("assignee is not an active user")

// WithAssignOnReply says whether a reply to a ticket nobody owns gives
// the ticket to the agent who replied (the default: on).
func WithAssignOnReply(on bool) Option { return func(d *Desk) { d.assignOnReply = on } }

// AssignOnReply reports whether a reply to a ticket nobody owns assigns it
// to the replier.
func (d *Desk) AssignOnReply() bool { return d.assignOnReply }

// Assign gives tickets to the user assignee (0: nobody) on behalf of by,
// in one transaction: each ticket whose assignee changes gets an event on
// its timeline ("Assigned to Ann by Bob", "Taken by Bob", "Unassigned by
// Bob") and a store.EventTicketAssigned event; a ticket that already has
// that assignee changes and records nothing. It returns the tickets as they
// are after, in the order asked (duplicates once).
//
// Refusals are *ValidationError values: Field "ticket_ids" (none, too
// many, or a ticket that does not exist, then also wrapping
// store.ErrNotFound) or "assignee_id" (wrapping ErrAssigneeUnavailable).
func (d *Desk) Assign(ctx context.Context, ticketIDs []int64, assignee int64, by store.User) ([]store.Ticket, error) {
	ids := uniqueIDs(ticketIDs)
	if len(ids) == 0 {
		return nil, invalid("ticket_ids", "Select at least one ticket to assign.")
	}
	if len(ids) > MaxAssignTickets {
		return nil, invalid("ticket_ids", "At most %d tickets can be assigned at once; %d were selected.", MaxAssignTickets, len(ids))
	}
	if assignee < 0 {
		return nil, invalid("assignee_id", "The assignee must be a user's id, or none to unassign.")
	}
	// Rows are locked in id order, so two overlapping batches cannot
	// deadlock; the answer keeps the order asked.
	byID := make(map[int64]store.Ticket, len(ids))
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		clear(byID)
		to, err := assigneeUser(ctx, tx, assignee)
		if err != nil {
			return err
		}
		now := d.now().UTC().Truncate(time.Millisecond)
		for _, id := range slices.Sorted(slices.Values(ids)) {
			t, err := tx.Ticket(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return &ValidationError{Field: "ticket_ids", Message: fmt.Sprintf("There is no ticket %d.", id), Err: store.ErrNotFound}
			}
			if err != nil {
				return err
			}
			if err := setAssignee(ctx, tx, t, to, by, now); err != nil {
				return err
			}
			if byID[id], err = tx.Ticket(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("assign tickets: %w", err)
	}
	out := make([]store.Ticket, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

// Take assigns a ticket to the agent taking it (by itself).
func (d *Desk) Take(ctx context.Context, ticketID int64, by store.User) (store.Ticket, error) {
	list, err := d.Assign(ctx, []int64{ticketID}, by.ID, by)
	if err != nil {
		return store.Ticket{}, err
	}
	return list[0], nil
}

// AssignableUsers lists the users tickets can be given to (not disabled).
func (d *Desk) AssignableUsers(ctx context.Context) ([]store.User, error) {
	return d.db.AssignableUsers(ctx)
}

// assignInTx gives ticket t to the user assignee (0: nobody) in tx,
// checking the user first.
func assignInTx(ctx context.Context, tx *store.Tx, t store.Ticket, assignee int64, by store.User, now time.Time) error {
	to, err := assigneeUser(ctx, tx, assignee)
	if err != nil {
		return err
	}
	return setAssignee(ctx, tx, t, to, by, now)
}

// setAssignee gives ticket t to the user to (zero User: nobody) and
// records the change, if it is one.
func setAssignee(ctx context.Context, tx *store.Tx, t store.Ticket, to, by store.User, now time.Time) error {
	prev, err := tx.SetTicketAssignee(ctx, t.ID, to.ID, now)
	if err != nil || prev == to.ID {
		return err
	}
	return recordAssignment(ctx, tx, t, prev, to, by, assignmentNote(to, by, ""), now)
}

// assigneeUser reads the user id (zero User for 0) and refuses one who
// does not exist or is disabled.
func assigneeUser(ctx context.Context, tx *store.Tx, id int64) (store.User, error) {
	if id == 0 {
		return store.User{}, nil
	}
	u, err := tx.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, &ValidationError{Field: "assignee_id", Message: fmt.Sprintf("There is no user %d to assign tickets to.", id), Err: ErrAssigneeUnavailable}
	}
	if err != nil {
		return store.User{}, err
	}
	if !u.DisabledAt.IsZero() {
		return store.User{}, &ValidationError{Field: "assignee_id", Message: fmt.Sprintf("%s is disabled: tickets cannot be assigned to them.", displayName(u)), Err: ErrAssigneeUnavailable}
	}
	return u, nil
}

// claimOnReply gives ticket t, if nobody owns it, to by who replied on it,
// in the reply's transaction (when the desk is configured to).
func (d *Desk) claimOnReply(ctx context.Context, tx *store.Tx, t store.Ticket, by store.User, now time.Time) error {
	if !d.assignOnReply || t.AssigneeUserID != 0 || by.ID == 0 {
		return nil
	}
	claimed, err := tx.ClaimTicket(ctx, t.ID, by.ID)
	if err != nil || !claimed {
		return err
	}
	return recordAssignment(ctx, tx, t, 0, by, by, assignmentNote(by, by, " with a reply"), now)
}

// recordAssignment writes the timeline note and the event of ticket t's
// assignment from prev to the user to (zero User: nobody) by by.
func recordAssignment(ctx context.Context, tx *store.Tx, t store.Ticket, prev int64, to, by store.User, note string, now time.Time) error {
	n := store.Note{TicketID: t.ID, Kind: store.NoteEvent, AuthorUserID: by.ID, Body: note, CreatedAt: now}
	if err := tx.AddNote(ctx, &n); err != nil {
		return err
	}
	return tx.AddEvent(ctx, &store.Event{Kind: store.EventTicketAssigned, TicketID: t.ID, MailboxID: t.MailboxID,
		UserID: to.ID, ActorUserID: by.ID, Data: map[string]any{"previous_assignee_id": prev}, CreatedAt: now})
}

// assignmentNote is the timeline's sentence of an assignment to to (zero
// User: nobody) by by; how says how it happened (" with a reply").
func assignmentNote(to, by store.User, how string) string {
	switch {
	case to.ID == 0:
		return "Unassigned by " + displayName(by) + how
	case to.ID == by.ID:
		return "Taken by " + displayName(by) + how
	default:
		return "Assigned to " + displayName(to) + " by " + displayName(by) + how
	}
}

// displayName is how the timeline names a user: the name, else the email.
func displayName(u store.User) string {
	if u.Name != "" {
		return u.Name
	}
	if u.Email != "" {
		return u.Email
	}
	return "the system"
}

// uniqueIDs returns ids without duplicates, in their first order.
func uniqueIDs(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
