package store

import (
	"context"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/search"
)

// Note kinds.
const (
	NoteInternal = "note"  // written by an agent, never sent to the customer
	NoteEvent    = "event" // recorded by the system (status change, auto-reply seen, ...)
)

// Note is an internal note or a system event on a ticket.
type Note struct {
	ID           int64
	TicketID     int64
	Kind         string
	AuthorUserID int64
	AuthorEmail  string // filled by reads
	Body         string
	CreatedAt    time.Time
}

// AddNote stores a note or event and moves the ticket's last activity.
func (tx *Tx) AddNote(ctx context.Context, n *Note) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now().UTC()
	}
	id, err := tx.insert(ctx, `INSERT INTO notes (ticket_id, kind, author_user_id, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		n.TicketID, n.Kind, nullID(n.AuthorUserID), n.Body, ms(n.CreatedAt))
	if err != nil {
		return fmt.Errorf("add note to ticket %d: %w", n.TicketID, err)
	}
	n.ID = id
	if n.Kind == NoteInternal {
		if err := tx.indexAdd(ctx, n.TicketID, func() searchAddition {
			return searchAddition{notes: search.IndexText(n.Body, searchPartBytes)}
		}); err != nil {
			return err
		}
	}
	return tx.TouchTicket(ctx, n.TicketID, n.CreatedAt)
}

// TicketNotes lists a ticket's notes and events, oldest first.
func (c conn) TicketNotes(ctx context.Context, ticketID int64) ([]Note, error) {
	rows, err := c.query(ctx, `SELECT n.id, n.ticket_id, n.kind, COALESCE(n.author_user_id, 0), COALESCE(u.email, ''), n.body, n.created_at
		FROM notes n LEFT JOIN users u ON u.id = n.author_user_id WHERE n.ticket_id = ? ORDER BY n.created_at, n.id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("list notes of ticket %d: %w", ticketID, err)
	}
	defer rows.Close()
	var out []Note
	for rows.Next() {
		var n Note
		var created int64
		if err := rows.Scan(&n.ID, &n.TicketID, &n.Kind, &n.AuthorUserID, &n.AuthorEmail, &n.Body, &created); err != nil {
			return nil, err
		}
		n.CreatedAt = fromMS(created)
		out = append(out, n)
	}
	return out, rows.Err()
}
