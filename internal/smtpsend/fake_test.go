package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// These tests run go-smtp's server in-process for the replies a real Postfix
// does not give (Microsoft 365's codes among them).

func dialFake(t *testing.T, f *fakeServer) *Conn {
	t.Helper()
	c, err := Dial(t.Context(), f.config(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type sendRefusalCase struct {
	name      string
	configure func(*fakeServer)
	to        []string
	kind      Kind
	stage     string
	code      int
	enhanced  string
	recipient string
	broken    bool // the connection is unusable afterwards
}

func TestSendRefusals(t *testing.T) {
	t.Parallel()
	const nobody = "nobody@example.net"
	tests := []sendRefusalCase{
		{
			name: "unknown recipient among several",
			configure: func(f *fakeServer) {
				f.rcpt = func(to string) error {
					if to == nobody {
						return reply(550, [3]int{5, 1, 1}, "<nobody@example.net>: Recipient address rejected: User unknown")
					}
					return nil
				}
			},
			to:   []string{"jane@example.net", nobody, "joe@example.net"},
			kind: KindRecipientUnknown, stage: StageRcpt, code: 550, enhanced: "5.1.1", recipient: nobody,
		},
		{
			name: "microsoft recipient not found",
			configure: func(f *fakeServer) {
				f.rcpt = func(string) error {
					return reply(550, [3]int{5, 1, 10}, "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup")
				}
			},
			kind: KindRecipientUnknown, stage: StageRcpt, code: 550, enhanced: "5.1.10", recipient: "jane@example.net",
		},
		{
			name: "send as denied 5.7.60",
			configure: func(f *fakeServer) {
				f.mail = func(string) error {
					return reply(550, [3]int{5, 7, 60}, "SMTP; Client does not have permissions to send as this sender")
				}
			},
			kind: KindSendAsDenied, stage: StageMail, code: 550, enhanced: "5.7.60",
		},
		{
			name: "send as denied at data end",
			configure: func(f *fakeServer) {
				f.data = func([]byte) error {
					return reply(554, [3]int{5, 2, 252}, "SendAsDenied; agent@example.com not allowed to send as ceo@example.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied")
				}
			},
			kind: KindSendAsDenied, stage: StageData, code: 554, enhanced: "5.2.252",
		},
		{
			name: "postfix sender login mismatch at rcpt",
			configure: func(f *fakeServer) {
				f.rcpt = func(string) error {
					return reply(553, [3]int{5, 7, 1}, "<ceo@example.com>: Sender address rejected: not owned by user agent@example.com")
				}
			},
			kind: KindSendAsDenied, stage: StageRcpt, code: 553, enhanced: "5.7.1",
		},
		{
			name: "submission quota exceeded",
			configure: func(f *fakeServer) {
				f.data = func([]byte) error {
					return reply(554, [3]int{5, 2, 0}, "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception")
				}
			},
			kind: KindThrottled, stage: StageData, code: 554, enhanced: "5.2.0",
		},
		{
			name: "sender thread limit 4.3.2",
			configure: func(f *fakeServer) {
				f.mail = func(string) error {
					return reply(432, [3]int{4, 3, 2}, "STOREDRV.ClientSubmit; sender thread limit exceeded")
				}
			},
			kind: KindThrottled, stage: StageMail, code: 432, enhanced: "4.3.2",
		},
		{
			name: "too many recipients 452 4.5.3",
			configure: func(f *fakeServer) {
				f.rcpt = func(string) error { return reply(452, [3]int{4, 5, 3}, "Error: too many recipients") }
			},
			kind: KindThrottled, stage: StageRcpt, code: 452, enhanced: "4.5.3", recipient: "jane@example.net",
		},
		{
			name: "421 4.7.0 rate limit closes the connection",
			configure: func(f *fakeServer) {
				f.mail = func(string) error { return reply(421, [3]int{4, 7, 0}, "Try again later, closing connection") }
			},
			kind: KindThrottled, stage: StageMail, code: 421, enhanced: "4.7.0", broken: true,
		},
		{
			name: "temporary 451",
			configure: func(f *fakeServer) {
				f.data = func([]byte) error { return reply(451, [3]int{4, 3, 0}, "Error: queue file write error") }
			},
			kind: KindTemporary, stage: StageData, code: 451, enhanced: "4.3.0",
		},
		{
			name: "permanent content refusal",
			configure: func(f *fakeServer) {
				f.data = func([]byte) error { return reply(550, [3]int{5, 7, 1}, "Message rejected as spam") }
			},
			kind: KindPermanent, stage: StageData, code: 550, enhanced: "5.7.1",
		},
		{
			name: "dropped after the end of data",
			configure: func(f *fakeServer) {
				f.data = func([]byte) error { return errDrop }
			},
			kind: KindOutcomeUnknown, stage: StageData, broken: true,
		},
		{
			name: "dropped before data",
			configure: func(f *fakeServer) {
				f.rcpt = func(string) error {
					f.mu.Lock()
					c := f.conns[len(f.conns)-1]
					f.mu.Unlock()
					f.drop(c)
					return errDrop
				}
			},
			kind: KindTemporary, stage: StageRcpt, recipient: "jane@example.net", broken: true,
		},
	}
	// Every case both ways: commands pipelined (RFC 2920) and one at a
	// time, with the same outcome.
	for _, tt := range tests {
		for _, sequential := range []bool{false, true} {
			name := tt.name
			if sequential {
				name += "/sequential"
			}
			t.Run(name, func(t *testing.T) { testSendRefusal(t, tt, sequential) })
		}
	}
}

func testSendRefusal(t *testing.T, tt sendRefusalCase, sequential bool) {
	t.Parallel()
	var refuse atomic.Bool
	refuse.Store(true)
	f := startFake(t, func(f *fakeServer) {
		f.noPipelining = sequential
		tt.configure(f)
		// Each hook refuses only the first message.
		wrap := func(h func(string) error) func(string) error {
			if h == nil {
				return nil
			}
			return func(s string) error {
				if refuse.Load() {
					return h(s)
				}
				return nil
			}
		}
		f.mail, f.rcpt = wrap(f.mail), wrap(f.rcpt)
		if d := f.data; d != nil {
			f.data = func(raw []byte) error {
				if refuse.Load() {
					return d(raw)
				}
				return nil
			}
		}
	})
	c := dialFake(t, f)
	to := tt.to
	if to == nil {
		to = []string{"jane@example.net"}
	}
	err := c.Send(t.Context(), testUser, to, testMessage(testUser, to[0], "first"))
	e := wantError(t, err, tt.kind, tt.stage, tt.code, tt.enhanced)
	if e.Recipient != tt.recipient {
		t.Errorf("Recipient %q, want %q", e.Recipient, tt.recipient)
	}
	if e.Temporary() != (tt.kind == KindTemporary || tt.kind == KindThrottled) {
		t.Errorf("Temporary() = %v for %v", e.Temporary(), tt.kind)
	}
	if KindOf(fmt.Errorf("wrapped: %w", err)) != tt.kind {
		t.Errorf("KindOf = %v", KindOf(err))
	}
	if tt.kind == KindOutcomeUnknown {
		if got := len(f.received()); got != 0 {
			t.Fatalf("server kept %d messages", got)
		}
	} else if got := len(f.received()); got != 0 {
		t.Fatalf("a refused send left %d messages at the server (partial send?)", got)
	}
	t.Logf("error: %v", err)

	// Next message: on the same connection after a refusal, else
	// refused at once, and sent on a new connection.
	refuse.Store(false)
	second := testMessage(testUser, "jane@example.net", "second")
	if c.Usable() == tt.broken {
		t.Fatalf("Usable() = %v, want %v", c.Usable(), !tt.broken)
	}
	if tt.broken {
		wantError(t, c.Send(t.Context(), testUser, []string{"jane@example.net"}, second), KindTemporary, StageConnect, 0, "")
		c = dialFake(t, f)
	}
	if err := c.Send(t.Context(), testUser, []string{"jane@example.net"}, second); err != nil {
		t.Fatalf("next send: %v", err)
	}
	got := f.received()
	if len(got) != 1 || !bytes.Equal(got[0].raw, second) {
		t.Fatalf("server received %d messages, want the second one", len(got))
	}
	if len(got[0].to) != 1 || got[0].to[0] != "jane@example.net" {
		t.Errorf("second message went to %q: the refused transaction was not reset", got[0].to)
	}
	wantSessions := 1
	if tt.broken {
		wantSessions = 2
	}
	if n := f.sessionCount(); n != wantSessions {
		t.Errorf("%d connections, want %d", n, wantSessions)
	}
}

func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	refusal := func(code int, enhanced [3]int, msg string) func(mech, user, secret string) error {
		return func(_, _, secret string) error {
			if secret == "refreshed-token" {
				return nil
			}
			return reply(code, enhanced, msg)
		}
	}
	tests := []struct {
		name      string
		auth      AuthMethod
		server    func(mech, user, secret string) error
		mechs     []string
		refresh   bool // a RefreshToken that returns "refreshed-token"
		refreshes int32
		kind      Kind // 0: success
		code      int
		enhanced  string
	}{
		{name: "xoauth2", auth: AuthXOAuth2},
		{name: "oauthbearer", auth: AuthOAuthBearer},
		{name: "plain", auth: AuthPlain},
		{name: "login", auth: AuthLogin},
		{
			name: "smtp auth disabled is not retried", auth: AuthXOAuth2, refresh: true,
			server: refusal(535, [3]int{5, 7, 139}, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."),
			kind:   KindAuthDisabled, code: 535, enhanced: "5.7.139",
		},
		{
			name: "refused token, refreshed token works", auth: AuthXOAuth2, refresh: true, refreshes: 1,
			server: refusal(535, [3]int{5, 7, 3}, "Authentication unsuccessful"),
		},
		{
			name: "refused token, refresh refused too", auth: AuthOAuthBearer, refresh: true, refreshes: 1,
			server: func(string, string, string) error { return reply(535, [3]int{5, 7, 3}, "Authentication unsuccessful") },
			kind:   KindAuthFailed, code: 535, enhanced: "5.7.3",
		},
		{
			name: "refused token without refresh", auth: AuthXOAuth2,
			server: refusal(535, [3]int{5, 7, 8}, "Error: authentication failed: invalid token"),
			kind:   KindAuthFailed, code: 535, enhanced: "5.7.8",
		},
		{
			name: "wrong password", auth: AuthPlain, refresh: true,
			server: func(string, string, string) error { return reply(535, [3]int{5, 7, 8}, "Error: authentication failed") },
			kind:   KindAuthFailed, code: 535, enhanced: "5.7.8",
		},
		{
			name: "temporary auth failure is not a refusal", auth: AuthXOAuth2, refresh: true,
			server: refusal(454, [3]int{4, 7, 0}, "Temporary authentication failure"),
			kind:   KindTemporary, code: 454, enhanced: "4.7.0",
		},
		{
			name: "mechanism not offered", auth: AuthXOAuth2, mechs: []string{"PLAIN", "LOGIN"},
			kind: KindConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen []string
			f := startFake(t, func(f *fakeServer) {
				f.mechs = tt.mechs
				f.auth = func(mech, user, secret string) error {
					seen = append(seen, mech+" "+user)
					if user != testUser {
						return reply(535, [3]int{5, 7, 8}, "wrong user")
					}
					if tt.server != nil {
						return tt.server(mech, user, secret)
					}
					if secret == goodToken || secret == testPassword {
						return nil
					}
					return reply(535, [3]int{5, 7, 8}, "wrong secret")
				}
			})
			cfg := f.config(t)
			cfg.Auth = tt.auth
			cfg.Password = func(context.Context) (string, error) { return testPassword, nil }
			var refreshes atomic.Int32
			if tt.refresh {
				cfg.RefreshToken = func(context.Context) (string, error) {
					refreshes.Add(1)
					return "refreshed-token", nil
				}
			}
			c, err := Dial(t.Context(), cfg)
			if refreshes.Load() != tt.refreshes {
				t.Errorf("%d refreshes, want %d", refreshes.Load(), tt.refreshes)
			}
			if tt.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.Send(t.Context(), testUser, []string{"jane@example.net"}, testMessage(testUser, "jane@example.net", "x")); err != nil {
					t.Fatal(err)
				}
				want := mechanisms[tt.auth] + " " + testUser
				if seen[len(seen)-1] != want {
					t.Errorf("server saw %q, want %q", seen, want)
				}
				return
			}
			stage := StageAuth
			e := wantError(t, err, tt.kind, stage, tt.code, tt.enhanced)
			t.Logf("error: %v", e)
		})
	}
}

// TestSendMany sends many messages on one connection: dot-stuffing and
// bare LF line ends arrive as RFC 5321 wants them.
func TestSendMany(t *testing.T) {
	t.Parallel()
	f := startFake(t, nil)
	c := dialFake(t, f)
	const n = 50
	for i := range n {
		raw := fmt.Appendf(nil, "Subject: %d\n\n.leading dot\nbare LF\r\n..two dots\n", i)
		if err := c.Send(t.Context(), testUser, []string{"jane@example.net", "joe@example.net"}, raw); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := f.received()
	if len(got) != n || f.sessionCount() != 1 {
		t.Fatalf("%d messages over %d connections, want %d over 1", len(got), f.sessionCount(), n)
	}
	want := "Subject: 7\r\n\r\n.leading dot\r\nbare LF\r\n..two dots\r\n"
	if string(got[7].raw) != want {
		t.Errorf("message 7 = %q, want %q", got[7].raw, want)
	}
	if got[7].from != testUser || len(got[7].to) != 2 {
		t.Errorf("envelope %q %q", got[7].from, got[7].to)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSendBadInput(t *testing.T) {
	t.Parallel()
	f := startFake(t, nil)
	c := dialFake(t, f)
	raw := testMessage(testUser, "jane@example.net", "x")
	wantError(t, c.Send(t.Context(), "agent@example.com\r\nRCPT TO:<evil@example.net>", []string{"jane@example.net"}, raw), KindPermanent, StageMail, 0, "")
	wantError(t, c.Send(t.Context(), testUser, []string{"jane@example.net>\r\nDATA"}, raw), KindPermanent, StageRcpt, 0, "")
	wantError(t, c.Send(t.Context(), testUser, nil, raw), KindPermanent, StageRcpt, 0, "")
	big := append(bytes.Repeat([]byte("x"), 1<<20), "\r\n"...)
	e := wantError(t, c.Send(t.Context(), testUser, []string{"jane@example.net"}, big), KindPermanent, StageMail, 0, "")
	if !errors.Is(e, ErrMessageTooLarge) {
		t.Errorf("error %v is not ErrMessageTooLarge", e)
	}
	// Postfix's mailtest stack has smtputf8_enable = no, like this server.
	wantError(t, c.Send(t.Context(), testUser, []string{"jösé@example.net"}, raw), KindPermanent, StageMail, 0, "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e = wantError(t, c.Send(ctx, testUser, []string{"jane@example.net"}, raw), KindTemporary, StageMail, 0, "")
	if !errors.Is(e, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", e)
	}
	if !c.Usable() {
		t.Fatal("bad input broke the connection")
	}
	if err := c.Send(t.Context(), testUser, []string{"jane@example.net"}, raw); err != nil {
		t.Fatal(err)
	}
}

func TestSendUTF8(t *testing.T) {
	t.Parallel()
	f := startFake(t, func(f *fakeServer) { f.utf8 = true })
	c := dialFake(t, f)
	raw := []byte("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHallo.\r\n")
	if err := c.Send(t.Context(), testUser, []string{"jösé@example.net"}, raw); err != nil {
		t.Fatal(err)
	}
	if got := f.received(); len(got) != 1 || got[0].to[0] != "jösé@example.net" {
		t.Fatalf("received %+v", got)
	}
}

// TestSendContextAfterDataEnd: a server that never answers the end of data leaves the
// outcome unknown once the context ends.
func TestSendContextAfterDataEnd(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := startFake(t, func(f *fakeServer) {
		f.data = func([]byte) error { <-release; return nil }
	})
	t.Cleanup(func() { close(release) })
	c := dialFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.Send(ctx, testUser, []string{"jane@example.net"}, testMessage(testUser, "jane@example.net", "x"))
	e := wantError(t, err, KindOutcomeUnknown, StageData, 0, "")
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("error %v does not say the deadline passed", e)
	}
}
