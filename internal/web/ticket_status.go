package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// ticketStatus sets a ticket's status and returns to the ticket.
func (h *Handler) ticketStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, fmt.Sprintf("There is no ticket %q.", r.PathValue("id")))
		return
	}
	status := r.PostFormValue("status")
	change := desk.TicketChange{Status: &status}
	if was := r.PostFormValue("was"); was != "" {
		change.StatusWas = &was // the status the page showed: a colleague's change since is not undone
	}
	_, err := h.desk.Update(r.Context(), id, current(r).user, change)
	switch {
	case errors.Is(err, desk.ErrInvalid):
		h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{StatusError: userMessage(err)})
		return
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, ticketMissing(id))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, ticketURL(id), http.StatusSeeOther)
}

// userMessage is the sentence of a desk.ErrInvalid error meant for people
// (its *desk.ValidationError's), capitalised and ending with a full stop.
func userMessage(err error) string {
	s, _ := desk.Message(err)
	if s == "" {
		return "That didn't work."
	}
	if first, _, _ := strings.Cut(s, " "); !strings.Contains(first, "@") { // never "Support@example.com"
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}
