package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
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
	p.Token = h.standaloneToken(w, r)
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "login", p)
}

// loginSubmit checks the form's token and the credentials, opens a session
// and goes to the page first asked for.
func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.readForm(w, r, 64<<10) {
		return
	}
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
	token, sess, user, err := h.auth.Login(r.Context(), email, password, r.UserAgent(), h.clientIP(r))
	var throttled *auth.ThrottledError
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		h.log.Info("sign-in refused", "ip", h.clientIP(r))
		h.renderLogin(w, r, http.StatusUnauthorized, loginPage{Next: next, Email: email, Error: "Wrong email or password."})
		return
	case errors.As(err, &throttled):
		// auth has logged the refusal. RFC 6585 4: 429 with Retry-After.
		wait := retryAfter(w, throttled.RetryAfter)
		msg := "Too many failed sign-ins for this account. Try again in " + wait + "."
		if throttled.Kind == store.ThrottleIP {
			msg = "Too many failed sign-ins from your network. Try again in " + wait + "."
		}
		h.renderLogin(w, r, http.StatusTooManyRequests, loginPage{Next: next, Email: email, Error: msg})
		return
	case errors.Is(err, auth.ErrBusy):
		h.log.Warn("sign-in refused: too many password checks at once", "ip", h.clientIP(r))
		wait := retryAfter(w, 5*time.Second)
		h.renderLogin(w, r, http.StatusServiceUnavailable, loginPage{Next: next, Email: email,
			Error: "Postdesk is busy checking other sign-ins. Your password was not checked: try again in " + wait + "."})
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.log.Info("signed in", "user_id", user.ID, "session_id", sess.ID)
	h.setCookie(w, sessionCookie, token, sessionCookieMaxAge)
	h.clearCookie(w, loginCSRFCookie)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// retryAfter sets the Retry-After header (RFC 9110 10.2.3) to d, rounded
// up to whole seconds, and returns d in words ("32 seconds", "15 minutes").
func retryAfter(w http.ResponseWriter, d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	switch {
	case secs == 1:
		return "1 second"
	case secs < 120:
		return strconv.Itoa(secs) + " seconds"
	default:
		return strconv.Itoa((secs+59)/60) + " minutes"
	}
}

// clientIP is the address the request came from: the peer, or when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is not
// one (earlier entries are the client's to write, so never believed).
func (h *Handler) clientIP(r *http.Request) string {
	peer := remoteAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !h.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if a = a.Unmap(); !h.trusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr parses net/http's RemoteAddr ("ip:port").
func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}
