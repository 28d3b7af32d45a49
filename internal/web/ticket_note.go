package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// ticketNote adds an internal note and returns to it on the ticket page;
// a refused note (empty, too long) is shown on the page with the text kept.
func (h *Handler) ticketNote(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, fmt.Sprintf("There is no ticket %q.", r.PathValue("id")))
		return
	}
	body := r.PostFormValue("body")
	n, err := h.desk.AddNote(r.Context(), id, current(r).user, body)
	switch {
	case errors.Is(err, desk.ErrInvalid):
		h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{NoteBody: body, NoteError: userMessage(err)})
		return
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, ticketMissing(id))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s#note-%d", ticketURL(id), n.ID), http.StatusSeeOther)
}
