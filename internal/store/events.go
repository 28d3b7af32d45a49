package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event kinds: what the consumers (webhooks, email notifications, the
// ticket list's refresh) may hear of. The names are the webhooks' event
// names.
const (
	EventTicketCreated         = "ticket.created"
	EventTicketCustomerReplied = "ticket.customer_replied"
	EventTicketAssigned        = "ticket.assigned"
	// EventTicketReplyFailed: an agent's reply was refused for good, or
	// its outcome is unknown (Data "state": "failed" or "unknown",
	// "error_kind"); its author hears of it.
	EventTicketReplyFailed      = "ticket.reply_failed"
	EventMailboxAuthStateChange = "mailbox.auth_state_changed"
	EventMailboxSyncFailed      = "mailbox.sync_failed"
	EventMessageQuarantined     = "message.quarantined"
)

// EventKinds lists every event kind, in the order people read them.
var EventKinds = []string{EventTicketCreated, EventTicketCustomerReplied, EventTicketAssigned, EventTicketReplyFailed,
	EventMailboxAuthStateChange, EventMailboxSyncFailed, EventMessageQuarantined}

// Event is one thing that happened, recorded in the transaction of the
// change itself, so it is told exactly when the change committed.
type Event struct {
	ID          int64
	Kind        string
	TicketID    int64 // 0: none
	MailboxID   int64 // 0: none
	MessageID   int64 // 0: none (the stored message: a customer's email, a quarantined one)
	UserID      int64 // the user it is about (the assignee); 0: none
	ActorUserID int64 // who caused it; 0: the system or a customer
	// Data carries ids and states only ("state": "needs_reauth",
	// "previous": "connected"); never tokens or message bodies.
	Data         map[string]any
	CreatedAt    time.Time
	DispatchedAt time.Time
}

// AddEvent records an event in tx.
func (tx *Tx) AddEvent(ctx context.Context, e *Event) error {
	if e.Kind == "" {
		return fmt.Errorf("add event: no kind")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now()
	}
	data := []byte("{}")
	if len(e.Data) > 0 {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("add event %s: %w", e.Kind, err)
		}
	}
	id, err := tx.insert(ctx, `INSERT INTO events (kind, ticket_id, mailbox_id, message_id, user_id, actor_user_id, data, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.Kind, nullID(e.TicketID), nullID(e.MailboxID), nullID(e.MessageID),
		e.UserID, e.ActorUserID, string(data), ms(e.CreatedAt))
	if err != nil {
		return fmt.Errorf("add event %s: %w", e.Kind, err)
	}
	e.ID = id
	if !tx.eventsAdded {
		tx.eventsAdded = true
		tx.AfterCommit(func() {
			if f := tx.db.onEvents.Load(); f != nil {
				(*f)()
			}
		})
	}
	return nil
}

// OnEventsCommitted makes f run right after the commit of every transaction
// that added events (nil: nothing). The dispatcher wakes this way instead of
// waiting for its next poll; f must not block.
func (db *DB) OnEventsCommitted(f func()) {
	if f == nil {
		db.onEvents.Store(nil)
		return
	}
	db.onEvents.Store(&f)
}

const eventCols = `id, kind, COALESCE(ticket_id, 0), COALESCE(mailbox_id, 0), COALESCE(message_id, 0), user_id, actor_user_id, data, created_at, dispatched_at`

func scanEvent(s interface{ Scan(...any) error }) (Event, error) {
	var e Event
	var data string
	var created, dispatched int64
	if err := s.Scan(&e.ID, &e.Kind, &e.TicketID, &e.MailboxID, &e.MessageID, &e.UserID, &e.ActorUserID, &data, &created, &dispatched); err != nil {
		return Event{}, err
	}
	e.CreatedAt, e.DispatchedAt = fromMS(created), fromMS(dispatched)
	if data != "" && data != "{}" {
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			return Event{}, fmt.Errorf("event %d's data: %w", e.ID, err)
		}
	}
	return e, nil
}

// ClaimEvents returns up to limit events not yet dispatched, oldest first,
// for the dispatcher to hand to the consumers and MarkEventsDispatched in
// the same transaction. On PostgreSQL the rows stay locked until tx ends
// and a concurrent dispatcher skips them; SQLite has one writer anyway.
func (tx *Tx) ClaimEvents(ctx context.Context, limit int) ([]Event, error) {
	q := `SELECT ` + eventCols + ` FROM events WHERE dispatched_at = 0 ORDER BY id LIMIT ?`
	if tx.d.name() == "postgres" {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.query(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// MarkEventsDispatched records that events were handed to every consumer.
func (tx *Tx) MarkEventsDispatched(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, ms(at))
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := tx.exec(ctx, `UPDATE events SET dispatched_at = ? WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return fmt.Errorf("mark events dispatched: %w", err)
	}
	return nil
}

// EventsSince returns up to limit events with an id above after, oldest
// first, dispatched or not (the ticket list's refresh asks "anything new
// since the page was drawn?").
func (c conn) EventsSince(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := c.query(ctx, `SELECT `+eventCols+` FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventID is the newest event's id (0 when there is none).
func (c conn) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := c.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id)
	return id, err
}
