package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// A webhook's page: its delivery log, Send test event, the edit form
// (enable, disable), a new secret and delete.

// deliveriesShown is how many of a webhook's deliveries its page lists.
const deliveriesShown = 25

type webhookPage struct {
	page
	Webhook    store.Webhook
	Deliveries []store.WebhookDelivery
	Form       webhookForm
	Flash      string
	Secret     string // a new secret, shown once
	Confirm    bool   // the delete confirmation
	Now        time.Time
}

func (h *Handler) renderWebhook(w http.ResponseWriter, r *http.Request, status int, p webhookPage) {
	var err error
	if p.Deliveries, err = h.db.WebhookDeliveries(r.Context(), p.Webhook.ID, deliveriesShown); err != nil {
		h.serverError(w, r, err)
		return
	}
	p.Now = h.now()
	p.Form.Action, p.Form.Submit, p.Form.CSRF = fmt.Sprintf("/admin/webhooks/%d", p.Webhook.ID), "Save changes", p.CSRF
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "admin_webhook", p)
}

var webhookFlashes = map[string]string{
	"saved":  "Changes saved.",
	"tested": "Test event queued: its delivery appears below within a few seconds (reload to see it).",
}

// webhook shows one webhook.
func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	h.renderWebhook(w, r, http.StatusOK, webhookPage{page: h.base(r, "webhooks"), Webhook: hook, Form: formOfWebhook(hook),
		Flash: webhookFlashes[r.URL.Query().Get("done")]})
}

// webhookSave changes a webhook.
func (h *Handler) webhookSave(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	f := readWebhookForm(r)
	if _, _, err := h.hooks.Update(r.Context(), hook.ID, f.input(), current(r).user); err != nil {
		if f.refused(err) {
			h.renderWebhook(w, r, http.StatusUnprocessableEntity, webhookPage{page: h.base(r, "webhooks"), Webhook: hook, Form: f})
			return
		}
		h.serverError(w, r, err)
		return
	}
	h.log.Info("webhook changed", "webhook_id", hook.ID, "user_id", current(r).user.ID)
	http.Redirect(w, r, fmt.Sprintf("/admin/webhooks/%d?done=saved", hook.ID), http.StatusSeeOther)
}

// webhookTest queues a test event.
func (h *Handler) webhookTest(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	if _, err := h.hooks.SendTest(r.Context(), hook.ID, current(r).user); err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/webhooks/%d?done=tested#deliveries", hook.ID), http.StatusSeeOther)
}

// webhookSecret replaces the secret and shows the new one once.
func (h *Handler) webhookSecret(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	in := formOfWebhook(hook).input()
	in.NewSecret = true
	hook, secret, err := h.hooks.Update(r.Context(), hook.ID, in, current(r).user)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("webhook secret replaced", "webhook_id", hook.ID, "user_id", current(r).user.ID)
	h.renderWebhook(w, r, http.StatusOK, webhookPage{page: h.base(r, "webhooks"), Webhook: hook, Form: formOfWebhook(hook), Secret: secret})
}

// webhookDeleteConfirm asks before deleting.
func (h *Handler) webhookDeleteConfirm(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	h.renderWebhook(w, r, http.StatusOK, webhookPage{page: h.base(r, "webhooks"), Webhook: hook, Form: formOfWebhook(hook), Confirm: true})
}

// webhookDelete deletes a webhook and its log.
func (h *Handler) webhookDelete(w http.ResponseWriter, r *http.Request) {
	hook, ok := h.webhookFromPath(w, r)
	if !ok {
		return
	}
	if err := h.hooks.Delete(r.Context(), hook.ID, current(r).user); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("webhook deleted", "webhook_id", hook.ID, "user_id", current(r).user.ID)
	http.Redirect(w, r, "/admin/webhooks?deleted=1", http.StatusSeeOther)
}

// deliveryState is a delivery's state in words, with its chip class.
func deliveryState(d store.WebhookDelivery) (label, class string) {
	switch d.State {
	case store.WebhookDelivered:
		return "Delivered", "chip-ok"
	case store.WebhookFailed:
		return "Failed", "chip-danger"
	}
	if d.Attempts == 0 {
		return "Queued", "chip-muted"
	}
	return "Retrying", "chip-warn"
}
