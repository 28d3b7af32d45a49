package web

import "net/http"

// routes is the one route table of the pages. Handlers wrapped in
// h.signedIn need a session; h.form also checks the session's CSRF token.
func (h *Handler) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /static/{name}", h.static)

	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.loginSubmit)
	mux.HandleFunc("POST /logout", h.form(h.logout))

	mux.HandleFunc("GET /{$}", h.signedIn(h.home))
	mux.HandleFunc("GET /tickets", h.signedIn(h.ticketList))
	mux.HandleFunc("GET /tickets/{id}", h.signedIn(h.ticketShow))
	mux.HandleFunc("POST /tickets/{id}/notes", h.form(h.ticketNote))
	mux.HandleFunc("POST /tickets/{id}/status", h.form(h.ticketStatus))

	mux.HandleFunc("GET /attachments/{id}", h.signedIn(h.attachment))
	mux.HandleFunc("GET /messages/{id}/raw", h.signedIn(h.messageRaw))
	mux.HandleFunc("GET /messages/{id}/cid/{cid}", h.messageCID) // signed link or session: see cid.go

	mux.HandleFunc("/", h.signedIn(h.notFoundPage))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(h.csrfFailed))
	return cop.Handler(mux)
}
