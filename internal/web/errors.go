package web

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/postdesk/postdesk/internal/store"
	"net/http"
	"strconv"
	"strings"
)

// errorPage is the data of the error view.
type errorPage struct {
	page
	Status   int
	Heading  string
	Message  string
	Incident string
	LinkURL  string
	LinkText string
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, e errorPage) {
	e.page = h.base(r, "")
	if e.LinkURL == "" {
		e.LinkURL, e.LinkText = "/tickets", "Back to tickets"
	}
	h.render(w, r, e.Status, "error", e)
}

// notFound shows a 404 with a sentence that names what is missing.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, message string) {
	h.errorPage(w, r, errorPage{Status: http.StatusNotFound, Heading: "Not found", Message: message})
}

func (h *Handler) notFoundPage(w http.ResponseWriter, r *http.Request) {
	h.notFound(w, r, "There is no page at this address.")
}

// badRequest shows a user-facing error (desk.ErrInvalid and the like).
func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, message string) {
	h.errorPage(w, r, errorPage{Status: http.StatusBadRequest, Heading: "That didn't work", Message: message})
}

// forbidden answers a signed-in agent who asked for an admin page.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	h.log.Warn("admin page refused", "user_id", current(r).user.ID, "method", r.Method, "path", r.URL.Path)
	h.errorPage(w, r, errorPage{Status: http.StatusForbidden, Heading: "Admins only",
		Message: "Only administrators can open this page. If you need a change to the support mailboxes, ask an administrator."})
}

// csrfFailed answers a form whose CSRF token is missing, stale or foreign.
func (h *Handler) csrfFailed(w http.ResponseWriter, r *http.Request) {
	h.log.Warn("form refused: csrf check failed", "method", r.Method, "path", r.URL.Path)
	e := errorPage{Status: http.StatusForbidden, Heading: "Form expired",
		Message: "This form expired; reload the page and try again."}
	e.LinkURL, e.LinkText = formBackLink(r)
	h.errorPage(w, r, e)
}

// formBackLink is where the error page of a refused form leads: back to
// the page the form was on ("" for the default, the tickets).
func formBackLink(r *http.Request) (href, text string) {
	switch {
	case r.URL.Path == "/login":
		return "/login", "Back to sign-in"
	case strings.HasPrefix(r.URL.Path, "/admin/users"):
		return "/admin/users", "Back to Users"
	case strings.HasPrefix(r.URL.Path, "/profile"):
		return "/profile", "Back to your profile"
	case strings.HasPrefix(r.URL.Path, "/invite/"):
		return r.URL.Path, "Reload the invitation"
	case strings.HasPrefix(r.URL.Path, "/admin/"):
		return "/admin/emails", "Back to Emails"
	case strings.HasPrefix(r.URL.Path, "/tickets/"):
		parts := strings.Split(r.URL.Path, "/")
		if id, err := strconv.ParseInt(parts[2], 10, 64); err == nil && id > 0 {
			return "/tickets/" + strconv.FormatInt(id, 10), "Back to the ticket"
		}
		return "/tickets", "Back to tickets" // /tickets/assign, from the list
	}
	return "", ""
}

// formTooLarge answers a form whose body passed its bound: what it carried
// is far beyond what any of its fields takes, and the page says so rather
// than calling the form expired. The browser's Back keeps the text.
func (h *Handler) formTooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	h.log.Warn("form refused: body too large", "method", r.Method, "path", r.URL.Path, "limit_bytes", limit)
	e := errorPage{Status: http.StatusRequestEntityTooLarge, Heading: "Too long to send",
		Message: fmt.Sprintf("What you sent is over %s, far longer than this form takes, and it was not saved. Use your browser's Back button to return to your text, shorten it and send it again.", sizeText(limit))}
	e.LinkURL, e.LinkText = formBackLink(r)
	h.errorPage(w, r, e)
}

// serverError logs err with a short incident id and shows only the id.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.incident(w, r, err, "Something went wrong",
		"Something went wrong on our side, and it has been logged. Try again in a moment; if it keeps happening, tell your administrator the incident id.")
}

// incident logs err with a short incident id and shows a 500 with heading
// and message, and the id.
// The database out of reach is a 503 that says so, not an incident: it is
// not a fault of the page, and Postdesk retries by itself.
func (h *Handler) incident(w http.ResponseWriter, r *http.Request, err error, heading, message string) {
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if store.Unavailable(err) {
		h.log.Warn("page failed: the database is out of reach", "incident_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "10")
		h.errorPage(w, r, errorPage{Status: http.StatusServiceUnavailable, Heading: "Postdesk cannot reach its database",
			Message:  "Nothing was lost: mail is fetched and sent again once it answers. Reload this page in a moment; if it lasts, tell your administrator.",
			Incident: id, LinkURL: r.URL.RequestURI(), LinkText: "Reload"})
		return
	}
	h.log.Error("page failed", "incident_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	h.errorPage(w, r, errorPage{Status: http.StatusInternalServerError, Heading: heading, Message: message, Incident: id})
}

func ticketMissing(id int64) string {
	return fmt.Sprintf("Ticket #%d doesn't exist. It may have been typed wrong.", id)
}
