package web

import "net/http"

// logout ends the session and returns to the sign-in page.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if err := h.auth.Logout(r.Context(), current(r).sess.ID); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// home sends the root to the ticket list.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/tickets", http.StatusSeeOther)
}
