package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// maxAgeLimit bounds the maximum authorization age an admin can type.
const maxAgeLimit = 3650

// emailMaxAge sets a mailbox's maximum authorization age in days (empty:
// the provider's default; 0: until revoked).
func (h *Handler) emailMaxAge(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	raw := strings.TrimSpace(r.PostFormValue("days"))
	refuse := func(msg string) {
		h.renderEmails(w, r, http.StatusUnprocessableEntity, emailsForm{maxAgeFor: mb.ID, maxAgeVal: raw, maxAgeErr: msg})
	}
	if h.oauth == nil {
		refuse("No sign-in provider is configured.")
		return
	}
	var age *time.Duration
	if raw != "" {
		days, err := strconv.Atoi(raw)
		if err != nil || days < 0 || days > maxAgeLimit {
			refuse("Enter a whole number of days from 0 to 3650, or leave it empty for the provider's default.")
			return
		}
		d := time.Duration(days) * oauth.Day
		age = &d
	}
	_, err := h.oauth.SetMaxAge(r.Context(), mb.ID, age)
	if errors.Is(err, store.ErrNotFound) {
		refuse("This mailbox does not sign in with OAuth, so it has no maximum authorization age.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox maximum authorization age set", "mailbox_id", mb.ID, "days", raw, "user_id", current(r).user.ID)
	h.setFlash(w, "maxage", mb.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(mb.ID, 10), http.StatusSeeOther)
}
