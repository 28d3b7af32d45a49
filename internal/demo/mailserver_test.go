package demo

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosasl "github.com/emersion/go-sasl"

	"github.com/postdesk/postdesk/internal/sasl"
)

func startMailServer(t *testing.T, introspect Introspector) (*MailServer, string) {
	t.Helper()
	s := NewMailServer(introspect, nil)
	if err := s.AddMailbox("support@acme.example"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// tokens introspects "good" as support@ and everything else as inactive.
func tokens(_ context.Context, token string) (bool, string, error) {
	if token == "good" {
		return true, "support@acme.example", nil
	}
	return false, "", nil
}

func TestMailServerBearerAuth(t *testing.T) {
	t.Parallel()
	s, addr := startMailServer(t, tokens)
	if err := s.Deliver("support@acme.example", Seed(DefaultDomain(), time.Now())[0].Raw, time.Time{}); err != nil {
		t.Fatal(err)
	}
	clients := map[string]func(user, token string) gosasl.Client{
		"XOAUTH2": func(u, tok string) gosasl.Client { return sasl.NewXOAuth2Client(u, tok) },
		"OAUTHBEARER": func(u, tok string) gosasl.Client {
			return sasl.NewOAuthBearerClient(u, tok, "127.0.0.1", 143)
		},
	}
	for mech, newClient := range clients {
		t.Run(mech, func(t *testing.T) {
			c, err := imapclient.DialInsecure(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Login("support@acme.example", "anything").Wait(); err == nil {
				t.Fatal("LOGIN with a password was accepted")
			}
			for _, bad := range []struct{ user, token string }{
				{"support@acme.example", "revoked"},
				{"billing@acme.example", "good"}, // someone else's token
			} {
				cl := newClient(bad.user, bad.token)
				var imapErr *imap.Error
				if err := c.Authenticate(cl); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
					t.Fatalf("%s with %q: err = %v, want NO [AUTHENTICATIONFAILED]", bad.user, bad.token, err)
				}
				if f := sasl.FailureOf(cl); f == nil || f.Status != "401" || f.Scope != "mail" {
					t.Errorf("failure challenge = %+v", f)
				}
			}
			if err := c.Authenticate(newClient("support@acme.example", "good")); err != nil {
				t.Fatalf("good token: %v", err)
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sel.NumMessages != 1 || sel.UIDValidity != s.uidValidity {
				t.Errorf("INBOX: %d messages, UIDVALIDITY %d; want 1, %d", sel.NumMessages, sel.UIDValidity, s.uidValidity)
			}
		})
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mech, ir, user, token string
		ok                    bool
	}{
		{mechXOAuth2, "user=a@x\x01auth=Bearer tok\x01\x01", "a@x", "tok", true},
		{mechOAuthBearer, "n,a=a@x,\x01host=h\x01port=1\x01auth=Bearer tok\x01\x01", "a@x", "tok", true},
		{mechOAuthBearer, "n,a=a=2Cb@x,\x01auth=Bearer tok\x01\x01", "a,b@x", "tok", true},
		{mechXOAuth2, "user=a@x\x01auth=Basic tok\x01\x01", "a@x", "", false},
		{mechOAuthBearer, "garbage", "", "", false},
	} {
		user, token, ok := parseBearer(tc.mech, []byte(tc.ir))
		if user != tc.user || token != tc.token || ok != tc.ok {
			t.Errorf("parseBearer(%s, %q) = %q, %q, %v; want %q, %q, %v", tc.mech, tc.ir, user, token, ok, tc.user, tc.token, tc.ok)
		}
	}
}
