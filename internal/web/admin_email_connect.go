package web

import (
	"errors"
	"net/http"

	"github.com/postdesk/postdesk/internal/store"
)

// emailConnect starts Connect / Reauthenticate of a mailbox: it records the
// sign-in for this session and sends the browser to the provider's sign-in
// page, which comes back to /oauth/callback.
func (h *Handler) emailConnect(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	h.beginSignIn(w, r, mb, r.PostFormValue("allow_change") == "1")
}

// beginSignIn redirects to the provider's sign-in page for mb.
func (h *Handler) beginSignIn(w http.ResponseWriter, r *http.Request, mb store.Mailbox, allowChange bool) {
	if h.oauth == nil {
		h.errorPage(w, r, errorPage{Status: http.StatusConflict, Heading: "No sign-in provider",
			Message: "No sign-in provider is configured: set " + clientIDEnv("microsoft") + " and " + secretEnv("microsoft") + ", restart Postdesk, then connect the mailbox.",
			LinkURL: "/admin/emails", LinkText: "Back to Emails"})
		return
	}
	target, err := h.oauth.Begin(r.Context(), mb.ID, current(r).sess.ID, allowChange)
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "Mailbox "+mb.Address+" doesn't exist any more.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox sign-in started", "mailbox_id", mb.ID, "user_id", current(r).user.ID, "allow_change", allowChange)
	http.Redirect(w, r, target, http.StatusSeeOther)
}
