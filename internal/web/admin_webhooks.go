package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// Admin → Webhooks: the list with each webhook's last delivery, and the
// form that adds one. Every change goes through desk.WebhookAdmin, as for
// the API. A new secret is shown once, in the answer to the POST that made
// it (rendered, not redirected: it is never stored where a later GET could
// show it again; the answer is not cached).

// webhookForm is the add or edit form, as typed, with desk's refusals.
type webhookForm struct {
	URL           string
	Description   string
	Events        []string
	IncludeBodies bool
	Enabled       bool
	Errors        map[string]string // by field ("url", "events", ...; "" for the form)
	// Set by the page: where the form posts, its button, the CSRF token.
	Action, Submit, CSRF string
}

// eventChoice is one checkbox of the events fieldset.
type eventChoice struct {
	Kind    string
	Label   string
	Hint    string
	Checked bool
}

// eventLabels are the events in people's words.
var eventLabels = map[string][2]string{
	store.EventTicketCreated:          {"New ticket", "a customer's email opened a ticket (list mail too, with \"bulk\": true)"},
	store.EventTicketCustomerReplied:  {"Customer replied", "a customer's email joined an existing ticket"},
	store.EventTicketAssigned:         {"Ticket assigned", "a ticket's assignee changed"},
	store.EventTicketReplyFailed:      {"Reply not delivered", "an agent's reply was refused for good, or Postdesk cannot tell whether it arrived"},
	store.EventMailboxAuthStateChange: {"Mailbox sign-in changed", "a mailbox's authorization changed state (expiring, needs reauthentication, restored)"},
	store.EventMailboxSyncFailed:      {"Mailbox sync failed", "a mailbox that was fetching mail started failing"},
	store.EventMessageQuarantined:     {"Email quarantined", "an email could not be stored and was quarantined"},
}

func (f webhookForm) Choices() []eventChoice {
	out := make([]eventChoice, 0, len(store.EventKinds))
	for _, k := range store.EventKinds {
		l := eventLabels[k]
		out = append(out, eventChoice{Kind: k, Label: l[0], Hint: l[1], Checked: slices.Contains(f.Events, k)})
	}
	return out
}

func formOfWebhook(h store.Webhook) webhookForm {
	return webhookForm{URL: h.URL, Description: h.Description, Events: h.Events, IncludeBodies: h.IncludeBodies, Enabled: h.Enabled}
}

func readWebhookForm(r *http.Request) webhookForm {
	return webhookForm{URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"),
		Events: r.PostForm["events"], IncludeBodies: r.PostFormValue("include_bodies") == "on", Enabled: r.PostFormValue("enabled") == "on"}
}

func (f webhookForm) input() desk.WebhookInput {
	return desk.WebhookInput{URL: f.URL, Description: f.Description, Events: f.Events, IncludeBodies: f.IncludeBodies, Enabled: f.Enabled}
}

// refused records desk's refusal on the form; false when err is not one.
func (f *webhookForm) refused(err error) bool {
	var v *desk.ValidationError
	if !errors.As(err, &v) {
		return false
	}
	f.Errors = map[string]string{v.Field: sentence(v.Message)}
	return true
}

type webhooksPage struct {
	page
	Webhooks  []store.Webhook
	Form      webhookForm
	Created   *store.Webhook // just added: its secret is shown once
	Secret    string
	Deleted   bool
	Available bool
}

// webhooks lists the webhooks and the add form.
func (h *Handler) webhooks(w http.ResponseWriter, r *http.Request) {
	p := webhooksPage{page: h.base(r, "webhooks"), Form: webhookForm{Enabled: true}, Deleted: r.URL.Query().Get("deleted") == "1"}
	h.renderWebhooks(w, r, http.StatusOK, p)
}

func (h *Handler) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, p webhooksPage) {
	p.Available = h.hooks != nil
	p.Form.Action, p.Form.Submit, p.Form.CSRF = "/admin/webhooks", "Add webhook", p.CSRF
	var err error
	if p.Webhooks, err = h.db.Webhooks(r.Context()); err != nil {
		h.serverError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "admin_webhooks", p)
}

// webhookAdd adds a webhook and shows its secret once.
func (h *Handler) webhookAdd(w http.ResponseWriter, r *http.Request) {
	if h.hooks == nil {
		h.notFound(w, r, "Webhooks are not available on this server.")
		return
	}
	p := webhooksPage{page: h.base(r, "webhooks"), Form: readWebhookForm(r)}
	hook, secret, err := h.hooks.Create(r.Context(), p.Form.input(), current(r).user)
	if err != nil {
		if p.Form.refused(err) {
			h.renderWebhooks(w, r, http.StatusUnprocessableEntity, p)
			return
		}
		h.serverError(w, r, err)
		return
	}
	h.log.Info("webhook created", "webhook_id", hook.ID, "user_id", current(r).user.ID)
	p.Created, p.Secret, p.Form = &hook, secret, webhookForm{Enabled: true}
	h.renderWebhooks(w, r, http.StatusOK, p)
}

// webhookFromPath reads {id}; it answers 404 itself when there is none.
func (h *Handler) webhookFromPath(w http.ResponseWriter, r *http.Request) (store.Webhook, bool) {
	if h.hooks == nil {
		h.notFound(w, r, "Webhooks are not available on this server.")
		return store.Webhook{}, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil && id > 0 {
		hook, err := h.db.Webhook(r.Context(), id)
		if err == nil {
			return hook, true
		}
		if !errors.Is(err, store.ErrNotFound) {
			h.serverError(w, r, err)
			return store.Webhook{}, false
		}
	}
	h.errorPage(w, r, errorPage{Status: http.StatusNotFound, Heading: "Not found", Message: "There is no such webhook; it may have been deleted.",
		LinkURL: "/admin/webhooks", LinkText: "Back to Webhooks"})
	return store.Webhook{}, false
}
