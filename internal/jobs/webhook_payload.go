package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// Payload is the JSON body of a webhook delivery:
//
//	{"id": 42, "type": "ticket.customer_replied", "created_at": "2026-12-02T09:00:00Z",
//	 "data": {"ticket": {"id": 7, "subject": "…", "status": "open", "mailbox_id": 1, "url": "…"},
//	          "mailbox": {"id": 1, "address": "support@example.com"},
//	          "message": {"id": 19}, "bulk": false}}
//
// data holds the event's own fields (states: "state", "previous",
// "error_code", "bulk", "recovered", "quarantine_id", "origin") and the
// objects it concerns, by id and state. Never a token; a message's text
// only when the webhook includes bodies ("message": {"id", "text"}).
type Payload struct {
	ID        int64          `json:"id"` // the event's id (0 for a test event)
	Type      string         `json:"type"`
	CreatedAt time.Time      `json:"created_at"`
	Data      map[string]any `json:"data"`
}

// payload builds an event's body from what tx sees now.
func (w *Webhooks) payload(ctx context.Context, tx *store.Tx, e store.Event, bodies bool) ([]byte, error) {
	data := map[string]any{}
	maps.Copy(data, e.Data)
	if e.MailboxID != 0 {
		mb, err := tx.Mailbox(ctx, e.MailboxID)
		switch {
		case err == nil:
			data["mailbox"] = map[string]any{"id": mb.ID, "address": mb.Address, "name": mb.Name}
		case errors.Is(err, store.ErrNotFound):
			data["mailbox"] = map[string]any{"id": e.MailboxID}
		default:
			return nil, err
		}
	}
	if e.TicketID != 0 {
		t, err := tx.Ticket(ctx, e.TicketID)
		switch {
		case err == nil:
			ticket := map[string]any{"id": t.ID, "subject": t.Subject, "status": t.Status, "mailbox_id": t.MailboxID, "bulk": t.Bulk}
			if w.opt.BaseURL != "" {
				ticket["url"] = fmt.Sprintf("%s/tickets/%d", w.opt.BaseURL, t.ID)
			}
			data["ticket"] = ticket
		case errors.Is(err, store.ErrNotFound):
			data["ticket"] = map[string]any{"id": e.TicketID}
		default:
			return nil, err
		}
	}
	if e.MessageID != 0 {
		msg := map[string]any{"id": e.MessageID}
		if bodies {
			m, err := tx.Message(ctx, e.MessageID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if err == nil {
				msg["text"] = m.TextBody
			}
		}
		data["message"] = msg
	}
	if e.UserID != 0 {
		data["user"] = map[string]any{"id": e.UserID}
	}
	if e.ActorUserID != 0 {
		data["actor"] = map[string]any{"id": e.ActorUserID}
	}
	return json.Marshal(Payload{ID: e.ID, Type: e.Kind, CreatedAt: e.CreatedAt.UTC(), Data: data})
}
