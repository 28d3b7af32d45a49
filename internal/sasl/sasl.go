// Package sasl provides the SASL client mechanisms Postdesk authenticates
// with, shared by IMAP (go-imap v2 Client.Authenticate) and SMTP (go-smtp
// Client.Auth): XOAUTH2 (Microsoft, Google), OAUTHBEARER (RFC 7628) and PLAIN
// (RFC 4616).
//
// Every client implements github.com/emersion/go-sasl's Client interface.
// The constructors return concrete types so that, after a failed exchange,
// the caller can learn why the server refused the token:
//
//	c := sasl.NewXOAuth2Client(user, token)
//	if err := imapClient.Authenticate(c); err != nil {
//		if f := c.Failure(); f != nil { ... f.Status, f.Scope ... }
//	}
//
// Design: on failure an OAuth server sends a JSON error as a SASL challenge
// and expects one more client response before it answers NO / 535 (RFC 7628
// 3.2.2). Next therefore does not return an error (that would make the
// protocol library cancel the exchange with "*", losing the server's final
// status line); it records the parsed JSON as an *AuthError, readable with
// Failure or FailureOf, and answers with a single 0x01 byte (RFC 7628 3.2.3
// for OAUTHBEARER; also accepted by Dovecot and Microsoft for XOAUTH2, where
// an empty response would be encoded "=" by go-imap v2 beta.8 and rejected by
// Dovecot as bad base64). The protocol library then returns the server's own
// error (IMAP NO [AUTHENTICATIONFAILED], SMTP 535).
//
// A client value holds one exchange: create a new one per attempt. Failure is
// safe to call after Authenticate/Auth returned (not concurrently with them).
// Nothing in this package logs, and AuthError never contains the token.
package sasl

import (
	"bytes"
	"encoding/json"
	"fmt"

	gosasl "github.com/emersion/go-sasl"
)

// Mechanism names as sent in IMAP AUTHENTICATE and SMTP AUTH.
const (
	XOAuth2     = "XOAUTH2"
	OAuthBearer = gosasl.OAuthBearer
	Plain       = gosasl.Plain
)

// AuthError is the failure a server reported in an OAuth SASL exchange: the
// JSON object of RFC 7628 3.2.2 ({"status":"401","schemes":"bearer",
// "scope":"..."}), which XOAUTH2 servers send too. Status is kept as text
// whether the server sent a JSON string or number ("401", "invalid_token").
// A challenge that is not a JSON object gives an AuthError with Malformed set.
type AuthError struct {
	Status  string
	Schemes string
	Scope   string
	// Malformed reports that the server's challenge was not the expected JSON.
	Malformed bool
}

// Error implements error.
func (e *AuthError) Error() string {
	if e.Malformed {
		return "sasl: server refused the token (unparsable failure challenge)"
	}
	s := "sasl: server refused the token: status " + quoteOrDash(e.Status)
	if e.Scope != "" {
		s += ", scope " + e.Scope
	}
	return s
}

func quoteOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// FailureOf returns the failure recorded by an XOAUTH2 or OAUTHBEARER client
// of this package during its last exchange, or nil if there was none or c is
// another kind of client.
func FailureOf(c gosasl.Client) *AuthError {
	if f, ok := c.(interface{ Failure() *AuthError }); ok {
		return f.Failure()
	}
	return nil
}

// parseAuthError decodes a failure challenge. It never fails: a challenge
// that is not a JSON object is reported as Malformed.
func parseAuthError(challenge []byte) *AuthError {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(challenge, &raw); err != nil || raw == nil {
		return &AuthError{Malformed: true}
	}
	return &AuthError{
		Status:  jsonText(raw["status"]),
		Schemes: jsonText(raw["schemes"]),
		Scope:   jsonText(raw["scope"]),
	}
}

// jsonText returns a JSON string's value, or the literal text of a number.
func jsonText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err == nil {
		return n.String()
	}
	return string(v)
}

// failureResponse is the client's answer to a failure challenge: a single
// 0x01 (RFC 7628 3.2.3 "%x01"), never an empty response.
var failureResponse = []byte{0x01}

// oauthExchange is the failure handling shared by XOAUTH2 and OAUTHBEARER.
type oauthExchange struct {
	mech    string
	failure *AuthError
}

func (x *oauthExchange) next(challenge []byte) ([]byte, error) {
	if x.failure != nil {
		// The server already reported a failure and we answered it; a second
		// challenge is a protocol violation.
		return nil, fmt.Errorf("%s: %w after failure challenge", x.mech, gosasl.ErrUnexpectedServerChallenge)
	}
	x.failure = parseAuthError(challenge)
	return bytes.Clone(failureResponse), nil
}

// NewPlainClient returns a PLAIN client (RFC 4616). identity is the
// authorization identity, usually empty.
func NewPlainClient(identity, username, password string) gosasl.Client {
	return gosasl.NewPlainClient(identity, username, password)
}
