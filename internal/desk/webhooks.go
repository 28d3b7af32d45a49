package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/webhook"
)

// WebhookAdmin is the one service that adds, changes, removes and tests
// webhooks, for the pages and the API alike. Only admins may call it (the
// surfaces check the role); refusals are *ValidationError values naming the
// field ("url", "events", "secret").
type WebhookAdmin struct {
	db           *store.DB
	vault        *store.Vault
	allowPrivate bool
	test         TestEnqueuer
	now          func() time.Time
}

// TestEnqueuer writes a test delivery to one webhook in tx and returns its
// id (jobs.Webhooks.EnqueueTest).
type TestEnqueuer func(ctx context.Context, tx *store.Tx, webhookID int64, by store.User) (int64, error)

// NewWebhookAdmin returns the webhook service. allowPrivate lets URLs name
// private and loopback hosts (POSTDESK_WEBHOOK_ALLOW_PRIVATE); test sends
// test events (nil: "Send test event" is refused).
func NewWebhookAdmin(db *store.DB, vault *store.Vault, allowPrivate bool, test TestEnqueuer) *WebhookAdmin {
	return &WebhookAdmin{db: db, vault: vault, allowPrivate: allowPrivate, test: test, now: time.Now}
}

// ErrNoTestSender: this process cannot send test events (no job runner).
var ErrNoTestSender = errors.New("test events cannot be sent from this process")

// WebhookInput is what an admin sets on a webhook.
type WebhookInput struct {
	URL           string
	Description   string
	Events        []string
	IncludeBodies bool
	Enabled       bool
	// Secret: "" generates one at creation and keeps the old one on a
	// change; otherwise at least 16 characters, taken as given.
	Secret string
	// NewSecret generates a new secret on a change.
	NewSecret bool
}

// MaxWebhookDescription bounds a webhook's description.
const MaxWebhookDescription = 200

func (s *WebhookAdmin) validate(in *WebhookInput) error {
	u, err := webhook.CheckURL(in.URL, s.allowPrivate)
	var bad *webhook.URLError
	var refused *webhook.TargetRefusedError
	switch {
	case errors.As(err, &bad):
		return &ValidationError{Field: "url", Message: bad.Reason, Err: err}
	case errors.As(err, &refused):
		return &ValidationError{Field: "url", Message: fmt.Sprintf("%s is a private or internal address: webhooks may not reach it unless the server allows it (POSTDESK_WEBHOOK_ALLOW_PRIVATE).", refused.Host), Err: err}
	case err != nil:
		return err
	}
	in.URL = u.String()
	in.Description = strings.TrimSpace(in.Description)
	if len(in.Description) > MaxWebhookDescription {
		return invalid("description", "The description is longer than %d characters.", MaxWebhookDescription)
	}
	var events []string
	for _, k := range store.EventKinds { // known kinds, in their order, once each
		if slices.Contains(in.Events, k) {
			events = append(events, k)
		}
	}
	for _, k := range in.Events {
		if !slices.Contains(store.EventKinds, k) {
			return invalid("events", "%q is not an event Postdesk sends; choose among %s.", k, strings.Join(store.EventKinds, ", "))
		}
	}
	if len(events) == 0 {
		return invalid("events", "Choose at least one event to send.")
	}
	in.Events = events
	if in.Secret != "" && (len(in.Secret) < 16 || len(in.Secret) > 200) {
		return invalid("secret", "A secret must have 16 to 200 characters (leave it empty to have one generated).")
	}
	return nil
}

// Create adds a webhook and returns it with its secret in the clear, to
// show once.
func (s *WebhookAdmin) Create(ctx context.Context, in WebhookInput, by store.User) (store.Webhook, string, error) {
	if err := s.validate(&in); err != nil {
		return store.Webhook{}, "", err
	}
	secret := in.Secret
	if secret == "" {
		secret = webhook.NewSecret()
	}
	h := store.Webhook{URL: in.URL, Description: in.Description, Events: in.Events, IncludeBodies: in.IncludeBodies,
		Enabled: in.Enabled, CreatedBy: by.ID, CreatedAt: s.now().UTC()}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.CreateWebhook(ctx, &h); err != nil {
			return err
		}
		return s.setSecret(ctx, tx, &h, secret)
	})
	if err != nil {
		return store.Webhook{}, "", fmt.Errorf("add webhook: %w", err)
	}
	return h, secret, nil
}

func (s *WebhookAdmin) setSecret(ctx context.Context, tx *store.Tx, h *store.Webhook, secret string) error {
	sealed, err := s.vault.Seal([]byte(secret), store.WebhookSecret(h.ID))
	if err != nil {
		return err
	}
	h.SecretSealed = sealed
	return tx.SetWebhookSecret(ctx, h.ID, sealed, s.now().UTC())
}

// Update changes a webhook; the returned secret is the new one when it was
// replaced (NewSecret or Secret), else "".
func (s *WebhookAdmin) Update(ctx context.Context, id int64, in WebhookInput, by store.User) (store.Webhook, string, error) {
	if err := s.validate(&in); err != nil {
		return store.Webhook{}, "", err
	}
	secret := in.Secret
	if secret == "" && in.NewSecret {
		secret = webhook.NewSecret()
	}
	var h store.Webhook
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if h, err = tx.Webhook(ctx, id); err != nil {
			return err
		}
		h.URL, h.Description, h.Events, h.IncludeBodies, h.Enabled = in.URL, in.Description, in.Events, in.IncludeBodies, in.Enabled
		h.UpdatedAt = s.now().UTC()
		if err := tx.UpdateWebhook(ctx, h); err != nil {
			return err
		}
		if secret != "" {
			return s.setSecret(ctx, tx, &h, secret)
		}
		return nil
	})
	if err != nil {
		return store.Webhook{}, "", fmt.Errorf("change webhook %d: %w", id, err)
	}
	return h, secret, nil
}

// Delete removes a webhook and its delivery log.
func (s *WebhookAdmin) Delete(ctx context.Context, id int64, by store.User) error {
	if err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(ctx, id) }); err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return nil
}

// SendTest queues a test event (webhook.test) to a webhook, enabled or
// not, and returns the delivery's id.
func (s *WebhookAdmin) SendTest(ctx context.Context, id int64, by store.User) (int64, error) {
	if s.test == nil {
		return 0, ErrNoTestSender
	}
	var delivery int64
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Webhook(ctx, id); err != nil {
			return err
		}
		var err error
		delivery, err = s.test(ctx, tx, id, by)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("send a test event to webhook %d: %w", id, err)
	}
	return delivery, nil
}
