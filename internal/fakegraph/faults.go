package fakegraph

import (
	"net/http"
	"strings"
)

// Op names a kind of request, for faults.
type Op string

// Ops.
const (
	OpAny     Op = ""
	OpDelta   Op = "delta"   // GET .../messages/delta
	OpMIME    Op = "mime"    // GET .../messages/{id}/$value
	OpSend    Op = "send"    // POST .../sendMail
	OpFolders Op = "folders" // GET .../mailFolders...
)

func opOf(method, path string) Op {
	switch {
	case strings.HasSuffix(path, "/messages/delta"):
		return OpDelta
	case strings.HasSuffix(path, "/$value"):
		return OpMIME
	case method == http.MethodPost && strings.HasSuffix(path, "/sendMail"):
		return OpSend
	case strings.HasPrefix(path, "/mailFolders"):
		return OpFolders
	}
	return "other"
}

// Fault is an answer the stand-in gives instead of serving, to the next
// Times requests that match.
type Fault struct {
	User   string // the target mailbox; "" any
	Op     Op     // OpAny: any request
	Times  int    // how many requests; 0 means 1
	Status int
	Code   string
	// Message is error.message; empty: a default for the status.
	Message string
	// RetryAfter is the Retry-After header as sent ("3", or an HTTP date);
	// empty: none.
	RetryAfter string
}

type fault struct {
	Fault
	left int
}

// Fail queues f: the next f.Times matching requests (after authentication
// and the concurrency check) get its answer. Faults are used in the order
// they were queued.
func (s *Server) Fail(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	f.User = lower(f.User)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: f.Times})
}

// ClearFaults drops the faults queued and not yet used.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Throttle makes the next n matching requests answer 429
// ApplicationThrottled, with Retry-After: retryAfter when it is not empty.
func (s *Server) Throttle(user string, op Op, n int, retryAfter string) {
	s.Fail(Fault{User: user, Op: op, Times: n, Status: http.StatusTooManyRequests, Code: "ApplicationThrottled",
		Message: "Application is over its MailboxConcurrency limit.", RetryAfter: retryAfter})
}

// Unavailable makes the next n matching requests answer 503.
func (s *Server) Unavailable(user string, op Op, n int) {
	s.Fail(Fault{User: user, Op: op, Times: n, Status: http.StatusServiceUnavailable, Code: "ServiceNotAvailable",
		Message: "The service is temporarily unavailable. Please try again later."})
}

// RejectToken makes the next n matching requests answer 401
// InvalidAuthenticationToken, whatever the token.
func (s *Server) RejectToken(user string, op Op, n int) {
	s.Fail(Fault{User: user, Op: op, Times: n, Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
		Message: "Access token has expired or is not yet valid."})
}

// BlockByPolicy puts user's mailbox behind an application access policy
// (blocked=true) or takes it out: every request to it answers 403
// ErrorAccessDenied "Access to OData is disabled...".
func (s *Server) BlockByPolicy(user string, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blocked {
		s.policy[lower(user)] = true
	} else {
		delete(s.policy, lower(user))
	}
}

// Replay makes user's next n delta pages (those with a page or round
// before them) serve again, before their own changes, what the page or
// round before them served, as Graph may.
func (s *Server) Replay(user string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMailboxLocked(lower(user)).replays += n
}

// takeFault returns and consumes the first fault matching a request.
// Called with s.mu held.
func (s *Server) takeFault(user, method, path string) *fault {
	op := opOf(method, path)
	for i, f := range s.faults {
		if (f.User != "" && f.User != user) || (f.Op != OpAny && f.Op != op) {
			continue
		}
		f.left--
		if f.left <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

func (f *fault) write(s *Server, w http.ResponseWriter, r *http.Request, req *request) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Status == http.StatusUnauthorized {
		s.unauthorized(w, r, req, orDefault(f.Message, "Access token has expired or is not yet valid."))
		return
	}
	s.writeError(w, r, req, f.Status, orDefault(f.Code, http.StatusText(f.Status)), orDefault(f.Message, http.StatusText(f.Status)))
}
