package web

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/postdesk/postdesk/internal/auth"
)

// loginCSRFCookie carries the double-submit token of the sign-in form:
// there is no session yet to hold one, so the form's hidden field must
// match this cookie, which another site can neither read nor set.
const loginCSRFCookie = "postdesk_login_csrf"

type loginPage struct {
	page
	Next  string
	Email string
	Error string
	Token string
}

// loginForm shows the sign-in form, or skips it for a signed-in browser.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, _, err := h.auth.Session(r.Context(), c.Value); err == nil {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	h.renderLogin(w, r, http.StatusOK, loginPage{Next: next})
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, p loginPage) {
	p.page = h.base(r, "")
	p.Token = ""
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) >= 32 {
		p.Token = c.Value
	} else {
		p.Token = auth.RandomToken(32)
		h.setCookie(w, loginCSRFCookie, p.Token, 0)
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "login", p)
}

// loginSubmit checks the form's token and the credentials, opens a session
// and goes to the page first asked for.
func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCSRFCookie)
	submitted := r.PostFormValue("csrf")
	if err != nil || submitted == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(submitted)) != 1 {
		h.csrfFailed(w, r)
		return
	}
	next := localPath(r.PostFormValue("next"))
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	if email == "" || password == "" {
		h.renderLogin(w, r, http.StatusUnprocessableEntity, loginPage{Next: next, Email: email, Error: "Enter your email and password."})
		return
	}
	token, sess, user, err := h.auth.Login(r.Context(), email, password, r.UserAgent(), clientIP(r))
	if errors.Is(err, auth.ErrInvalidCredentials) {
		h.log.Info("sign-in refused", "ip", clientIP(r))
		h.renderLogin(w, r, http.StatusUnauthorized, loginPage{Next: next, Email: email, Error: "Wrong email or password."})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("signed in", "user_id", user.ID, "session_id", sess.ID)
	h.setCookie(w, sessionCookie, token, sessionCookieMaxAge)
	h.clearCookie(w, loginCSRFCookie)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
