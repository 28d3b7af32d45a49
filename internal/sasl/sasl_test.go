package sasl

import (
	"bytes"
	"errors"
	"testing"

	gosasl "github.com/emersion/go-sasl"
)

func TestXOAuth2Bytes(t *testing.T) {
	t.Parallel()
	c := NewXOAuth2Client("agent@example.com", "tok3n")
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if mech != "XOAUTH2" {
		t.Errorf("mech = %q", mech)
	}
	want := "user=agent@example.com\x01auth=Bearer tok3n\x01\x01"
	if string(ir) != want {
		t.Errorf("initial response = %q, want %q", ir, want)
	}
	if c.Failure() != nil {
		t.Errorf("failure before any challenge: %v", c.Failure())
	}
}

func TestOAuthBearerBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, host string
		port             int
		want             string
	}{
		{"full", "agent@example.com", "imap.example.com", 993,
			"n,a=agent@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01"},
		{"no host/port", "agent@example.com", "", 0,
			"n,a=agent@example.com,\x01auth=Bearer tok\x01\x01"},
		{"no authzid", "", "h", 587,
			"n,,\x01host=h\x01port=587\x01auth=Bearer tok\x01\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mech, ir, err := NewOAuthBearerClient(tt.user, "tok", tt.host, tt.port).Start()
			if err != nil {
				t.Fatal(err)
			}
			if mech != "OAUTHBEARER" || string(ir) != tt.want {
				t.Errorf("Start() = %q, %q; want OAUTHBEARER, %q", mech, ir, tt.want)
			}
		})
	}
}

func TestPlainBytes(t *testing.T) {
	t.Parallel()
	mech, ir, err := NewPlainClient("", "u@example.com", "pw").Start()
	if err != nil {
		t.Fatal(err)
	}
	if mech != "PLAIN" || string(ir) != "\x00u@example.com\x00pw" {
		t.Errorf("Start() = %q, %q", mech, ir)
	}
}

func TestFailureChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		challenge string
		want      AuthError
	}{
		{"microsoft", `{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}`,
			AuthError{Status: "401", Schemes: "bearer", Scope: "https://outlook.office.com/IMAP.AccessAsUser.All"}},
		{"dovecot", `{"status":"invalid_token","schemes":"bearer","scope":"mail"}`,
			AuthError{Status: "invalid_token", Schemes: "bearer", Scope: "mail"}},
		{"numeric status", `{"status":400,"schemes":"Bearer"}`, AuthError{Status: "400", Schemes: "Bearer"}},
		{"not json", `nope`, AuthError{Malformed: true}},
		{"empty", ``, AuthError{Malformed: true}},
		{"json array", `[1]`, AuthError{Malformed: true}},
	}
	for _, tt := range tests {
		for _, c := range []gosasl.Client{NewXOAuth2Client("u", "t"), NewOAuthBearerClient("u", "t", "h", 1)} {
			if _, _, err := c.Start(); err != nil {
				t.Fatal(err)
			}
			resp, err := c.Next([]byte(tt.challenge))
			if err != nil {
				t.Fatalf("%s: Next: %v", tt.name, err)
			}
			if !bytes.Equal(resp, []byte{0x01}) {
				t.Errorf("%s: response = %q, want a single 0x01", tt.name, resp)
			}
			got := FailureOf(c)
			if got == nil || *got != tt.want {
				t.Errorf("%s: FailureOf = %+v, want %+v", tt.name, got, tt.want)
			}
			// A second challenge after a failure is a protocol violation.
			if _, err := c.Next([]byte(tt.challenge)); !errors.Is(err, gosasl.ErrUnexpectedServerChallenge) {
				t.Errorf("%s: second Next err = %v", tt.name, err)
			}
			// Start resets the exchange.
			if _, _, _ = c.Start(); FailureOf(c) != nil {
				t.Errorf("%s: failure survived Start", tt.name)
			}
		}
	}
}

func TestAuthErrorMessageHasNoToken(t *testing.T) {
	t.Parallel()
	c := NewXOAuth2Client("u@example.com", "SECRET-TOKEN")
	c.Start()
	c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"s"}`))
	if msg := c.Failure().Error(); bytes.Contains([]byte(msg), []byte("SECRET")) || msg == "" {
		t.Errorf("Error() = %q", msg)
	}
	if FailureOf(NewPlainClient("", "u", "p")) != nil {
		t.Error("FailureOf(plain) != nil")
	}
}

func FuzzParseAuthError(f *testing.F) {
	f.Add([]byte(`{"status":"401","schemes":"bearer","scope":"x"}`))
	f.Add([]byte(`{"status":401}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e := parseAuthError(b); e == nil {
			t.Fatal("nil AuthError")
		}
	})
}
