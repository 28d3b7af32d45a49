package imapsync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
)

// runner runs Run in the background and records its events.
type runner struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once

	mu     sync.Mutex
	events []Event
	idling chan struct{} // receives on every EventIdling
}

func startRun(t *testing.T, cfg Config, st Store) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{cancel: cancel, done: make(chan error, 1), idling: make(chan struct{}, 100)}
	go func() {
		r.done <- Run(ctx, &cfg, st, func(e Event) {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
			if e.Kind == EventIdling {
				select {
				case r.idling <- struct{}{}:
				default:
				}
			}
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// waitIdle waits for the next idling event, then a little more: go-imap's
// in-memory server answers "+ idling" before it starts watching the
// mailbox, and does not report at IDLE start what changed before (Dovecot
// does).
func (r *runner) waitIdle(t *testing.T) {
	t.Helper()
	select {
	case <-r.idling:
		time.Sleep(20 * time.Millisecond)
	case <-time.After(10 * time.Second):
		t.Fatal("no idling event within 10s")
	}
}

// waitCount waits until n events of kind k happened.
func (r *runner) waitCount(t *testing.T, k EventKind, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.count(k) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events after 10s, want %d", r.count(k), k, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels Run and checks that it returns context.Canceled promptly.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
}

func (r *runner) count(k EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestIdleWakesOnNewMessage(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	ms.appendMsgs(t, "INBOX", msgs("a", 2, time.Hour))
	st := newStore(t)
	r := startRun(t, memConfig(t, ms), st)
	r.waitIdle(t)
	st.waitFor(t, 2, time.Second)

	for i := range 3 {
		began := time.Now()
		ms.appendMsgs(t, "INBOX", msgs("b", 1, 0))
		st.waitFor(t, 3+i, 2*time.Second)
		t.Logf("IDLE latency (in-memory server): %v", time.Since(began))
		r.waitIdle(t)
	}
	wantUIDs(t, st.uids(), seq(1, 5)...)
	if n := r.count(EventConnected); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	st.check()
}

func TestIdleRestart(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	st := newStore(t)
	cfg := memConfig(t, ms)
	cfg.IdleRestart = 50 * time.Millisecond
	r := startRun(t, cfg, st)
	for range 3 {
		r.waitIdle(t)
	}
	if n := r.count(EventConnected); n != 1 {
		t.Errorf("%d connections, want 1 (IDLE restarted on the same one)", n)
	}
	ms.appendMsgs(t, "INBOX", msgs("a", 1, 0))
	st.waitFor(t, 1, 2*time.Second)
}

// A server ending IDLE normally (BYE) is a reconnect, not an error; a
// connection cut without one still is.
func TestServerByeDuringIdleIsNoError(t *testing.T) {
	t.Parallel()
	for _, poll := range []bool{false, true} {
		ms := startMemServer(t)
		st := newStore(t)
		cfg := memConfig(t, ms)
		if poll {
			cfg.NoIdle, cfg.PollInterval = true, time.Hour
		}
		var logs logtest.Buffer
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := startRun(t, cfg, st)
		for i := range 3 {
			r.waitIdle(t)
			ms.bye("Session expired, please reconnect")
			r.waitCount(t, EventConnected, i+2)
		}
		r.waitIdle(t)
		if !poll { // still watching: new mail arrives at once
			ms.appendMsgs(t, "INBOX", msgs("a", 1, 0))
			st.waitFor(t, 1, 5*time.Second)
			r.waitIdle(t)
		}
		if n := r.count(EventError); n != 0 {
			t.Errorf("poll %v: %d error events for normal ends of the session", poll, n)
		}
		if got := logs.String(); strings.Contains(got, "level=WARN") || strings.Count(got, "imap server ended the session; reconnecting") != 3 {
			t.Errorf("poll %v: want three info lines and no warning, logs:\n%s", poll, got)
		}
		// Cut without a BYE: an error, as before.
		ms.cut()
		r.waitCount(t, EventError, 1)
	}
}

func TestPollMode(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	st := newStore(t)
	cfg := memConfig(t, ms)
	cfg.NoIdle = true
	cfg.PollInterval = 100 * time.Millisecond
	r := startRun(t, cfg, st)
	r.waitIdle(t)
	ms.appendMsgs(t, "INBOX", msgs("a", 2, 0))
	st.waitFor(t, 2, time.Second)
	ms.appendMsgs(t, "INBOX", msgs("b", 1, 0))
	st.waitFor(t, 3, time.Second)
	wantUIDs(t, st.uids(), 1, 2, 3)
}

func TestMultipleFolders(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	if err := ms.client(t).Create("Billing", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	cfg := memConfig(t, ms)
	cfg.Folders = []string{"INBOX", "Billing"}
	cfg.PollInterval = 100 * time.Millisecond
	r := startRun(t, cfg, st)
	r.waitIdle(t)
	ms.appendMsgs(t, "Billing", msgs("b", 1, 0)) // seen at the next poll
	ms.appendMsgs(t, "INBOX", msgs("a", 1, 0))   // seen by IDLE
	st.waitFor(t, 2, 2*time.Second)
	for _, f := range cfg.Folders {
		if cp := st.checkpoint(f); cp.LastUID != 1 {
			t.Errorf("%s checkpoint %+v", f, cp)
		}
	}
}

func TestServerClosesMidFetch(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	in := msgs("a", 20, time.Hour)
	for i := range in {
		in[i].pad = 1 << 20 // 20 MB: more than the socket buffers hold
	}
	ms.appendMsgs(t, "INBOX", in)
	st := newStore(t)
	var once sync.Once
	st.hook = func(m *Message) error {
		if m.UID == 3 {
			once.Do(ms.cut) // the server goes away while streaming
		}
		return nil
	}
	r := startRun(t, memConfig(t, ms), st)
	st.waitFor(t, 20, 10*time.Second)
	r.waitCount(t, EventConnected, 2)
	r.waitCount(t, EventError, 1)
	wantUIDs(t, st.uids(), seq(1, 20)...)
	st.check()
}

func TestHandleErrorRetriedByRun(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	ms.appendMsgs(t, "INBOX", msgs("a", 5, time.Hour))
	st := newStore(t)
	fails := 0
	st.hook = func(m *Message) error {
		if m.UID == 3 && fails < 2 {
			fails++
			return errors.New("disk full")
		}
		return nil
	}
	r := startRun(t, memConfig(t, ms), st)
	st.waitFor(t, 5, 5*time.Second)
	wantUIDs(t, st.uids(), seq(1, 5)...)
	if n := r.count(EventError); n != 2 {
		t.Errorf("%d error events, want 2", n)
	}
	st.check()
}

func TestCancelStopsIdle(t *testing.T) {
	t.Parallel()
	ms := startMemServer(t)
	r := startRun(t, memConfig(t, ms), newStore(t))
	r.waitIdle(t)
	began := time.Now()
	r.stop(t)
	if d := time.Since(began); d > time.Second {
		t.Errorf("stop took %v", d)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	cfg := memConfig(t, &memServer{addr: "127.0.0.1:1"}) // nothing listens
	cfg.BackoffMin, cfg.BackoffMax = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() { errs <- Run(ctx, &cfg, newStore(t), nil) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
}
