package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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

func TestSendRefusals(t *testing.T) {
	t.Parallel()
	const nobody = "nobody@example.net"
	tests := []struct {
		name      string
		configure func(*fakeServer)
		to        []string
		kind      Kind
		stage     string
		code      int
		enhanced  string
		recipient string
		broken    bool // the connection is unusable afterwards
	}{
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var refuse atomic.Bool
			refuse.Store(true)
			f := startFake(t, func(f *fakeServer) {
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
		})
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

func TestDialConfigErrors(t *testing.T) {
	t.Parallel()
	t.Run("clear text to a non-loopback address is refused without dialling", func(t *testing.T) {
		t.Parallel()
		var dials atomic.Int32
		cfg := Config{
			Addr: "192.0.2.1:587", Security: SecurityNone, Username: testUser, Auth: AuthXOAuth2,
			Token: func(context.Context) (string, error) { return goodToken, nil },
			dial: func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("dialled")
			},
		}
		_, err := Dial(t.Context(), cfg)
		wantError(t, err, KindConfig, StageConnect, 0, "")
		if dials.Load() != 0 {
			t.Fatalf("dialled %d times", dials.Load())
		}
		for _, addr := range []string{"example.com:25", "10.0.0.1:25", "[2001:db8::1]:587", "localhost.example.com:25"} {
			cfg.Addr = addr
			if _, err := cfg.normalize(); KindOf(err) != KindConfig {
				t.Errorf("%s: normalize = %v, want KindConfig", addr, err)
			}
		}
		for _, addr := range []string{"127.0.0.1:25", "127.3.4.5:25", "[::1]:25", "localhost:25"} {
			cfg.Addr = addr
			if _, err := cfg.normalize(); err != nil {
				t.Errorf("%s: %v", addr, err)
			}
		}
	})
	t.Run("no starttls", func(t *testing.T) {
		t.Parallel()
		f := startFake(t, nil)
		cfg := f.config(t)
		cfg.Security = SecurityStartTLS
		_, err := Dial(t.Context(), cfg)
		wantError(t, err, KindConfig, StageTLS, 0, "")
		if len(f.received()) != 0 {
			t.Fatal("sent")
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		t.Parallel()
		cfg := Config{
			Addr: "smtp.nowhere.invalid:587", Username: testUser, Auth: AuthXOAuth2,
			Token: func(context.Context) (string, error) { return goodToken, nil },
			dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "smtp.nowhere.invalid", IsNotFound: true}}
			},
		}
		_, err := Dial(t.Context(), cfg)
		wantError(t, err, KindConfig, StageConnect, 0, "")
	})
	t.Run("connection refused is temporary", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = Dial(t.Context(), Config{Addr: addr, Security: SecurityNone, Username: testUser, Auth: AuthPlain,
			Password: func(context.Context) (string, error) { return testPassword, nil }})
		wantError(t, err, KindTemporary, StageConnect, 0, "")
	})
	t.Run("token source fails", func(t *testing.T) {
		t.Parallel()
		f := startFake(t, nil)
		cfg := f.config(t)
		errReauth := errors.New("needs reauthentication")
		cfg.Token = func(context.Context) (string, error) { return "", errReauth }
		_, err := Dial(t.Context(), cfg)
		wantError(t, err, KindTemporary, StageAuth, 0, "")
		if !errors.Is(err, errReauth) {
			t.Errorf("error %v does not wrap the token source's error", err)
		}
	})
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
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := wantError(t, c.Send(ctx, testUser, []string{"jane@example.net"}, raw), KindTemporary, StageMail, 0, "")
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

// TestSendTimeout: a server that never answers the end of data leaves the
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
