package mailtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosasl "github.com/emersion/go-sasl"
)

// testMessage returns a small RFC 5322 message with a unique Message-ID.
func testMessage(from, to, subject string) []byte {
	return fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 02 Feb 2026 10:00:00 +0000\r\n"+
		"Message-ID: <%s@mailtest.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n%s\r\n",
		from, to, subject, randomHex(8), subject)
}

// testCtx is a context for one step of a test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// imapLogin dials addr (with TLS when cfg is set) and authenticates with c.
func imapLogin(t *testing.T, addr string, c gosasl.Client, opts *imapclient.Options) (*imapclient.Client, error) {
	t.Helper()
	var client *imapclient.Client
	var err error
	if opts != nil && opts.TLSConfig != nil {
		client, err = imapclient.DialTLS(addr, opts)
	} else {
		client, err = imapclient.DialInsecure(addr, opts)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.Authenticate(c); err != nil {
		return nil, err
	}
	return client, nil
}

// mustToken issues an access token for account from the stack's IdP.
func mustToken(t *testing.T, s *Stack, account string) string {
	t.Helper()
	tok, err := s.Token(account)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantAuthFailed checks that err is IMAP NO [AUTHENTICATIONFAILED].
func wantAuthFailed(t *testing.T, err error) {
	t.Helper()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("authenticate: got %v, want NO [AUTHENTICATIONFAILED]", err)
	}
}

// wantSameRaw checks that got holds exactly the messages want, in order
// (Dovecot LMTP adds Return-Path and Received headers, so compare suffixes).
func wantSameRaw(t *testing.T, got []Message, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.HasSuffix(got[i].Raw, want[i]) {
			t.Fatalf("message %d (uid %d):\n%s\nwant suffix:\n%s", i, got[i].UID, got[i].Raw, want[i])
		}
	}
}

// processesIn returns the pids of running processes whose command line or
// environment names dir: what a stopped stack must not leave behind.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !running(pid) {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if bytes.Contains(b, []byte(dir+"/")) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// listening reports whether something accepts connections on addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// splitAddr splits a host:port address.
func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}
