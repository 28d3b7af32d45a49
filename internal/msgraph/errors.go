package msgraph

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failed Graph request for the caller's decision.
type Kind string

// Kinds of failure.
const (
	// KindThrottled: 429 still after the client's retries (or a Retry-After
	// beyond its bound). Error.RetryAfter says when to try again, if known.
	KindThrottled Kind = "throttled"
	// KindUnavailable: 503 (or 504) still after the client's retries.
	KindUnavailable Kind = "unavailable"
	// KindAuth: 401 even with a freshly refreshed token: sign in again.
	KindAuth Kind = "auth"
	// KindForbidden: 403. A missing permission (scope), no access to another
	// user's mailbox, or an application access policy (Error.AccessPolicy).
	KindForbidden Kind = "forbidden"
	// KindSyncReset: the delta state is gone (410 Gone, syncStateNotFound,
	// resyncRequired): start a new delta round, bounded by receivedDateTime.
	KindSyncReset Kind = "sync_reset"
	// KindInvalidMIME: sendMail refused the body
	// (ErrorMimeContentInvalidBase64String and kin). Sending it again will
	// not help.
	KindInvalidMIME Kind = "invalid_mime"
	// KindNotFound: 404 (a message, folder or user that does not exist).
	KindNotFound Kind = "not_found"
	// KindBadRequest: another 400.
	KindBadRequest Kind = "bad_request"
	// KindTemporary: a network error or a 5xx that may pass; for a POST the
	// request may have taken effect.
	KindTemporary Kind = "temporary"
	// KindPermanent: any other refusal (413, 405, another 4xx).
	KindPermanent Kind = "permanent"
)

// Error is a failed Graph request. It never holds a token.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status; 0 for a network error
	Code       string        // Graph's error.code ("ApplicationThrottled")
	Message    string        // Graph's error.message
	RetryAfter time.Duration // the server's Retry-After, if it sent one
	// AccessPolicy is set for a 403 "Access to OData is disabled": an
	// Exchange Online application access policy (or RBAC for Applications)
	// keeps this app out of the mailbox. Only a tenant admin can change it.
	AccessPolicy bool
	RequestID    string // Graph's request-id header, for support
	Op           string // what was being done ("send mail", "delta")
	Err          error  // the underlying network error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("msgraph: ")
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	} else {
		b.WriteString(string(e.Kind))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Explain says in plain words what happened and what to do next, for an
// admin reading the mailbox's state.
func (e *Error) Explain() string {
	switch {
	case e.AccessPolicy:
		return "Microsoft 365 refused Postdesk access to this mailbox because of an application access policy " +
			"(\"Access to OData is disabled\"). A tenant admin must allow this app for this mailbox " +
			"(Exchange Online: Test-ApplicationAccessPolicy, or RBAC for Applications), or the mailbox must use IMAP and SMTP instead."
	case e.Kind == KindForbidden:
		return "Microsoft 365 refused access to this mailbox: the sign-in lacks a needed permission " +
			"(Mail.ReadWrite and Mail.Send, or their .Shared variants for a shared mailbox) or the signed-in user has no access to it. Sign in again, granting the permissions."
	case e.Kind == KindAuth:
		return "Microsoft 365 no longer accepts this mailbox's sign-in. Sign in again."
	case e.Kind == KindThrottled:
		return "Microsoft 365 is throttling requests to this mailbox; Postdesk will try again later."
	case e.Kind == KindUnavailable, e.Kind == KindTemporary:
		return "Microsoft 365 is temporarily unavailable; Postdesk will try again later."
	case e.Kind == KindInvalidMIME:
		return "Microsoft 365 refused the message as invalid MIME; sending it again will not help."
	case e.Kind == KindSyncReset:
		return "Microsoft 365 forgot where fetching had got to; Postdesk fetches recent mail again and skips what it already has."
	}
	return "Microsoft 365 refused the request (" + e.Error() + ")."
}

// graphError is Graph's error body: {"error":{"code","message","innerError"}}.
type graphError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Code      string `json:"code"`
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// responseError builds the *Error of a non-2xx response and closes its body.
func responseError(op string, resp *http.Response, now time.Time) *Error {
	defer resp.Body.Close()
	var ge graphError
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(body, &ge) // a body that is not Graph's JSON leaves Code empty
	e := &Error{
		Op:         op,
		Status:     resp.StatusCode,
		Code:       ge.Error.Code,
		Message:    ge.Error.Message,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
		RequestID:  resp.Header.Get("request-id"),
	}
	e.Kind = classify(resp.StatusCode, ge.Error.Code, ge.Error.InnerError.Code)
	if e.Kind == KindForbidden && strings.Contains(ge.Error.Message, "Access to OData is disabled") {
		// Graph's only signal of an application access policy is this
		// sentence; read here once so no caller reads prose.
		e.AccessPolicy = true
	}
	return e
}

func classify(status int, code, inner string) Kind {
	for _, c := range []string{code, inner} {
		switch strings.ToLower(c) {
		case "syncstatenotfound", "syncstateinvalid", "resyncrequired", "errorinvalidsyncstatedata":
			return KindSyncReset
		case "errormimecontentinvalidbase64string", "errormimecontentconversionfailed", "errormimecontentinvalid":
			return KindInvalidMIME
		}
	}
	switch {
	case status == http.StatusGone:
		return KindSyncReset
	case status == http.StatusTooManyRequests:
		return KindThrottled
	case status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return KindUnavailable
	case status == http.StatusUnauthorized:
		return KindAuth
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusBadRequest:
		return KindBadRequest
	case status >= 500:
		return KindTemporary
	}
	return KindPermanent
}

// retryAfter parses Retry-After as seconds or an HTTP date (RFC 9110 10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
