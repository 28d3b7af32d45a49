// Package mailconn holds what IMAP and SMTP connections share about how they
// are protected and how they sign in: the Security and AuthMethod settings
// and the rule that clear text goes only to this machine. It is a leaf:
// imapsync, smtpsend and desk's validation all apply the same rule from here.
package mailconn

import (
	"fmt"
	"net"
)

// Security is how a connection to a mail server is protected.
type Security string

const (
	// SecurityTLS is implicit TLS (RFC 8314 3.3): IMAP port 993, SMTP 465.
	SecurityTLS Security = "tls"
	// SecurityStartTLS upgrades a plain connection with STARTTLS (IMAP port
	// 143, RFC 9051 6.2.1; SMTP 587, RFC 3207); a server that does not offer
	// it is an error, never a fallback to clear text.
	SecurityStartTLS Security = "starttls"
	// SecurityNone sends everything in clear text. It is allowed only to a
	// loopback address (tests, the demo's embedded server): see Check.
	SecurityNone Security = "none"
)

// AuthMethod is how a connection authenticates.
type AuthMethod string

const (
	AuthXOAuth2     AuthMethod = "xoauth2"     // SASL XOAUTH2 with a token (Microsoft, Google)
	AuthOAuthBearer AuthMethod = "oauthbearer" // SASL OAUTHBEARER, RFC 7628, with a token
	AuthPlain       AuthMethod = "plain"       // SASL PLAIN, RFC 4616, with a password
	AuthLogin       AuthMethod = "login"       // IMAP LOGIN (RFC 9051 6.2.3) or SASL LOGIN, with a password
)

// IsOAuth reports whether m signs in with a token.
func (m AuthMethod) IsOAuth() bool { return m == AuthXOAuth2 || m == AuthOAuthBearer }

// IsLoopback reports whether host is "localhost" or a loopback IP literal.
// A name other than localhost is not resolved: its address could change
// between this check and the dial.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check validates s for a connection to host: "" is allowed (the caller
// picks its default), an unknown value is an error, and clear text is an
// *InsecureError unless host is on this machine.
func Check(s Security, host string) error {
	switch s {
	case "", SecurityTLS, SecurityStartTLS:
		return nil
	case SecurityNone:
		if !IsLoopback(host) {
			return &InsecureError{Host: host}
		}
		return nil
	}
	return fmt.Errorf("unknown security %q (tls, starttls or none)", s)
}

// InsecureError refuses clear text to a host that is not this machine:
// passwords and tokens would cross the network readable.
type InsecureError struct{ Host string }

func (e *InsecureError) Error() string {
	return fmt.Sprintf("security %q (clear text) is allowed only to a loopback address, not %s", SecurityNone, e.Host)
}
