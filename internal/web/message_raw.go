package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/store"
)

// mayRead reports whether u may read a message on ticket ticketID: one on
// no ticket (a notification to an agent or an admin, an ignored email) is
// for admins only, and looks missing to others.
func mayRead(u store.User, ticketID int64) bool {
	return ticketID != 0 || u.Role == store.RoleAdmin
}

// messageRaw shows a message's source as received, as plain text.
func (h *Handler) messageRaw(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such message.")
		return
	}
	m, err := h.db.Message(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, fmt.Sprintf("Message %d doesn't exist.", id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !mayRead(current(r).user, m.TicketID) {
		h.notFound(w, r, fmt.Sprintf("Message %d doesn't exist.", id))
		return
	}
	if m.RawSHA256 == "" {
		h.notFound(w, r, "This message's source was not kept.")
		return
	}
	// Mail is mostly ASCII or UTF-8; a browser shows other bytes as U+FFFD,
	// which is what a reader of the source expects.
	h.serveBlob(w, r, m.RawSHA256, "text/plain; charset=utf-8",
		contentDisposition("inline", "message-"+strconv.FormatInt(id, 10)+".eml"))
}
