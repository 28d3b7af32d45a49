package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
)

// The invitation page: a single-use link from an admin (a new user, or a
// password reset) where a user sets their password and is signed in. It
// needs no session; its form carries the sign-in form's double-submit
// token. The token in the path is a secret: the page is never cached, and
// it sends no Referer (Referrer-Policy: same-origin for every page).

type invitePage struct {
	page
	Email   string
	Name    string
	Expires time.Time
	Token   string // the form's CSRF token
	Error   string
}

// inviteForm shows the form that sets the password.
func (h *Handler) inviteForm(w http.ResponseWriter, r *http.Request) {
	u, inv, err := h.auth.Invitation(r.Context(), r.PathValue("token"))
	if errors.Is(err, auth.ErrInvitationInvalid) {
		h.inviteInvalid(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.renderInvite(w, r, http.StatusOK, invitePage{Email: u.Email, Name: u.Name, Expires: inv.ExpiresAt})
}

func (h *Handler) renderInvite(w http.ResponseWriter, r *http.Request, status int, p invitePage) {
	p.page = h.base(r, "")
	p.Token = h.standaloneToken(w, r)
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "invite", p)
}

// standaloneToken is the double-submit CSRF token of a form shown without
// a session (sign-in, invitation): the cookie's, or a new one.
func (h *Handler) standaloneToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	t := auth.RandomToken(32)
	h.setCookie(w, loginCSRFCookie, t, 0)
	return t
}

// inviteSubmit sets the password, signs the user in and opens the tickets.
func (h *Handler) inviteSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r, 64<<10) {
		return
	}
	c, err := r.Cookie(loginCSRFCookie)
	submitted := r.PostFormValue("csrf")
	if err != nil || submitted == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(submitted)) != 1 {
		h.csrfFailed(w, r)
		return
	}
	token := r.PathValue("token")
	u, inv, err := h.auth.Invitation(r.Context(), token)
	if errors.Is(err, auth.ErrInvitationInvalid) {
		h.inviteInvalid(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	again := invitePage{Email: u.Email, Name: u.Name, Expires: inv.ExpiresAt}
	password := r.PostFormValue("password")
	if password != r.PostFormValue("confirm") {
		again.Error = "The two passwords differ: type the same password twice."
		h.renderInvite(w, r, http.StatusUnprocessableEntity, again)
		return
	}
	sessToken, sess, user, err := h.auth.AcceptInvitation(r.Context(), token, password, r.UserAgent(), h.clientIP(r))
	var v *auth.ValidationError
	switch {
	case errors.As(err, &v):
		again.Error = v.Message
		h.renderInvite(w, r, http.StatusUnprocessableEntity, again)
		return
	case errors.Is(err, auth.ErrInvitationInvalid):
		h.inviteInvalid(w, r)
		return
	case errors.Is(err, auth.ErrBusy):
		wait := retryAfter(w, 5*time.Second)
		again.Error = "Postdesk is busy checking other sign-ins. Your password was not saved: try again in " + wait + "."
		h.renderInvite(w, r, http.StatusServiceUnavailable, again)
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.log.Info("signed in with an invitation", "user_id", user.ID, "session_id", sess.ID)
	h.setCookie(w, sessionCookie, sessToken, sessionCookieMaxAge)
	h.clearCookie(w, loginCSRFCookie)
	http.Redirect(w, r, "/tickets", http.StatusSeeOther)
}

// inviteInvalid answers a link that cannot be used (any more).
func (h *Handler) inviteInvalid(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.errorPage(w, r, errorPage{Status: http.StatusNotFound, Heading: "This invitation link does not work",
		Message: "It was already used, replaced by a newer link, or it expired (links last 7 days). Ask an administrator for a new one: they make it in Admin → Users.",
		LinkURL: "/login", LinkText: "Go to sign-in"})
}
