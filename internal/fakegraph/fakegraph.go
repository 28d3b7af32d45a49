// Package fakegraph is a stand-in for the mail part of Microsoft Graph
// (graph.microsoft.com/v1.0), beside the stand-in identity platform
// (internal/fakeidp), for tests and the demo. Postdesk's Graph client runs
// unchanged against it: only the base URL differs.
//
// What it models, at least as strictly as Graph:
//   - bearer tokens checked through Options.Tokens (fakeidp's knowledge of
//     its opaque tokens, see FromIdP): 401 InvalidAuthenticationToken for a
//     missing, unknown, expired or revoked token and for one whose audience
//     is not https://graph.microsoft.com; 403 ErrorAccessDenied without the
//     delegated permission (Mail.Read/Mail.ReadWrite to read, Mail.Send to
//     send; the .Shared variants for a mailbox other than the signed-in
//     user's, which the user must also have been granted);
//   - /me and /users/{address}: mailFolders (well-known names, display name
//     $filter, childFolders), messages/delta with paging (Prefer:
//     odata.maxpagesize, default 10), opaque signed nextLink/deltaLink that
//     must be used verbatim (extra query options or a changed token are
//     refused), $select, the receivedDateTime ge/gt $filter, @removed
//     entries, 410 syncStateNotFound after ResetDelta; messages/{id}/$value;
//     messages filtered by internetMessageId (in a folder or the mailbox);
//     sendMail with base64 MIME (202; 400 ErrorMimeContentInvalidBase64String;
//     the From must be the mailbox; a copy filed in Sent Items without
//     Auto-Submitted, as Graph is reported to strip it; delivered to the
//     inbox of every recipient mailbox the stand-in hosts);
//   - Outlook's limit of 4 concurrent requests per mailbox: the 5th gets 429
//     ApplicationThrottled "Application is over its MailboxConcurrency
//     limit." (MaxInFlightSeen reports the peak, refused requests counted);
//   - Graph's error JSON {"error":{"code","message","innerError":{"date",
//     "request-id","client-request-id"}}} and request-id headers;
//   - faults (faults.go): 401, 403 "Access to OData is disabled", 429 with
//     and without Retry-After, 503, any status, and delta replays.
//
// What it does not model: JSON sendMail, drafts and attachments endpoints,
// moving messages, change notifications, $batch, the 10,000 requests per
// 10 minutes budget, application (app-only) tokens.
//
// Delta state: every change in a mailbox takes the next sequence number. A
// link carries (folder, filter, round start S, round end H, cursor A,
// previous cursor P, epoch), HMAC-signed with a per-server key: a round
// returns the folder's messages changed in (S, H] after A in sequence order,
// tombstones of messages that existed at S as @removed, and ends with a
// deltaLink starting the next round at H. All state is in memory behind
// one mutex; there are no package globals.
package fakegraph

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Principal is what a valid access token says (see fakeidp.TokenInfo).
type Principal struct {
	Account   string   // the signed-in user's address
	Mailboxes []string // other mailboxes the user may open (a delegate's)
	Audience  string   // the token's resource
	Scopes    []string // delegated permissions for Audience ("Mail.ReadWrite")
}

// Options configures a Server.
type Options struct {
	// Tokens validates a bearer token; false: unknown, expired or revoked.
	// Required (FromIdP wires it to a fakeidp).
	Tokens func(token string) (Principal, bool)
	// Mailboxes the stand-in hosts from the start (a signed-in user's own
	// mailbox and granted ones are added on first use).
	Mailboxes []string
	// BaseURL is the external URL of "/v1.0"'s parent ("http://127.0.0.1:10080/graph").
	// Empty: derived from each request (host and mount prefix).
	BaseURL string
	// Now is the time source of receivedDateTime. Nil: time.Now.
	Now func() time.Time
	// MaxConcurrent is the requests in flight per mailbox before 429
	// MailboxConcurrency; default 4.
	MaxConcurrent int
	// Logger receives one line per refused request and per message sent
	// (never a token or a body). Nil: discard.
	Logger *slog.Logger
}

// Server is the stand-in Graph, an http.Handler serving /v1.0/...
type Server struct {
	opts Options
	log  *slog.Logger
	key  []byte // signs delta links
	mux  *http.ServeMux

	mu        sync.Mutex
	mailboxes map[string]*mailbox // by lower-case address
	faults    []*fault
	policy    map[string]bool // mailboxes blocked by an application access policy
	requests  int
	latency   time.Duration
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 4
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	s := &Server{opts: opts, log: opts.Logger, key: make([]byte, 32),
		mailboxes: map[string]*mailbox{}, policy: map[string]bool{}}
	rand.Read(s.key)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, m := range opts.Mailboxes {
		s.AddMailbox(m)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /mailFolders", s.handleFolders)
	s.mux.HandleFunc("GET /mailFolders/{folder}", s.handleFolder)
	s.mux.HandleFunc("GET /mailFolders/{folder}/childFolders", s.handleFolders)
	s.mux.HandleFunc("GET /mailFolders/{folder}/messages/delta", s.handleDelta)
	s.mux.HandleFunc("GET /messages/{id}/$value", s.handleValue)
	s.mux.HandleFunc("GET /messages", s.handleMessages)
	s.mux.HandleFunc("GET /mailFolders/{folder}/messages", s.handleMessages)
	s.mux.HandleFunc("POST /sendMail", s.handleSendMail)
	return s
}

// request is one request's context after authentication.
type request struct {
	id        string // request-id
	principal Principal
	mailbox   *mailbox // the target mailbox
	user      string   // the target's address, lower case
	shared    bool     // the target is not the signed-in user's own mailbox
	base      string   // external URL of "/v1.0"'s parent
}

type ctxKey struct{}

// ServeHTTP authenticates, resolves /me or /users/{u}, counts the request
// against the mailbox's concurrency, applies faults and serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{id: newUUID(), base: s.base(r)}
	w.Header().Set("request-id", req.id)
	w.Header().Set("client-request-id", orDefault(r.Header.Get("client-request-id"), req.id))
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		s.writeError(w, r, req, http.StatusNotFound, "BadRequest", "Invalid version: only v1.0 is served here.")
		return
	}
	p, ok := s.authenticate(w, r, req)
	if !ok {
		return
	}
	req.principal = p
	who, rest, _ := strings.Cut(rest, "/")
	switch {
	case who == "me":
		req.user = lower(p.Account)
	case who == "users":
		var u string
		u, rest, _ = strings.Cut(rest, "/")
		req.user = lower(u)
	default:
		s.writeError(w, r, req, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+who+"'.")
		return
	}
	if !s.resolve(w, r, req) {
		return
	}
	mb := req.mailbox
	s.mu.Lock()
	s.requests++
	mb.inflight++
	mb.peak = max(mb.peak, mb.inflight)
	over := mb.inflight > s.opts.MaxConcurrent
	var f *fault
	if !over { // a refused request does not use up a fault
		f = s.takeFault(req.user, r.Method, "/"+rest)
	}
	blocked := s.policy[req.user]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		mb.inflight--
		s.mu.Unlock()
	}()
	if d := s.Latency(); d > 0 && !over {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	switch {
	case over:
		s.writeError(w, r, req, http.StatusTooManyRequests, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
		return
	case f != nil:
		f.write(s, w, r, req)
		return
	case blocked:
		s.writeError(w, r, req, http.StatusForbidden, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.")
		return
	}
	inner := r.Clone(context.WithValue(r.Context(), ctxKey{}, req))
	inner.URL.Path, inner.URL.RawPath = "/"+rest, ""
	if _, pattern := s.mux.Handler(inner); pattern == "" {
		s.writeError(w, r, req, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+firstSegment(rest)+"'.")
		return
	}
	s.mux.ServeHTTP(w, inner) // sets the path values
}

// SetLatency makes every request (but one refused for concurrency) take d
// before it is answered, as Graph's do: requests then overlap.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Latency returns what SetLatency set.
func (s *Server) Latency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency
}

func reqOf(r *http.Request) *request { return r.Context().Value(ctxKey{}).(*request) }

// authenticate checks the bearer token and its audience.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, req *request) (Principal, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		s.unauthorized(w, r, req, "Access token is empty.")
		return Principal{}, false
	}
	if s.opts.Tokens == nil {
		s.unauthorized(w, r, req, "Access token validation failure.")
		return Principal{}, false
	}
	p, ok := s.opts.Tokens(strings.TrimSpace(token))
	if !ok {
		s.unauthorized(w, r, req, "Access token has expired or is not yet valid.")
		return Principal{}, false
	}
	if a := strings.TrimSuffix(p.Audience, "/"); a != "https://graph.microsoft.com" && a != graphAppID {
		s.unauthorized(w, r, req, "Access token validation failure. Invalid audience.")
		return Principal{}, false
	}
	return p, true
}

const graphAppID = "00000003-0000-0000-c000-000000000000"

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, req *request, msg string) {
	// RFC 6750 3; Graph names its own app id as the client.
	w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="`+graphAppID+`"`)
	s.writeError(w, r, req, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
}

// resolve finds the target mailbox and checks that the principal may use
// it: its own, or one it was granted (then only with .Shared scopes, which
// handlers check).
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, req *request) bool {
	own := req.user == lower(req.principal.Account)
	granted := own
	for _, m := range req.principal.Mailboxes {
		granted = granted || lower(m) == req.user
	}
	s.mu.Lock()
	mb := s.mailboxes[req.user]
	if mb == nil && granted {
		mb = s.addMailboxLocked(req.user)
	}
	s.mu.Unlock()
	switch {
	case mb == nil:
		s.writeError(w, r, req, http.StatusNotFound, "ErrorInvalidUser", "The requested user '"+req.user+"' is invalid.")
		return false
	case !granted:
		s.writeError(w, r, req, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		return false
	}
	req.mailbox, req.shared = mb, !own
	return true
}

// permit checks the delegated permission of an operation: read or send.
func (s *Server) permit(w http.ResponseWriter, r *http.Request, req *request, send bool) bool {
	var ok []string
	switch {
	case send && req.shared:
		ok = []string{"Mail.Send.Shared"}
	case send:
		ok = []string{"Mail.Send", "Mail.Send.Shared"}
	case req.shared:
		ok = []string{"Mail.Read.Shared", "Mail.ReadWrite.Shared"}
	default:
		ok = []string{"Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared"}
	}
	for _, have := range req.principal.Scopes {
		for _, want := range ok {
			if strings.EqualFold(have, want) {
				return true
			}
		}
	}
	s.writeError(w, r, req, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
	return false
}

// base is the external URL of "/v1.0"'s parent, for links: the request's
// host and whatever prefix the Server is mounted under.
func (s *Server) base(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	prefix := strings.TrimSuffix(path, r.URL.EscapedPath())
	if prefix == path { // not mounted with a prefix strip we can see
		prefix = ""
	}
	return scheme + "://" + r.Host + prefix
}

// writeError writes Graph's error JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, req *request, status int, code, msg string) {
	s.log.Info("fakegraph refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", code)
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    code,
		"message": msg,
		"innerError": map[string]string{
			"date":              s.opts.Now().UTC().Format("2006-01-02T15:04:05"),
			"request-id":        req.id,
			"client-request-id": orDefault(r.Header.Get("client-request-id"), req.id),
		},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func firstSegment(p string) string {
	seg, _, _ := strings.Cut(p, "/")
	return seg
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// newID returns an Exchange-looking opaque id with prefix ("AAMkAD" for a
// message, "AQMkAD" for a folder).
func newID(prefix string) string {
	b := make([]byte, 33)
	rand.Read(b)
	return prefix + base64.URLEncoding.EncodeToString(b)
}
