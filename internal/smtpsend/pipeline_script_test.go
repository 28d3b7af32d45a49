package smtpsend

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptedServer is a minimal SMTP server on 127.0.0.1 that offers
// PIPELINING, accepts any AUTH, and answers every other command with
// answer (nil: 250; "close" closes the connection; the reply may wait).
func scriptedServer(t *testing.T, answer func(cmd string) (reply string, wait time.Duration)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				w := func(s string) bool { _, err := c.Write([]byte(s + "\r\n")); return err == nil }
				w("220 scripted.example.test ESMTP")
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					if inData {
						if line == "." {
							inData = false
							w("250 2.0.0 Ok: queued as SCRIPTED")
						}
						continue
					}
					cmd := strings.ToUpper(line)
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						w("250-scripted.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 AUTH XOAUTH2 PLAIN")
						continue
					case strings.HasPrefix(cmd, "AUTH"):
						w("235 2.7.0 Authentication successful")
						continue
					case cmd == "QUIT":
						w("221 2.0.0 Bye")
						return
					}
					reply, wait := answer(cmd)
					time.Sleep(wait)
					if reply == "" {
						reply = "250 2.1.0 Ok"
						if cmd == "DATA" {
							reply = "354 End data with <CR><LF>.<CR><LF>"
						}
					}
					if reply == "close" {
						return
					}
					if !w(reply) {
						return
					}
					if strings.HasPrefix(reply, "354") {
						inData = true
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func scriptedConfig(t *testing.T, addr string) Config {
	return Config{Addr: addr, Security: SecurityNone, Username: testUser, Auth: AuthXOAuth2,
		Token: func(context.Context) (string, error) { return goodToken, nil }, Logger: testLogger(t)}
}

// A refusal is the outcome even when the server then closes (421, or the
// connection) before answering the rest of the pipelined commands, as
// Postfix does past smtpd_hard_error_limit.
func TestPipelinedRefusalThenClose(t *testing.T) {
	t.Parallel()
	for _, then := range []string{"421 4.7.0 Error: too many errors", "close"} {
		addr := scriptedServer(t, func(cmd string) (string, time.Duration) {
			switch {
			case strings.HasPrefix(cmd, "MAIL"):
				return "553 5.7.1 <ceo@example.com>: Sender address rejected: not owned by user", 0
			case strings.HasPrefix(cmd, "RCPT"):
				return then, 0
			}
			return "", 0
		})
		c, err := Dial(t.Context(), scriptedConfig(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(t.Context(), "ceo@example.com", []string{"jane@example.net"}, testMessage("ceo@example.com", "jane@example.net", "x"))
		e := wantError(t, err, KindSendAsDenied, StageMail, 553, "5.7.1")
		if e.Recipient != "" {
			t.Errorf("%s: blames recipient %q", then, e.Recipient)
		}
		if c.Usable() {
			t.Errorf("%s: connection usable after the server closed it", then)
		}
		c.Close()
	}
}

// Each pipelined reply has its own CommandTimeout: several slow RCPT
// replies that each come within it do not add up to a timeout.
func TestPipelinedTimeoutPerReply(t *testing.T) {
	t.Parallel()
	addr := scriptedServer(t, func(cmd string) (string, time.Duration) {
		if strings.HasPrefix(cmd, "RCPT") {
			return "", 400 * time.Millisecond
		}
		return "", 0
	})
	cfg := scriptedConfig(t, addr)
	cfg.CommandTimeout = time.Second
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := []string{"a@example.net", "b@example.net", "c@example.net", "d@example.net"}
	if err := c.Send(t.Context(), testUser, to, testMessage(testUser, to[0], "slow")); err != nil {
		t.Fatalf("four replies of 0.4 s each with a 1 s timeout: %v", err)
	}
}

// An enhanced status code is three dot-separated numbers and nothing
// else, as go-smtp reads it on the sequential path.
func TestEnhancedCodeParsing(t *testing.T) {
	for _, tt := range []struct{ reply, enhanced string }{
		{"452 4.5.3 Error: too many recipients", "4.5.3"},
		{"452 4.5.3: too many recipients", ""},
		{"550 192.168.1.1 listed at a blocklist", ""},
		{"550 Rejected", ""},
	} {
		addr := scriptedServer(t, func(cmd string) (string, time.Duration) {
			if strings.HasPrefix(cmd, "RCPT") {
				return tt.reply, 0
			}
			return "", 0
		})
		c, err := Dial(t.Context(), scriptedConfig(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(t.Context(), testUser, []string{"jane@example.net"}, testMessage(testUser, "jane@example.net", "x"))
		if e, ok := err.(*Error); !ok || e.Enhanced != tt.enhanced {
			t.Errorf("%q: %v, want enhanced %q", tt.reply, err, tt.enhanced)
		}
		c.Close()
	}
}

// A reply line that never ends fails the exchange once it passes 2,000
// bytes (as go-smtp's own reader does), rather than being read into memory
// for as long as the server sends it.
func TestPipelinedReplyLineLimit(t *testing.T) {
	t.Parallel()
	addr := scriptedServer(t, func(cmd string) (string, time.Duration) {
		if strings.HasPrefix(cmd, "MAIL") {
			return "250-" + strings.Repeat("x", 4<<20) + "\r\n250 2.1.0 Ok", 0
		}
		return "", 0
	})
	c, err := Dial(t.Context(), scriptedConfig(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Send(t.Context(), testUser, []string{"jane@example.net"}, testMessage(testUser, "jane@example.net", "x"))
	if err == nil || !strings.Contains(err.Error(), "longer than 2,000 bytes") {
		t.Fatalf("a 4 MB reply line: %v, want the line refused", err)
	}
	if c.Usable() {
		t.Error("the connection is usable after a reply line that was cut off")
	}
}
