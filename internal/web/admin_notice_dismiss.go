package web

import (
	"errors"
	"net/http"

	"github.com/postdesk/postdesk/internal/store"
)

// noticeDismiss marks an admins' notice read and returns to Admin -> Emails.
func (h *Handler) noticeDismiss(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFoundEmails(w, r, "There is no such notice.")
		return
	}
	ctx := r.Context()
	err := h.db.Write(ctx, func(tx *store.Tx) error { return tx.MarkNoticeRead(ctx, id, h.now().UTC()) })
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "That notice doesn't exist any more.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/emails#notices", http.StatusSeeOther)
}
