package store

import (
	"context"
	"fmt"
	"time"
)

// deliveryCols are a delivery's columns but its payload, null-safe for a
// LEFT JOIN (alias d).
const deliveryCols = `COALESCE(d.id, 0), COALESCE(d.webhook_id, 0), COALESCE(d.event_id, 0), COALESCE(d.kind, ''),
	COALESCE(d.state, ''), COALESCE(d.attempts, 0), COALESCE(d.last_status, 0), COALESCE(d.last_error, ''),
	COALESCE(d.next_attempt_at, 0), COALESCE(d.delivered_at, 0), COALESCE(d.created_at, 0), COALESCE(d.updated_at, 0)`

type deliveryScan struct {
	d                             WebhookDelivery
	next, delivered, created, upd int64
}

func (s *deliveryScan) dest() []any {
	return []any{&s.d.ID, &s.d.WebhookID, &s.d.EventID, &s.d.Kind, &s.d.State, &s.d.Attempts, &s.d.LastStatus,
		&s.d.LastError, &s.next, &s.delivered, &s.created, &s.upd}
}

func (s *deliveryScan) delivery() WebhookDelivery {
	d := s.d
	d.NextAttemptAt, d.DeliveredAt, d.CreatedAt, d.UpdatedAt = fromMS(s.next), fromMS(s.delivered), fromMS(s.created), fromMS(s.upd)
	return d
}

// AddWebhookDelivery records a delivery to be attempted (state pending)
// and sets d.ID. A second delivery of one event to one webhook is
// ErrConflict (wrapped).
func (tx *Tx) AddWebhookDelivery(ctx context.Context, d *WebhookDelivery) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	d.State, d.UpdatedAt = WebhookPending, d.CreatedAt
	id, err := tx.insert(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, kind, payload, state, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, d.WebhookID, d.EventID, d.Kind, d.Payload, d.State, ms(d.NextAttemptAt), ms(d.CreatedAt), ms(d.UpdatedAt))
	if err != nil {
		return fmt.Errorf("add delivery of %s to webhook %d: %w", d.Kind, d.WebhookID, err)
	}
	d.ID = id
	return nil
}

// WebhookDelivery returns one delivery, with its payload.
func (c conn) WebhookDelivery(ctx context.Context, id int64) (WebhookDelivery, error) {
	var s deliveryScan
	var payload string
	err := c.queryRow(ctx, `SELECT `+deliveryCols+`, d.payload FROM webhook_deliveries d WHERE d.id = ?`, id).
		Scan(append(s.dest(), &payload)...)
	if err != nil {
		return WebhookDelivery{}, one(err)
	}
	d := s.delivery()
	d.Payload = payload
	return d, nil
}

// WebhookDeliveries lists a webhook's newest deliveries first (without
// payloads), at most limit.
func (c conn) WebhookDeliveries(ctx context.Context, webhookID int64, limit int) ([]WebhookDelivery, error) {
	rows, err := c.query(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries d WHERE d.webhook_id = ? ORDER BY d.id DESC LIMIT ?`,
		webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %d: %w", webhookID, err)
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		var s deliveryScan
		if err := rows.Scan(s.dest()...); err != nil {
			return nil, err
		}
		out = append(out, s.delivery())
	}
	return out, rows.Err()
}

// WebhookAttempt is the outcome of one attempt to deliver.
type WebhookAttempt struct {
	State       string // WebhookPending (a retry follows at NextAttemptAt), WebhookDelivered or WebhookFailed
	Status      int    // HTTP status, 0 without an answer
	Error       string // plain words; "" when delivered
	NextAttempt time.Time
	At          time.Time
}

// RecordWebhookAttempt records an attempt of a delivery that is still
// pending; it reports false (and changes nothing) when the delivery is
// gone or already delivered or failed.
func (tx *Tx) RecordWebhookAttempt(ctx context.Context, id int64, a WebhookAttempt) (bool, error) {
	var delivered int64
	if a.State == WebhookDelivered {
		delivered = ms(a.At)
	}
	res, err := tx.exec(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
		next_attempt_at = ?, delivered_at = ?, updated_at = ? WHERE id = ? AND state = ?`,
		a.State, a.Status, CleanErrorText(a.Error), ms(a.NextAttempt), delivered, ms(a.At), id, WebhookPending)
	if err != nil {
		return false, fmt.Errorf("record attempt of webhook delivery %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
