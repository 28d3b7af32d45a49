package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
)

// These tests submit to the real Postfix of internal/mailtest (SASL through
// Dovecot, XOAUTH2 tokens checked by the fake identity provider) and read
// the delivered mail back from the recipients' Dovecot mailboxes. They skip
// where the stack cannot run.

const (
	helpdesk         = "helpdesk@example.org" // a password mailbox
	helpdeskPassword = "correct horse"
)

func startPostfix(t *testing.T) *mailtest.Stack {
	t.Helper()
	return mailtest.Start(t, mailtest.Options{
		Postfix: true, TLS: true, SendAsCheck: true,
		PasswordUsers: map[string]string{helpdesk: helpdeskPassword},
	})
}

// tokenConfig is a Config for account with XOAUTH2 over STARTTLS.
func tokenConfig(t *testing.T, s *mailtest.Stack, account string) Config {
	return Config{
		Addr: s.SubmissionAddr, Security: SecurityStartTLS, TLSConfig: s.TLSConfig(),
		Username: account, Auth: AuthXOAuth2,
		Token:     func(context.Context) (string, error) { return s.Token(account) },
		LocalName: "postdesk.test",
		Logger:    testLogger(t),
	}
}

// wantDelivered waits until user's INBOX holds exactly the messages raws,
// each once (as sent, below the headers Postfix and Dovecot add), in any
// order: Postfix delivers in parallel.
func wantDelivered(t *testing.T, s *mailtest.Stack, user string, raws ...[]byte) []mailtest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got, err := s.WaitMessages(ctx, user, "INBOX", len(raws))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(raws) {
		t.Fatalf("%s has %d messages, want %d", user, len(got), len(raws))
	}
	seen := make([]bool, len(raws))
	for _, m := range got {
		i := slices.IndexFunc(raws, func(raw []byte) bool { return bytes.HasSuffix(m.Raw, raw) })
		if i < 0 || seen[i] {
			t.Fatalf("%s holds an unexpected or repeated message:\n%s", user, m.Raw)
		}
		seen[i] = true
	}
	return got
}

func TestPostfix(t *testing.T) {
	t.Parallel()
	s := startPostfix(t)

	t.Run("starttls xoauth2, many messages on one connection", func(t *testing.T) {
		t.Parallel()
		const agent = "support@example.com"
		c, err := Dial(t.Context(), tokenConfig(t, s, agent))
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		var toJane, toJoe [][]byte
		for i := range n {
			raw := testMessage(agent, "jane@example.net", fmt.Sprintf("Re: Printer on fire %d", i))
			rcpts := []string{"jane@example.net"}
			if i%2 == 0 { // every other one Cc joe
				rcpts = append(rcpts, "joe@example.net")
				toJoe = append(toJoe, raw)
			}
			toJane = append(toJane, raw)
			if err := c.Send(t.Context(), agent, rcpts, raw); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		got := wantDelivered(t, s, "jane@example.net", toJane...)
		wantDelivered(t, s, "joe@example.net", toJoe...)
		// Postfix's Received field: our EHLO name; ESMTPSA is "over TLS,
		// authenticated" (RFC 3848).
		for _, want := range []string{"from postdesk.test", "with ESMTPSA", "Authenticated sender: " + agent} {
			if !bytes.Contains(got[0].Raw, []byte(want)) {
				t.Errorf("delivered message lacks %q:\n%s", want, got[0].Raw)
			}
		}
	})

	t.Run("a message cut off before its end is not delivered", func(t *testing.T) {
		t.Parallel()
		const agent = "support@example.com"
		cut := testMessage(agent, "kim@example.net", "Re: never ends")
		c, err := Dial(t.Context(), tokenConfig(t, s, agent))
		if err != nil {
			t.Fatal(err)
		}
		notReady := errors.New("not recorded")
		if err := c.SendWhen(t.Context(), agent, []string{"kim@example.net"}, cut, func() error { return notReady }); !errors.Is(err, notReady) {
			t.Fatalf("SendWhen: %v", err)
		}
		c.Close()
		// Postfix has the whole message but its end: it must drop it. The
		// next message, on a new connection, is the only one delivered.
		c, err = Dial(t.Context(), tokenConfig(t, s, agent))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		next := testMessage(agent, "kim@example.net", "Re: ends")
		if err := c.SendWhen(t.Context(), agent, []string{"kim@example.net"}, next, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, s, "kim@example.net", next)
	})

	t.Run("implicit tls oauthbearer", func(t *testing.T) {
		t.Parallel()
		const agent = "billing@example.com"
		cfg := tokenConfig(t, s, agent)
		cfg.Addr, cfg.Security, cfg.Auth = s.SubmissionsAddr, SecurityTLS, AuthOAuthBearer
		c, err := Dial(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		raw := testMessage(agent, "ann@example.net", "Re: Invoice 42")
		if err := c.Send(t.Context(), agent, []string{"ann@example.net"}, raw); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, s, "ann@example.net", raw)
	})

	for _, auth := range []AuthMethod{AuthPlain, AuthLogin} {
		t.Run("password "+string(auth), func(t *testing.T) {
			t.Parallel()
			cfg := Config{
				Addr: s.SubmissionAddr, Security: SecurityNone, Username: helpdesk, Auth: auth,
				Password: func(context.Context) (string, error) { return helpdeskPassword, nil },
				Logger:   testLogger(t),
			}
			c, err := Dial(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			to := "bob-" + string(auth) + "@example.net"
			raw := testMessage(helpdesk, to, "Re: Password reset "+string(auth))
			if err := c.Send(t.Context(), helpdesk, []string{to}, raw); err != nil {
				t.Fatal(err)
			}
			wantDelivered(t, s, to, raw)

			cfg.Password = func(context.Context) (string, error) { return "wrong", nil }
			_, err = Dial(t.Context(), cfg)
			wantError(t, err, KindAuthFailed, StageAuth, 535, "5.7.8")
		})
	}

	t.Run("revoked token", func(t *testing.T) {
		t.Parallel()
		const agent = "sales@example.com"
		stale, err := s.Token(agent)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.IdP.Revoke(agent); err != nil {
			t.Fatal(err)
		}
		cfg := tokenConfig(t, s, agent)
		cfg.Token = func(context.Context) (string, error) { return stale, nil }

		// Without a refresh, and with a refresh that is refused too.
		_, err = Dial(t.Context(), cfg)
		wantError(t, err, KindAuthFailed, StageAuth, 535, "5.7.8")
		var refreshes atomic.Int32
		cfg.RefreshToken = func(context.Context) (string, error) { refreshes.Add(1); return stale, nil }
		_, err = Dial(t.Context(), cfg)
		wantError(t, err, KindAuthFailed, StageAuth, 535, "5.7.8")

		// A refreshed token (issued after the revocation) sends.
		refreshes.Store(0)
		cfg.RefreshToken = func(context.Context) (string, error) { refreshes.Add(1); return s.Token(agent) }
		c, err := Dial(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if refreshes.Load() != 1 {
			t.Errorf("%d refreshes, want 1", refreshes.Load())
		}
		raw := testMessage(agent, "carl@example.net", "Re: Quote")
		if err := c.Send(t.Context(), agent, []string{"carl@example.net"}, raw); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, s, "carl@example.net", raw)
	})

	t.Run("send as denied, then the connection still sends", func(t *testing.T) {
		t.Parallel()
		const agent = "team@example.com"
		c, err := Dial(t.Context(), tokenConfig(t, s, agent))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		denied := testMessage("ceo@example.com", "dora@example.net", "Re: Acquisition")
		err = c.Send(t.Context(), "ceo@example.com", []string{"dora@example.net"}, denied)
		e := wantError(t, err, KindSendAsDenied, StageRcpt, 553, "5.7.1")
		t.Logf("error: %v", e)
		raw := testMessage(agent, "dora@example.net", "Re: Order")
		if err := c.Send(t.Context(), agent, []string{"dora@example.net"}, raw); err != nil {
			t.Fatalf("send after the refusal: %v", err)
		}
		wantDelivered(t, s, "dora@example.net", raw)
	})

	t.Run("one bad recipient sends to nobody", func(t *testing.T) {
		t.Parallel()
		const agent = "desk@example.com"
		c, err := Dial(t.Context(), tokenConfig(t, s, agent))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Postfix refuses an address literal that is no IP address.
		const bad = "eve@[999.1.2.3]"
		first := testMessage(agent, "fay@example.net", "Re: First")
		err = c.Send(t.Context(), agent, []string{"fay@example.net", bad}, first)
		e := wantError(t, err, KindRecipientUnknown, StageRcpt, 501, "5.1.3")
		if e.Recipient != bad {
			t.Errorf("Recipient %q, want %q", e.Recipient, bad)
		}
		t.Logf("error: %v", e)
		second := testMessage(agent, "fay@example.net", "Re: Second")
		if err := c.Send(t.Context(), agent, []string{"fay@example.net"}, second); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, s, "fay@example.net", second) // and not the first
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		for _, sec := range []Security{SecurityStartTLS, SecurityTLS} {
			cfg := tokenConfig(t, s, "support@example.com")
			cfg.TLSConfig = nil // system roots: the stack's certificate is self-signed
			if sec == SecurityTLS {
				cfg.Addr = s.SubmissionsAddr
			}
			cfg.Security = sec
			_, err := Dial(t.Context(), cfg)
			e := wantError(t, err, KindConfig, StageTLS, 0, "")
			t.Logf("%s: %v", sec, e)
		}
	})

	t.Run("implicit tls to a clear-text port", func(t *testing.T) {
		t.Parallel()
		cfg := tokenConfig(t, s, "support@example.com")
		cfg.Security = SecurityTLS
		_, err := Dial(t.Context(), cfg)
		wantError(t, err, KindConfig, StageTLS, 0, "")
	})

	t.Run("unknown mechanism context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Dial(ctx, tokenConfig(t, s, "support@example.com"))
		if KindOf(err) != KindTemporary || !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial with a cancelled context = %v", err)
		}
	})
}
