package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = 1 << 20

// requestInfo is what the middleware learns about a request, for its log line.
type requestInfo struct {
	id      string // request id, also the incident id of a 500
	keyID   int64
	key     store.APIKey // the key that authenticated the request
	user    store.User
	problem error // the internal error behind a 500, logged once
}

type ctxKey struct{}

func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(ctxKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// currentUser is the user whose API key authenticated the request.
func currentUser(r *http.Request) store.User { return info(r).user }

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an id and logs one line when it ends, with
// the API key's id (never the key) and, for a 500, the error behind it. The
// query string is left out: a search can hold a customer's name or address.
func (h *handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: newRequestID()}
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("X-Request-Id", ri.id)
		defer func() { h.logLine(r, ri, sw, start) }() // also when the response is aborted
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri)))
	})
}

// logLine logs the line of a finished (or aborted) request.
func (h *handler) logLine(r *http.Request, ri *requestInfo, sw *statusWriter, start time.Time) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	attrs := []any{
		"request_id", ri.id, "method", r.Method, "path", r.URL.Path, "status", status,
		"bytes", sw.bytes, "duration_ms", time.Since(start).Milliseconds(),
	}
	if ri.keyID != 0 {
		attrs = append(attrs, "api_key_id", ri.keyID, "user_id", ri.user.ID)
	}
	if status >= 500 {
		if ri.problem != nil {
			attrs = append(attrs, "err", ri.problem)
		}
		h.log.Error("api request failed", attrs...)
		return
	}
	h.log.Info("api request", attrs...)
}

// recoverPanics turns a panic in a handler into a 500 with an incident id.
// The panic value and stack are logged; the client sees neither.
func (h *handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // net/http's way to abort a response silently
			}
			h.log.Error("api handler panicked", "request_id", info(r).id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				// The response has begun: abort the connection so that the
				// client sees a failure, not a short answer.
				sw.status = http.StatusInternalServerError
				info(r).problem = fmt.Errorf("panic after the response began: %v", p)
				panic(http.ErrAbortHandler)
			}
			writeInternalError(w, r, fmt.Errorf("panic: %v", p))
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires "Authorization: Bearer <key>" (RFC 6750 2.1) on
// every request and records the key's user for the handlers.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if header == "" {
			unauthorized(w, r, "", "missing API key: send Authorization: Bearer <key>")
			return
		}
		// RFC 7235 2.1: the scheme is case-insensitive; one space, then the token.
		scheme, key, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			unauthorized(w, r, "invalid_request", "malformed Authorization header: use the Bearer scheme, Authorization: Bearer <key>")
			return
		}
		key = strings.TrimSpace(key)
		if key == "" {
			unauthorized(w, r, "invalid_request", "malformed Authorization header: no API key after Bearer")
			return
		}
		if strings.ContainsAny(key, " \t") {
			unauthorized(w, r, "invalid_request", "malformed Authorization header: the API key must be one word after Bearer")
			return
		}
		k, u, err := h.auth.APIKey(r.Context(), key)
		if errors.Is(err, auth.ErrAPIKeyExpired) {
			unauthorized(w, r, "invalid_token", "API key expired: create a new one (postdesk apikey create)")
			return
		}
		if errors.Is(err, auth.ErrInvalidCredentials) {
			unauthorized(w, r, "invalid_token", "invalid API key")
			return
		}
		if err != nil {
			writeInternalError(w, r, err)
			return
		}
		ri := info(r)
		ri.keyID, ri.key, ri.user = k.ID, k, u
		next.ServeHTTP(w, r)
	})
}

// unauthorized answers 401 with the challenge of RFC 6750 3.
func unauthorized(w http.ResponseWriter, r *http.Request, code, message string) {
	challenge := `Bearer realm="postdesk"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, r, http.StatusUnauthorized, message)
}

// limitBody caps every request body at maxBodyBytes.
func (h *handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// noRoute answers requests no route matched: 405 with Allow when the path
// has routes for other methods, 404 otherwise.
func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := h.routes.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	writeError(w, r, http.StatusNotFound, fmt.Sprintf("no API endpoint at %s %s; see docs/api.md", r.Method, r.URL.Path))
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
