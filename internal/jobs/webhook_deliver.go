package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/riverqueue/river"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/webhook"
)

// deliverWebhookWorker works DeliverWebhookArgs.
type deliverWebhookWorker struct {
	river.WorkerDefaults[DeliverWebhookArgs]
	w *Webhooks
}

// NextRetry waits the webhook back-off before the next attempt.
func (wk *deliverWebhookWorker) NextRetry(job *river.Job[DeliverWebhookArgs]) time.Time {
	return time.Now().Add(wk.w.backoff(job.Attempt))
}

// Timeout: an attempt is bounded by the HTTP client's own timeout.
func (wk *deliverWebhookWorker) Timeout(*river.Job[DeliverWebhookArgs]) time.Duration {
	return time.Minute
}

// backoff is the wait after the attempt-th attempt (1-based).
func (w *Webhooks) backoff(attempt int) time.Duration {
	i := min(max(attempt-1, 0), len(w.opt.Backoff)-1)
	return w.opt.Backoff[i]
}

func (wk *deliverWebhookWorker) Work(ctx context.Context, job *river.Job[DeliverWebhookArgs]) error {
	// The delivery's own limit, not the job's (which has a spare attempt
	// for a rescue after a crash), nor more than the job was given.
	return wk.w.deliver(ctx, job.Args.DeliveryID, job.Attempt, min(wk.w.MaxAttempts(), job.MaxAttempts))
}

// deliver makes one attempt of a delivery and records it. It returns an
// error for River to retry, river.JobCancel when the delivery failed for
// good, and nil when it is done (delivered, or nothing left to do).
func (w *Webhooks) deliver(ctx context.Context, id int64, attempt, maxAttempts int) error {
	d, err := w.db.WebhookDelivery(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // its webhook was deleted
	}
	if err != nil {
		return err
	}
	if d.State != store.WebhookPending {
		return nil
	}
	h, err := w.db.Webhook(ctx, d.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	log := w.log.With("delivery_id", d.ID, "webhook_id", h.ID, "event_id", d.EventID, "kind", d.Kind, "attempt", attempt)
	if !h.Enabled && d.EventID != 0 {
		return w.record(ctx, d.ID, store.WebhookAttempt{State: store.WebhookFailed, Error: "the webhook was disabled before it could be delivered"}, nil)
	}
	secret, err := w.opt.Vault.Open(h.SecretSealed, store.WebhookSecret(h.ID))
	if err != nil {
		msg := "the webhook's secret cannot be opened with this server's secret key: set a new secret"
		log.Error("webhook secret cannot be opened", "err", err)
		return w.record(ctx, d.ID, store.WebhookAttempt{State: store.WebhookFailed, Error: msg}, river.JobCancel(errors.New(msg)))
	}
	status, snippet, err := w.post(ctx, h.URL, d, secret)
	a := store.WebhookAttempt{Status: status}
	switch webhook.Classify(status, err) {
	case webhook.Delivered:
		a.State = store.WebhookDelivered
		log.Info("webhook delivered", "status", status)
		return w.record(ctx, d.ID, a, nil)
	case webhook.Refused:
		a.State, a.Error = store.WebhookFailed, attemptError(status, snippet, err)
		log.Warn("webhook refused: not retried", "status", status, "err", a.Error)
		return w.record(ctx, d.ID, a, river.JobCancel(errors.New(a.Error)))
	}
	a.Error = attemptError(status, snippet, err)
	if attempt >= maxAttempts {
		a.State, a.Error = store.WebhookFailed, fmt.Sprintf("gave up after %d attempts; the last: %s", attempt, a.Error)
		log.Warn("webhook failed: out of attempts", "status", status, "err", a.Error)
		return w.record(ctx, d.ID, a, river.JobCancel(errors.New(a.Error)))
	}
	a.State, a.NextAttempt = store.WebhookPending, w.now().Add(w.backoff(attempt))
	log.Info("webhook attempt failed: retried later", "status", status, "err", a.Error, "next_attempt_at", a.NextAttempt)
	return w.record(ctx, d.ID, a, errors.New(a.Error))
}

// record writes an attempt's outcome (even while shutting down) and
// returns ret.
func (w *Webhooks) record(ctx context.Context, id int64, a store.WebhookAttempt, ret error) error {
	a.At = w.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.RecordWebhookAttempt(ctx, id, a)
		return err
	})
	if err != nil {
		return err
	}
	return ret
}

// post sends the payload, signed now, and returns the status and the
// start of the answer's body.
func (w *Webhooks) post(ctx context.Context, target string, d store.WebhookDelivery, secret []byte) (int, string, error) {
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Postdesk-Webhooks/1")
	req.Header.Set(webhook.HeaderEvent, d.Kind)
	req.Header.Set(webhook.HeaderDelivery, strconv.FormatInt(d.ID, 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, w.opt.Now(), body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return resp.StatusCode, snippet(b), nil
}

// attemptError says in plain words why an attempt failed; never the URL
// (it may carry a token of the receiver's).
func attemptError(status int, body string, err error) string {
	if err == nil {
		return webhook.StatusError(status, body)
	}
	var refused *webhook.TargetRefusedError
	if errors.As(err, &refused) {
		return refused.Error()
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if uerr.Timeout() {
			return "the endpoint did not answer in time"
		}
		err = uerr.Err
	}
	return "could not reach the endpoint: " + err.Error()
}

// snippet is the start of an answer's body, on one line, printable only.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
