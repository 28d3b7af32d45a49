package mailconn

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		sec      Security
		host     string
		insecure bool
		bad      bool
	}{
		{"", "mail.example.com", false, false},
		{SecurityTLS, "mail.example.com", false, false},
		{SecurityStartTLS, "10.0.0.1", false, false},
		{SecurityNone, "127.0.0.1", false, false},
		{SecurityNone, "127.8.9.10", false, false},
		{SecurityNone, "::1", false, false},
		{SecurityNone, "localhost", false, false},
		{SecurityNone, "localhost.example.com", true, false},
		{SecurityNone, "10.0.0.1", true, false},
		{SecurityNone, "mail.example.com", true, false},
		{SecurityNone, "", true, false},
		{"ssl", "127.0.0.1", false, true},
	} {
		err := Check(c.sec, c.host)
		var ie *InsecureError
		switch {
		case c.insecure && !errors.As(err, &ie):
			t.Errorf("Check(%q, %q) = %v, want an *InsecureError", c.sec, c.host, err)
		case c.bad && (err == nil || errors.As(err, &ie)):
			t.Errorf("Check(%q, %q) = %v, want an unknown-security error", c.sec, c.host, err)
		case !c.insecure && !c.bad && err != nil:
			t.Errorf("Check(%q, %q) = %v, want nil", c.sec, c.host, err)
		}
	}
}

func TestIsOAuth(t *testing.T) {
	for m, want := range map[AuthMethod]bool{AuthXOAuth2: true, AuthOAuthBearer: true, AuthPlain: false, AuthLogin: false, "": false} {
		if m.IsOAuth() != want {
			t.Errorf("%q.IsOAuth() = %v", m, !want)
		}
	}
}
