package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/webhook"
)

// Webhooks.
//
// The webhook consumer hears every event from the dispatcher, in the
// dispatcher's transaction, and writes, for each enabled webhook subscribed
// to the event's kind, a webhook_deliveries row (state pending, with the
// JSON payload frozen: every retry sends the same bytes) and a River job
// DeliverWebhookArgs{DeliveryID}; both commit with the event's dispatch
// mark. The job POSTs the payload, signed (package webhook), and records
// the attempt on the row: delivered on a 2xx; failed for good on any other
// 4xx or 3xx, or a refused target; otherwise (network error, timeout, 408,
// 429, 5xx) pending again with the next attempt's time, and River retries
// the job after WebhookOptions.Backoff. After MaxAttempts the delivery is
// failed. Delivery is at least once (a process killed after the endpoint
// answered sends again): receivers drop repeats by Postdesk-Delivery.

// DeliverWebhookArgs delivers one webhook delivery.
type DeliverWebhookArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind names the job.
func (DeliverWebhookArgs) Kind() string { return "deliver_webhook" }

// DefaultWebhookBackoff is the wait before each retry: 8 attempts over
// about 22 hours.
var DefaultWebhookBackoff = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 4 * time.Hour, 16 * time.Hour}

// WebhookOptions configures Webhooks.
type WebhookOptions struct {
	DB    *store.DB
	Vault *store.Vault // opens the webhooks' secrets
	// BaseURL, when set, adds each ticket's page ("url") to payloads.
	BaseURL string
	// AllowPrivate lets deliveries reach private and loopback addresses.
	AllowPrivate bool
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Backoff is the wait before each retry; its length + 1 is the number
	// of attempts (default DefaultWebhookBackoff: 8 attempts).
	Backoff []time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Webhooks is the webhook consumer and the delivery job's worker. Give
// Register to jobs.New (through All), then SetRunner, then register it
// with the Dispatcher.
type Webhooks struct {
	opt    WebhookOptions
	db     *store.DB
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	runner *Runner
}

// NewWebhooks returns the webhook consumer and worker.
func NewWebhooks(opt WebhookOptions) (*Webhooks, error) {
	if opt.DB == nil || opt.Vault == nil {
		return nil, errors.New("webhooks: no database or vault")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opt.Backoff) == 0 {
		opt.Backoff = DefaultWebhookBackoff
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.BaseURL = strings.TrimRight(opt.BaseURL, "/")
	return &Webhooks{opt: opt, db: opt.DB, log: opt.Logger.With("component", "webhooks"),
		client: webhook.NewClient(webhook.ClientOptions{AllowPrivate: opt.AllowPrivate, Timeout: opt.Timeout})}, nil
}

// Register adds the delivery job's worker (for jobs.All).
func (w *Webhooks) Register(workers *river.Workers) []*river.PeriodicJob {
	river.AddWorker(workers, &deliverWebhookWorker{w: w})
	return nil
}

// SetRunner gives the Runner that inserts the delivery jobs.
func (w *Webhooks) SetRunner(r *Runner) {
	w.mu.Lock()
	w.runner = r
	w.mu.Unlock()
}

func (w *Webhooks) now() time.Time { return w.opt.Now().UTC().Truncate(time.Millisecond) }

// MaxAttempts is how many attempts a delivery gets.
func (w *Webhooks) MaxAttempts() int { return len(w.opt.Backoff) + 1 }

// Name names the consumer.
func (w *Webhooks) Name() string { return "webhooks" }

// Consume writes a delivery and its job for each enabled webhook
// subscribed to each event (EventConsumer).
func (w *Webhooks) Consume(ctx context.Context, tx *store.Tx, events []store.Event) error {
	hooks, err := tx.Webhooks(ctx)
	if err != nil {
		return err
	}
	for _, e := range events {
		for _, h := range hooks {
			if !h.Wants(e.Kind) {
				continue
			}
			body, err := w.payload(ctx, tx, e, h.IncludeBodies)
			if err != nil {
				return fmt.Errorf("payload of event %d: %w", e.ID, err)
			}
			if _, err := w.enqueue(ctx, tx, h.ID, e.ID, e.Kind, body); err != nil {
				return err
			}
		}
	}
	return nil
}

// EnqueueTest writes a test delivery (event id 0, kind webhook.test) to one
// webhook, enabled or not, in tx; the admin's "Send test event".
func (w *Webhooks) EnqueueTest(ctx context.Context, tx *store.Tx, webhookID int64, by store.User) (int64, error) {
	now := w.now()
	body, err := json.Marshal(Payload{ID: 0, Type: "webhook.test", CreatedAt: now,
		Data: map[string]any{"webhook_id": webhookID, "requested_by": map[string]any{"id": by.ID, "name": by.Name}}})
	if err != nil {
		return 0, err
	}
	return w.enqueue(ctx, tx, webhookID, 0, "webhook.test", body)
}

func (w *Webhooks) enqueue(ctx context.Context, tx *store.Tx, webhookID, eventID int64, kind string, body []byte) (int64, error) {
	w.mu.Lock()
	r := w.runner
	w.mu.Unlock()
	if r == nil {
		return 0, errors.New("webhooks: no job runner")
	}
	d := store.WebhookDelivery{WebhookID: webhookID, EventID: eventID, Kind: kind, Payload: string(body), CreatedAt: w.now()}
	d.NextAttemptAt = d.CreatedAt
	if err := tx.AddWebhookDelivery(ctx, &d); err != nil {
		return 0, err
	}
	// One attempt more than a delivery gets: if the process dies during
	// the last one, River's rescue runs it again and it is recorded (River
	// would otherwise discard the job and leave the delivery pending).
	err := r.InsertTxSoon(ctx, tx, DeliverWebhookArgs{DeliveryID: d.ID}, &river.InsertOpts{MaxAttempts: w.MaxAttempts() + 1})
	return d.ID, err
}
