package web

import (
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// removePage confirms removing a mailbox, saying what stays.
type removePage struct {
	page
	Mailbox store.Mailbox
	Tickets int
	// Waiting is how many of its emails are still to be sent (queued or
	// held for a sign-in): removing the mailbox fails them.
	Waiting int
}

// emailRemoveConfirm asks before removing a mailbox: its tickets stay.
func (h *Handler) emailRemoveConfirm(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	n, err := h.db.CountTickets(r.Context(), store.TicketFilter{MailboxID: mb.ID})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	sum, err := h.db.OutboxSummary(r.Context(), mb.ID, nil)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	waiting := sum.Counts[store.DeliveryQueued] + sum.Counts[store.DeliveryHeld]
	h.render(w, r, http.StatusOK, "admin_email_remove", removePage{page: h.base(r, "emails"), Mailbox: mb, Tickets: n, Waiting: waiting})
}

// emailRemove removes a mailbox through desk, as the API and the CLI do:
// no more mail is fetched and its sign-in is forgotten; its tickets stay.
func (h *Handler) emailRemove(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	deleted, err := h.mailboxes.RemoveMailboxID(r.Context(), mb.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox removed", "mailbox_id", mb.ID, "deleted", deleted, "user_id", current(r).user.ID)
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "removed." + strconv.FormatInt(mb.ID, 10),
		Path: "/admin/emails", MaxAge: 120, HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/admin/emails", http.StatusSeeOther)
}

// userSentence is the sentence of desk's refusal, for people.
func userSentence(err error) (string, bool) {
	msg, ok := desk.Message(err)
	return sentence(msg), ok
}
