package smtpsend

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
)

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
		cfg.Addr = "127.0.0.1:25"
		cfg.LocalName = "postdesk.test\r\nMAIL FROM:<x@y>"
		if _, err := cfg.normalize(); KindOf(err) != KindConfig {
			t.Errorf("EHLO name with CRLF: normalize = %v, want KindConfig", err)
		}
		cfg.LocalName = ""
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
