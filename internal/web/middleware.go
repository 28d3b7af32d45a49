package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// sessionCookie holds the session token from auth.Login.
const sessionCookie = "postdesk_session"

// sessionCookieMaxAge keeps the cookie across browser restarts; the server
// decides how long the session itself lives (auth.Service's TTL).
const sessionCookieMaxAge = 30 * 24 * 60 * 60

type ctxKey int

const sessionKey ctxKey = iota

// signedInAs is the session and user of a request.
type signedInAs struct {
	sess store.Session
	user store.User
	loc  *time.Location // the user's time zone (zoneOf)
}

func current(r *http.Request) signedInAs {
	s, _ := r.Context().Value(sessionKey).(signedInAs)
	return s
}

// signedIn runs next with the request's session, or sends the browser to
// the sign-in page and back.
func (h *Handler) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		token := ""
		if err == nil {
			token = c.Value
		}
		sess, user, err := h.auth.Session(r.Context(), token)
		if errors.Is(err, auth.ErrInvalidCredentials) {
			if token != "" {
				h.clearCookie(w, sessionCookie)
			}
			target := "/login"
			if next := r.URL.RequestURI(); r.Method == http.MethodGet && next != "/" {
				target += "?next=" + url.QueryEscape(next)
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		// Pages about one person's tickets are not for shared caches.
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet {
			h.setCookie(w, sessionCookie, token, sessionCookieMaxAge) // slide the cookie with the session
		}
		ctx := context.WithValue(r.Context(), sessionKey, signedInAs{sess: sess, user: user, loc: h.zones.get(user.TimeZone)})
		next(w, r.WithContext(ctx))
	}
}

// maxFormBytes bounds the body of a form without files (the longest
// field, a note, is desk.MaxNoteBytes).
const maxFormBytes = 1 << 20

// form is signedIn plus the CSRF check every form POST needs.
func (h *Handler) form(next http.HandlerFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if !h.readForm(w, r, maxFormBytes) {
			return
		}
		if !auth.CheckCSRF(current(r).sess, r.PostFormValue("csrf")) {
			h.csrfFailed(w, r)
			return
		}
		next(w, r)
	})
}

// readForm reads a form's body of at most limit bytes (before its CSRF
// field is checked: a body cut at the bound has lost that field too). A
// body past the bound or unreadable is answered, and readForm says false.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.formTooLarge(w, r, limit)
		return false
	}
	h.badRequest(w, r, "The form could not be read: reload the page and try again.")
	h.log.Warn("form refused: unreadable body", "method", r.Method, "path", r.URL.Path, "err", err)
	return false
}

// admin is signedIn for pages only admins may see: others get a 403 page.
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if current(r).user.Role != store.RoleAdmin {
			h.forbidden(w, r)
			return
		}
		next(w, r)
	})
}

// adminForm is admin plus the CSRF check every form POST needs.
func (h *Handler) adminForm(next http.HandlerFunc) http.HandlerFunc {
	return h.form(func(w http.ResponseWriter, r *http.Request) {
		if current(r).user.Role != store.RoleAdmin {
			h.forbidden(w, r)
			return
		}
		next(w, r)
	})
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) { h.setCookie(w, name, "", -1) }

// localPath returns next when it is a path on this site, else "/tickets".
// It refuses scheme-relative ("//evil"), backslash ("/\evil") and absolute
// URLs, so the sign-in page cannot be used as an open redirect.
func localPath(next string) string {
	const fallback = "/tickets"
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	return next
}

// cspOptions are the per-page relaxations of the Content-Security-Policy.
type cspOptions struct {
	// remoteImages lets images load over https (the agent asked for them).
	remoteImages bool
	// emailFrames allows inline styles: an email shown in a srcdoc frame
	// inherits this policy, and emails style themselves inline.
	emailFrames bool
	// formTargets are origins a form may lead to besides ours: a form that
	// starts a sign-in is answered with a redirect to the provider, and
	// browsers check form-action on redirects too.
	formTargets []string
}

// pageCSP is the Content-Security-Policy of a page.
func pageCSP(o cspOptions) string {
	img := "img-src 'self' data:"
	if o.remoteImages {
		img += " https:"
	}
	style := "style-src 'self'"
	if o.emailFrames {
		style += " 'unsafe-inline'"
	}
	form := "form-action 'self'"
	for _, o := range o.formTargets {
		form += " " + o
	}
	return "default-src 'self'; script-src 'self'; " + style + "; " + img +
		"; font-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; " + form + "; frame-ancestors 'none'"
}
