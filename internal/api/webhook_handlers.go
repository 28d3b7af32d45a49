package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// Webhooks (/webhooks) are for admins only and go through
// desk.WebhookAdmin, like Admin → Webhooks. A webhook's secret is answered
// once, by the request that created or replaced it, never again.

type webhookResponse struct {
	ID            int64                    `json:"id"`
	URL           string                   `json:"url"`
	Description   string                   `json:"description"`
	Events        []string                 `json:"events"`
	IncludeBodies bool                     `json:"include_bodies"`
	Enabled       bool                     `json:"enabled"`
	CreatedBy     int64                    `json:"created_by"`
	CreatedAt     time.Time                `json:"created_at"`
	UpdatedAt     time.Time                `json:"updated_at"`
	LastDelivery  *webhookDeliveryResponse `json:"last_delivery"`
	Secret        string                   `json:"secret,omitempty"`
}

type webhookDeliveryResponse struct {
	ID            int64      `json:"id"`
	EventID       int64      `json:"event_id"` // 0: a test event
	Event         string     `json:"event"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func toWebhook(h store.Webhook) webhookResponse {
	out := webhookResponse{ID: h.ID, URL: h.URL, Description: h.Description, Events: h.Events, IncludeBodies: h.IncludeBodies,
		Enabled: h.Enabled, CreatedBy: h.CreatedBy, CreatedAt: utc(h.CreatedAt), UpdatedAt: utc(h.UpdatedAt)}
	if out.Events == nil {
		out.Events = []string{}
	}
	if h.Last.ID != 0 {
		d := toWebhookDelivery(h.Last)
		out.LastDelivery = &d
	}
	return out
}

func toWebhookDelivery(d store.WebhookDelivery) webhookDeliveryResponse {
	out := webhookDeliveryResponse{ID: d.ID, EventID: d.EventID, Event: d.Kind, State: d.State, Attempts: d.Attempts, LastStatus: d.LastStatus,
		LastError: d.LastError, DeliveredAt: timeOrNil(d.DeliveredAt), CreatedAt: utc(d.CreatedAt), UpdatedAt: utc(d.UpdatedAt)}
	if d.State == store.WebhookPending {
		out.NextAttemptAt = timeOrNil(d.NextAttemptAt)
	}
	return out
}

// webhooksOnly lets only admins through, and only when this server can
// manage webhooks.
func (h *handler) webhooksOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r).Role != store.RoleAdmin {
			writeError(w, r, http.StatusForbidden, "only admins can manage webhooks")
			return
		}
		if h.webhooks == nil {
			writeError(w, r, http.StatusServiceUnavailable, "webhooks are not available on this server")
			return
		}
		next(w, r)
	}
}

// writeWebhookError answers an error of a webhook operation.
func writeWebhookError(w http.ResponseWriter, r *http.Request, id int64, err error) {
	switch {
	case errors.Is(err, desk.ErrInvalid):
		writeInvalid(w, r, http.StatusUnprocessableEntity, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("webhook %d not found", id))
	case errors.Is(err, desk.ErrNoTestSender):
		writeError(w, r, http.StatusServiceUnavailable, "test events cannot be sent from this server")
	default:
		writeInternalError(w, r, err)
	}
}

// getWebhooks lists every webhook with its newest delivery.
func (h *handler) getWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := h.db.Webhooks(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := make([]webhookResponse, 0, len(list))
	for _, hk := range list {
		out = append(out, toWebhook(hk))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"webhooks": out, "events": store.EventKinds})
}

type webhookRequest struct {
	URL           *string   `json:"url"`
	Description   *string   `json:"description"`
	Events        *[]string `json:"events"`
	IncludeBodies *bool     `json:"include_bodies"`
	Enabled       *bool     `json:"enabled"`
	Secret        *string   `json:"secret"`
	NewSecret     bool      `json:"new_secret"`
}

// apply sets in from the request's fields that are present.
func (q webhookRequest) apply(in *desk.WebhookInput) {
	if q.URL != nil {
		in.URL = *q.URL
	}
	if q.Description != nil {
		in.Description = *q.Description
	}
	if q.Events != nil {
		in.Events = *q.Events
	}
	if q.IncludeBodies != nil {
		in.IncludeBodies = *q.IncludeBodies
	}
	if q.Enabled != nil {
		in.Enabled = *q.Enabled
	}
	if q.Secret != nil {
		in.Secret = *q.Secret
	}
	in.NewSecret = q.NewSecret
}

// createWebhook adds a webhook (enabled unless "enabled": false) and
// answers its secret, once.
func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req webhookRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	in := desk.WebhookInput{Enabled: true}
	req.apply(&in)
	hk, secret, err := h.webhooks.Create(r.Context(), in, currentUser(r))
	if err != nil {
		writeWebhookError(w, r, 0, err)
		return
	}
	h.log.Info("webhook created", "request_id", info(r).id, "webhook_id", hk.ID, "user_id", currentUser(r).ID)
	resp := toWebhook(hk)
	resp.Secret = secret
	w.Header().Set("Location", Prefix+"webhooks/"+strconv.FormatInt(hk.ID, 10))
	writeJSON(w, r, http.StatusCreated, resp)
}

func (h *handler) getWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhookID", "webhook")
	if !ok {
		return
	}
	hk, err := h.db.Webhook(r.Context(), id)
	if err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	if ds, err := h.db.WebhookDeliveries(r.Context(), id, 1); err == nil && len(ds) == 1 {
		hk.Last = ds[0]
	}
	writeJSON(w, r, http.StatusOK, toWebhook(hk))
}

// updateWebhook changes the fields given; "new_secret": true (or a
// "secret") replaces the secret, answered once.
func (h *handler) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhookID", "webhook")
	if !ok {
		return
	}
	var req webhookRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	cur, err := h.db.Webhook(r.Context(), id)
	if err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	in := desk.WebhookInput{URL: cur.URL, Description: cur.Description, Events: cur.Events, IncludeBodies: cur.IncludeBodies, Enabled: cur.Enabled}
	req.apply(&in)
	hk, secret, err := h.webhooks.Update(r.Context(), id, in, currentUser(r))
	if err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	h.log.Info("webhook changed", "request_id", info(r).id, "webhook_id", id, "user_id", currentUser(r).ID, "new_secret", secret != "")
	resp := toWebhook(hk)
	resp.Secret = secret
	writeJSON(w, r, http.StatusOK, resp)
}

func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhookID", "webhook")
	if !ok {
		return
	}
	if err := h.webhooks.Delete(r.Context(), id, currentUser(r)); err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	h.log.Info("webhook deleted", "request_id", info(r).id, "webhook_id", id, "user_id", currentUser(r).ID)
	w.WriteHeader(http.StatusNoContent)
}

// getWebhookDeliveries lists a webhook's newest deliveries first (?limit,
// default 50, at most 200).
func (h *handler) getWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhookID", "webhook")
	if !ok {
		return
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			writeError(w, r, http.StatusBadRequest, "limit must be a number from 1 to 200")
			return
		}
		limit = n
	}
	if _, err := h.db.Webhook(r.Context(), id); err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	ds, err := h.db.WebhookDeliveries(r.Context(), id, limit)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := make([]webhookDeliveryResponse, 0, len(ds))
	for _, d := range ds {
		out = append(out, toWebhookDelivery(d))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"deliveries": out})
}

// testWebhook queues a test event (webhook.test) and answers its delivery.
func (h *handler) testWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "webhookID", "webhook")
	if !ok {
		return
	}
	did, err := h.webhooks.SendTest(r.Context(), id, currentUser(r))
	if err != nil {
		writeWebhookError(w, r, id, err)
		return
	}
	d, err := h.db.WebhookDelivery(r.Context(), did)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusAccepted, toWebhookDelivery(d))
}
