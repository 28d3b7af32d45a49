// Package desk holds the operations agents perform on tickets, shared by the
// web pages and the JSON API: internal notes and status changes (and, with
// the outbound channel, replies). Each operation writes all of its rows in
// one transaction and records who did what on the ticket's timeline.
//
// Admin is the one mailbox service of every surface (pages, API, CLI,
// demo): add, change, connect kind, pause, resume, remove, password and
// signature, the connection test, and the decisions the surfaces show
// (HealthOf, ResolveNotice). No other package writes mailbox rows or
// server settings (architecture_test.go holds it); oauth writes only its
// tokens. Refusals are *ValidationError values naming the field.
package desk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// MaxNoteBytes bounds an internal note.
const MaxNoteBytes = 64 << 10

// Desk performs agents' operations.
type Desk struct {
	db      *store.DB
	now     func() time.Time
	enqueue Enqueuer // nil: queued replies wait for the sender's sweep
	// assignOnReply: a reply to a ticket nobody owns gives it to the replier.
	assignOnReply bool
}

// New returns a Desk on db.
func New(db *store.DB, opts ...Option) *Desk {
	d := &Desk{db: db, now: time.Now, assignOnReply: true}
	for _, o := range opts {
		o(d)
	}
	return d
}

// AddNote adds an internal note, never sent to the customer.
func (d *Desk) AddNote(ctx context.Context, ticketID int64, author store.User, body string) (store.Note, error) {
	// As stored (store.CleanText), so the note returned is the one kept.
	body = strings.TrimSpace(strings.ReplaceAll(store.CleanText(body), "\r\n", "\n"))
	if body == "" {
		return store.Note{}, invalid("body", "the note is empty")
	}
	if len(body) > MaxNoteBytes {
		return store.Note{}, invalid("body", "the note is longer than %d KB", MaxNoteBytes>>10)
	}
	n := store.Note{TicketID: ticketID, Kind: store.NoteInternal, AuthorUserID: author.ID, AuthorEmail: author.Email, Body: body, CreatedAt: d.now().UTC()}
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Ticket(ctx, ticketID); err != nil {
			return err
		}
		return tx.AddNote(ctx, &n)
	})
	if err != nil {
		return store.Note{}, fmt.Errorf("add note to ticket %d: %w", ticketID, err)
	}
	return n, nil
}

// SetStatus changes a ticket's status and records the change on its timeline.
// Setting the status it already has changes nothing.
func (d *Desk) SetStatus(ctx context.Context, ticketID int64, by store.User, status string) (store.Ticket, error) {
	return d.Update(ctx, ticketID, by, TicketChange{Status: &status})
}

// TicketChange is a change of a ticket's fields; nil fields stay as they are.
type TicketChange struct {
	Status   *string // open, pending or solved
	Assignee *int64  // a user's id, 0: nobody (as Assign)
	// StatusWas, if set, is the status the agent saw: when the ticket's
	// is another now (someone changed it since), nothing changes
	// (*ValidationError "status", ErrStatusChanged), so that a page left
	// open does not silently undo a colleague's change.
	StatusWas *string
	// AssigneeWas, likewise, is the assignee the agent saw (0: nobody):
	// a ticket a colleague took or was given since is not taken from them
	// (*ValidationError "assignee_id", ErrAssigneeChanged).
	AssigneeWas *int64
}

// ErrAssigneeChanged: the ticket's assignee is no longer the one the
// agent saw (TicketChange.AssigneeWas); nothing was changed.
var ErrAssigneeChanged = errors.New("the assignee changed since it was shown")

// ErrStatusChanged: the ticket's status is no longer the one the agent
// saw (TicketChange.StatusWas); nothing was changed.
var ErrStatusChanged = errors.New("the status changed since it was shown")

// Update changes a ticket's status and assignee in one transaction, each
// recorded as SetStatus and Assign record it (nothing for a field that
// already has its value). Refusals are *ValidationError values (Field
// "status", or Assign's "assignee_id"); an unknown ticket is
// store.ErrNotFound (wrapped).
func (d *Desk) Update(ctx context.Context, ticketID int64, by store.User, c TicketChange) (store.Ticket, error) {
	if c.Status != nil && !store.ValidStatus(*c.Status) {
		return store.Ticket{}, invalid("status", "status must be open, pending or solved, not %q", *c.Status)
	}
	if c.Assignee != nil && *c.Assignee < 0 {
		return store.Ticket{}, invalid("assignee_id", "The assignee must be a user's id, or none to unassign.")
	}
	var t store.Ticket
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		now := d.now().UTC()
		if err := tx.LockTicket(ctx, ticketID); err != nil {
			return err
		}
		var err error
		if t, err = tx.Ticket(ctx, ticketID); err != nil {
			return err
		}
		if c.StatusWas != nil && c.Status != nil && t.Status != *c.StatusWas && t.Status != *c.Status {
			return &ValidationError{Field: "status", Err: ErrStatusChanged, Message: fmt.Sprintf(
				"Someone set this ticket to %s after you opened it (you saw %s): nothing was changed. Choose again if it should still be %s.", t.Status, *c.StatusWas, *c.Status)}
		}
		if c.AssigneeWas != nil && c.Assignee != nil && t.AssigneeUserID != *c.AssigneeWas && t.AssigneeUserID != *c.Assignee {
			who := "nobody"
			if u, err := tx.User(ctx, t.AssigneeUserID); err == nil {
				who = displayName(u)
			}
			return &ValidationError{Field: "assignee_id", Err: ErrAssigneeChanged, Message: fmt.Sprintf(
				"This ticket was given to %s after you opened it: nothing was changed. Choose again if it should still change hands.", who)}
		}
		if c.Assignee != nil {
			if err := assignInTx(ctx, tx, t, *c.Assignee, by, now.Truncate(time.Millisecond)); err != nil {
				return err
			}
		}
		if c.Status != nil {
			prev, err := tx.SetTicketStatus(ctx, ticketID, *c.Status, now)
			if err != nil {
				return err
			}
			if prev != *c.Status {
				ev := store.Note{TicketID: ticketID, Kind: store.NoteEvent, AuthorUserID: by.ID,
					Body: fmt.Sprintf("Status changed from %s to %s by %s", prev, *c.Status, by.Email), CreatedAt: now}
				if err := tx.AddNote(ctx, &ev); err != nil {
					return err
				}
			}
		}
		t, err = tx.Ticket(ctx, ticketID)
		return err
	})
	if err != nil {
		return store.Ticket{}, fmt.Errorf("update ticket %d: %w", ticketID, err)
	}
	return t, nil
}
