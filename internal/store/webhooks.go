package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Webhook is a URL an admin registered for some event kinds. Its secret
// is sealed (WebhookSecret); the store never sees it in the clear.
type Webhook struct {
	ID            int64
	URL           string
	Description   string
	SecretSealed  string
	Events        []string // event kinds (EventKinds)
	IncludeBodies bool     // payloads carry message bodies
	Enabled       bool
	CreatedBy     int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Last is the newest delivery (zero ID: none yet); read only.
	Last WebhookDelivery
}

// Wants reports whether the webhook is enabled and subscribed to kind.
func (w Webhook) Wants(kind string) bool {
	if !w.Enabled {
		return false
	}
	for _, k := range w.Events {
		if k == kind {
			return true
		}
	}
	return false
}

// WebhookSecret is the vault binding of a webhook's secret.
func WebhookSecret(webhookID int64) string { return SecretBinding("webhook", webhookID, "secret") }

// Webhook delivery states.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// WebhookDelivery is one event (or test event: EventID 0) for one webhook,
// with its payload frozen when it was written, and its attempts so far.
type WebhookDelivery struct {
	ID            int64
	WebhookID     int64
	EventID       int64
	Kind          string
	Payload       string // JSON, exactly the bytes POSTed
	State         string
	Attempts      int
	LastStatus    int // the last HTTP status (0: no answer)
	LastError     string
	NextAttemptAt time.Time
	DeliveredAt   time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

const webhookCols = `w.id, w.url, w.description, w.secret_sealed, w.events, w.include_bodies, w.enabled, w.created_by, w.created_at, w.updated_at`

func scanWebhook(s interface{ Scan(...any) error }, extra ...any) (Webhook, error) {
	var w Webhook
	var events string
	var created, updated int64
	dest := append([]any{&w.ID, &w.URL, &w.Description, &w.SecretSealed, &events, &w.IncludeBodies, &w.Enabled, &w.CreatedBy, &created, &updated}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Webhook{}, err
	}
	w.Events = strings.Fields(events)
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return w, nil
}

// CreateWebhook records w (without its secret: seal it with the new id's
// WebhookSecret binding, then SetWebhookSecret) and sets w.ID.
func (tx *Tx) CreateWebhook(ctx context.Context, w *Webhook) error {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	w.UpdatedAt = w.CreatedAt
	id, err := tx.insert(ctx, `INSERT INTO webhooks (url, description, secret_sealed, events, include_bodies, enabled, created_by, created_at, updated_at)
		VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)`, w.URL, w.Description, strings.Join(w.Events, " "), w.IncludeBodies, w.Enabled,
		w.CreatedBy, ms(w.CreatedAt), ms(w.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	w.ID = id
	return nil
}

// UpdateWebhook changes a webhook's URL, description, events, bodies and
// enabled flags (not its secret).
func (tx *Tx) UpdateWebhook(ctx context.Context, w Webhook) error {
	res, err := tx.exec(ctx, `UPDATE webhooks SET url = ?, description = ?, events = ?, include_bodies = ?, enabled = ?, updated_at = ?
		WHERE id = ?`, w.URL, w.Description, strings.Join(w.Events, " "), w.IncludeBodies, w.Enabled, ms(w.UpdatedAt), w.ID)
	if err != nil {
		return fmt.Errorf("update webhook %d: %w", w.ID, err)
	}
	return affectedOne(res)
}

// SetWebhookSecret stores a webhook's sealed secret.
func (tx *Tx) SetWebhookSecret(ctx context.Context, id int64, sealed string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE webhooks SET secret_sealed = ?, updated_at = ? WHERE id = ?`, sealed, ms(at), id)
	if err != nil {
		return fmt.Errorf("set secret of webhook %d: %w", id, err)
	}
	return affectedOne(res)
}

// DeleteWebhook removes a webhook and its delivery log.
func (tx *Tx) DeleteWebhook(ctx context.Context, id int64) error {
	if _, err := tx.exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
		return fmt.Errorf("delete deliveries of webhook %d: %w", id, err)
	}
	res, err := tx.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return affectedOne(res)
}

// Webhook returns one webhook.
func (c conn) Webhook(ctx context.Context, id int64) (Webhook, error) {
	w, err := scanWebhook(c.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks w WHERE w.id = ?`, id))
	if err != nil {
		return Webhook{}, one(err)
	}
	return w, nil
}

// Webhooks lists every webhook, oldest first, each with its newest delivery.
func (c conn) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := c.query(ctx, `SELECT `+webhookCols+`, `+deliveryCols+` FROM webhooks w
		LEFT JOIN webhook_deliveries d ON d.id = (SELECT MAX(id) FROM webhook_deliveries WHERE webhook_id = w.id)
		ORDER BY w.id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var d deliveryScan
		w, err := scanWebhook(rows, d.dest()...)
		if err != nil {
			return nil, err
		}
		w.Last = d.delivery()
		out = append(out, w)
	}
	return out, rows.Err()
}

func affectedOne(res interface{ RowsAffected() (int64, error) }) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
