package imapsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
)

// These tests run a real Dovecot with XOAUTH2 tokens checked by the fake
// identity provider (internal/mailtest); they skip where Dovecot cannot run.

const dovecotUser = "support@example.com"

func startDovecot(t *testing.T) (*mailtest.Stack, Config) {
	t.Helper()
	stack := mailtest.Start(t, mailtest.Options{})
	cfg := Config{
		Addr: stack.IMAPAddr, Security: SecurityNone, Username: dovecotUser, Auth: AuthXOAuth2,
		Token:       func(context.Context) (string, error) { return stack.Token(dovecotUser) },
		InitialDays: 30,
		BackoffMin:  100 * time.Millisecond, BackoffMax: time.Second,
		Logger: testLogger(t),
	}
	return stack, cfg
}

// unique fails the test unless the store holds exactly n messages, with n
// distinct Message-IDs.
func unique(t *testing.T, st *memStore, n int) {
	t.Helper()
	ids := map[string]int{}
	for _, g := range st.all() {
		ids[g.MessageID]++
	}
	if len(ids) != n {
		t.Errorf("%d unique messages, want %d", len(ids), n)
	}
	st.check()
}

func rawMsgs(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i, m := range msgs(prefix, n, 0) {
		out[i] = m.raw()
	}
	return out
}

func TestDovecotDeliveredOnce(t *testing.T) {
	stack, cfg := startDovecot(t)
	st := newStore(t)
	r := startRun(t, cfg, st)
	r.waitIdle(t)
	const n = 200
	for i, raw := range rawMsgs("d", n) {
		if err := stack.Deliver(t.Context(), dovecotUser, raw); err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
	}
	st.waitFor(t, n, 15*time.Second)
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	if got := len(st.all()); got != n {
		t.Errorf("store has %d messages, want %d", got, n)
	}
	wantUIDs(t, st.uids(), seq(1, n)...)
	unique(t, st, n)
	t.Logf("%d deliveries over %d connection(s)", n, r.count(EventConnected))
}

func TestDovecotIdleLatency(t *testing.T) {
	stack, cfg := startDovecot(t)
	st := newStore(t)
	r := startRun(t, cfg, st)
	r.waitIdle(t)
	var worst time.Duration
	for i, raw := range rawMsgs("l", 5) {
		began := time.Now()
		if err := stack.Deliver(t.Context(), dovecotUser, raw); err != nil {
			t.Fatal(err)
		}
		select {
		case <-st.handled:
		case <-time.After(2 * time.Second):
			t.Fatalf("message %d not handed over within 2s of delivery", i)
		}
		d := time.Since(began)
		worst = max(worst, d)
		t.Logf("IDLE latency, LMTP delivery to Handle: %v", d)
		r.waitIdle(t)
	}
	t.Logf("worst IDLE latency: %v", worst)
}

func TestDovecotRevokedToken(t *testing.T) {
	stack, cfg := startDovecot(t)
	// Two tokens issued before the account's tokens are revoked.
	stale := make([]string, 2)
	for i := range stale {
		tok, err := stack.Token(dovecotUser)
		if err != nil {
			t.Fatal(err)
		}
		stale[i] = tok
	}
	if err := stack.IdP.Revoke(dovecotUser); err != nil {
		t.Fatal(err)
	}
	cfg.Token = func(context.Context) (string, error) { return stale[0], nil }

	t.Run("RefreshRefusedToo", func(t *testing.T) {
		var refreshes atomic.Int32
		cfg := cfg
		cfg.RefreshToken = func(context.Context) (string, error) {
			refreshes.Add(1)
			return stale[1], nil
		}
		var kinds []EventKind
		err := Run(t.Context(), &cfg, newStore(t), func(e Event) { kinds = append(kinds, e.Kind) })
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("Run = %v, want *AuthError", err)
		}
		if refreshes.Load() != 1 || !ae.Refreshed || ae.Failure == nil || ae.Mechanism != "XOAUTH2" {
			t.Errorf("refreshes %d, AuthError %+v", refreshes.Load(), ae)
		}
		if len(kinds) != 1 || kinds[0] != EventAuthFailed {
			t.Errorf("events %v, want [auth_failed]", kinds)
		}
		t.Logf("error: %v", err)
	})
	t.Run("RefreshWorks", func(t *testing.T) {
		var refreshes atomic.Int32
		cfg := cfg
		cfg.RefreshToken = func(context.Context) (string, error) {
			refreshes.Add(1)
			return stack.Token(dovecotUser) // issued after the revocation
		}
		if _, err := SyncOnce(t.Context(), cfg, newStore(t)); err != nil {
			t.Fatal(err)
		}
		if refreshes.Load() != 1 {
			t.Errorf("%d refreshes, want 1", refreshes.Load())
		}
	})
}

func TestDovecotRestartMidSync(t *testing.T) {
	stack, cfg := startDovecot(t)
	const n = 2000
	if err := stack.Append(t.Context(), dovecotUser, "", "INBOX", rawMsgs("r", n)); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	var once sync.Once
	restarted := make(chan error, 1)
	st.hook = func(m *Message) error {
		if m.UID == 300 {
			// Dovecot stops while the second of ten FETCH commands streams,
			// and comes back a moment later.
			once.Do(func() {
				if err := stack.StopDovecot(); err != nil {
					restarted <- err
					return
				}
				go func() {
					time.Sleep(300 * time.Millisecond)
					restarted <- stack.StartDovecot(context.Background())
				}()
			})
		}
		return nil
	}
	r := startRun(t, cfg, st)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	st.waitFor(t, n, 30*time.Second)
	r.waitCount(t, EventConnected, 2)
	r.waitIdle(t)
	wantUIDs(t, st.uids(), seq(1, n)...)
	unique(t, st, n)
	t.Logf("recovered after %d error(s), %d connections", r.count(EventError), r.count(EventConnected))
}

func TestDovecotUIDValidityChange(t *testing.T) {
	stack, cfg := startDovecot(t)
	const n = 50
	if err := stack.Append(t.Context(), dovecotUser, "", "INBOX", rawMsgs("u", n)); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	if got, err := SyncOnce(t.Context(), cfg, st); err != nil || got != n {
		t.Fatalf("SyncOnce = %d, %v", got, err)
	}
	old := st.checkpoint("INBOX").UIDValidity
	uv, err := stack.RecreateFolder(t.Context(), dovecotUser, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if uv == old {
		t.Fatalf("RecreateFolder kept UIDVALIDITY %d", uv)
	}
	if got, err := SyncOnce(t.Context(), cfg, st); err != nil || got != n {
		t.Fatalf("SyncOnce after recreate = %d, %v; want %d (rescan)", got, err, n)
	}
	if st.resets != 1 || st.checkpoint("INBOX").UIDValidity != uv {
		t.Errorf("resets %d, checkpoint %+v, want uidvalidity %d", st.resets, st.checkpoint("INBOX"), uv)
	}
	unique(t, st, n) // the store's dedupe sees the same n messages
}

// TestDovecotThroughput measures a catch-up: messages already in the
// mailbox, fetched by SyncOnce into a store that reads every body.
func TestDovecotThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	stack, cfg := startDovecot(t)
	const n = 10000
	raws := make([][]byte, n)
	total := 0
	for i := range raws {
		m := testMsg{id: fmt.Sprintf("p%d", i), date: time.Now(), pad: 2000 + (i%10)*2000} // 2-20 KB
		raws[i] = m.raw()
		total += len(raws[i])
	}
	if err := stack.Append(t.Context(), dovecotUser, "", "INBOX", raws); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	st.handled, st.noBodies = nil, true
	began := time.Now()
	got, err := SyncOnce(t.Context(), cfg, st)
	d := time.Since(began)
	if err != nil || got != n {
		t.Fatalf("SyncOnce = %d, %v", got, err)
	}
	t.Logf("fetched %d messages (%.1f MB) in %v: %.0f msgs/s, %.1f MB/s",
		n, float64(total)/1e6, d.Round(time.Millisecond), float64(n)/d.Seconds(), float64(total)/1e6/d.Seconds())
}

// TestDovecotMechanisms signs in with every method and security mode
// against Dovecot with TLS.
func TestDovecotMechanisms(t *testing.T) {
	stack := mailtest.Start(t, mailtest.Options{TLS: true, PasswordUsers: map[string]string{"pw@example.com": "hunter2"}})
	token := func(context.Context) (string, error) { return stack.Token(dovecotUser) }
	password := func(context.Context) (string, error) { return "hunter2", nil }
	for _, tc := range []struct {
		auth     AuthMethod
		security Security
		user     string
	}{
		{AuthXOAuth2, SecurityTLS, dovecotUser},
		{AuthOAuthBearer, SecurityStartTLS, dovecotUser},
		{AuthOAuthBearer, SecurityTLS, dovecotUser},
		{AuthPlain, SecurityStartTLS, "pw@example.com"},
		{AuthLogin, SecurityTLS, "pw@example.com"},
	} {
		name := string(tc.auth) + "/" + string(tc.security)
		t.Run(name, func(t *testing.T) {
			if err := stack.Append(t.Context(), tc.user, "", "INBOX", rawMsgs(name, 1)); err != nil {
				t.Fatal(err)
			}
			addr := stack.IMAPAddr
			if tc.security == SecurityTLS {
				addr = stack.IMAPSAddr
			}
			cfg := Config{
				Addr: addr, Security: tc.security, TLSConfig: stack.TLSConfig(),
				Username: tc.user, Auth: tc.auth, Token: token, Password: password,
				InitialDays: 1, Logger: testLogger(t),
			}
			st := newStore(t)
			if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n < 1 {
				t.Fatalf("SyncOnce = %d, %v", n, err)
			}
		})
	}
}

// TestDovecotMoveCreatesFolder moves processed mail to a folder that does
// not exist yet: Dovecot answers NO [TRYCREATE], the folder is created.
func TestDovecotMoveCreatesFolder(t *testing.T) {
	stack, cfg := startDovecot(t)
	if err := stack.Append(t.Context(), dovecotUser, "", "INBOX", rawMsgs("m", 3)); err != nil {
		t.Fatal(err)
	}
	cfg.AfterProcessing, cfg.MoveTo = ActionMove, "Processed/Postdesk"
	st := newStore(t)
	if n, err := SyncOnce(t.Context(), cfg, st); err != nil || n != 3 {
		t.Fatalf("SyncOnce = %d, %v", n, err)
	}
	inbox, err := stack.Messages(t.Context(), dovecotUser, "INBOX")
	if err != nil || len(inbox) != 0 {
		t.Fatalf("INBOX has %d messages (%v), want 0", len(inbox), err)
	}
	moved, err := stack.Messages(t.Context(), dovecotUser, cfg.MoveTo)
	if err != nil || len(moved) != 3 {
		t.Fatalf("%s has %d messages (%v), want 3", cfg.MoveTo, len(moved), err)
	}
}
