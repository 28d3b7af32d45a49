package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const testPassword = "correct horse battery"

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Free: 5, Base: 2 * time.Second, Max: time.Minute, Window: time.Hour}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {4, 0}, {5, 2 * time.Second}, {6, 4 * time.Second}, {9, 32 * time.Second},
		{10, time.Minute}, {11, time.Minute}, {500, time.Minute},
	} {
		if got := b.Delay(tc.failures); got != tc.want {
			t.Errorf("Delay(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		t    store.Throttle
		want time.Duration
	}{
		{"under the allowance", store.Throttle{Failures: 4, LastFailedAt: now}, 0},
		{"just failed", store.Throttle{Failures: 9, LastFailedAt: now.Add(-2 * time.Second)}, 30 * time.Second},
		{"waited long enough", store.Throttle{Failures: 9, LastFailedAt: now.Add(-32 * time.Second)}, 0},
		{"forgotten after the window", store.Throttle{Failures: 50, LastFailedAt: now.Add(-61 * time.Minute)}, 0},
	} {
		if got := b.Wait(tc.t, now); got != tc.want {
			t.Errorf("%s: Wait = %s, want %s", tc.name, got, tc.want)
		}
	}
	// A window shorter than the longest delay is stretched to it.
	if w := (Backoff{Max: time.Hour, Window: time.Minute}).withDefaults(DefaultLimits().Account).Window; w != time.Hour {
		t.Errorf("window = %s, want the maximum delay", w)
	}
}

func TestHashLimiter(t *testing.T) {
	t.Parallel()
	l := NewHashLimiter(2, 50*time.Millisecond)
	ctx := context.Background()
	r1, err1 := l.Acquire(ctx)
	r2, err2 := l.Acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatalf("free slots refused: %v %v", err1, err2)
	}
	began := time.Now()
	if _, err := l.Acquire(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("third at once: err = %v, want ErrBusy", err)
	}
	if waited := time.Since(began); waited < 50*time.Millisecond {
		t.Errorf("gave up after %s, before the wait", waited)
	}
	// A slot freed while waiting is taken.
	go func() { time.Sleep(10 * time.Millisecond); r1() }()
	r3, err := l.Acquire(ctx)
	if err != nil {
		t.Fatalf("slot freed during the wait: %v", err)
	}
	// A cancelled caller stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewHashLimiter(1, time.Hour).blocked(t).Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	r2()
	r3()
	// Never more than n at once, however many ask.
	var mu sync.Mutex
	in, peak := 0, 0
	var wg sync.WaitGroup
	l = NewHashLimiter(3, time.Minute)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			in++
			peak = max(peak, in)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			in--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	if peak != 3 {
		t.Errorf("peak concurrency %d, want 3", peak)
	}
}

// blocked returns l with its only slot taken for the rest of the test.
func (l *HashLimiter) blocked(t *testing.T) *HashLimiter {
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return l
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newLimitedService(t *testing.T, db *store.DB, limits Limits) (*Service, *clock) {
	t.Helper()
	if _, _, err := CreateUser(context.Background(), db, "ada@example.com", "Ada", store.RoleAgent, testPassword); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	return NewService(Options{DB: db, Limits: limits, Now: c.Now}), c
}

func throttled(t *testing.T, err error, kind string, wait time.Duration) {
	t.Helper()
	var te *ThrottledError
	if !errors.As(err, &te) || te.Kind != kind || te.RetryAfter != wait {
		t.Fatalf("err = %v, want a %s back-off of %s", err, kind, wait)
	}
}

func TestLoginBacksOffPerAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Hashing is slow under the race detector: a smaller allowance
		// (the web tests use the default 5).
		s, clk := newLimitedService(t, db, Limits{Account: Backoff{Free: 3}})
		for i := range 3 {
			if _, _, _, err := s.Login(ctx, "Ada@Example.com", "wrong password", "", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		// The 4th, at once, is refused before any hashing, even with the right password.
		_, _, _, err := s.Login(ctx, "ada@example.com", testPassword, "", "192.0.2.2")
		throttled(t, err, store.ThrottleAccount, 2*time.Second)
		// An unknown email is treated the same: nothing tells it apart.
		for range 3 {
			s.Login(ctx, "nobody@example.com", "wrong password", "", "192.0.2.3")
		}
		_, _, _, err = s.Login(ctx, "nobody@example.com", "wrong password", "", "192.0.2.3")
		throttled(t, err, store.ThrottleAccount, 2*time.Second)

		// After the wait, one more wrong password doubles it...
		clk.Add(2 * time.Second)
		if _, _, _, err := s.Login(ctx, "ada@example.com", "still wrong", "", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("after the back-off: %v", err)
		}
		_, _, _, err = s.Login(ctx, "ada@example.com", testPassword, "", "192.0.2.1")
		throttled(t, err, store.ThrottleAccount, 4*time.Second)
		lockouts, err := s.Lockouts(ctx)
		if err != nil || len(lockouts) == 0 || lockouts[0].Subject != "ada@example.com" || lockouts[0].Failures != 4 || lockouts[0].Wait != 4*time.Second {
			t.Fatalf("lockouts = %+v, %v", lockouts, err)
		}
		// ...and the right password works once it has passed, clearing the account.
		clk.Add(4 * time.Second)
		if _, _, u, err := s.Login(ctx, "ada@example.com", testPassword, "", "192.0.2.1"); err != nil || u.Email != "ada@example.com" {
			t.Fatalf("right password after the back-off: %v", err)
		}
		lockouts, err = s.Lockouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lockouts {
			if l.Subject == "ada@example.com" {
				t.Fatalf("after a success the account's failures remain: %+v", l)
			}
		}
		for range 3 {
			s.Login(ctx, "ada@example.com", "wrong again", "", "192.0.2.9")
		}
		// An admin clears a lockout.
		if found, err := s.Unlock(ctx, store.ThrottleAccount, " ADA@example.com"); err != nil || !found {
			t.Fatalf("unlock: %v %v", found, err)
		}
		if _, _, _, err := s.Login(ctx, "ada@example.com", testPassword, "", "192.0.2.9"); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

func TestLoginBacksOffPerIP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, clk := newLimitedService(t, db, Limits{IP: Backoff{Free: 3, Base: time.Second, Max: 4 * time.Second}})
		emails := []string{"a@x.example", "b@x.example", "c@x.example", "d@x.example"}
		for _, e := range emails[:3] {
			if _, _, _, err := s.Login(ctx, e, "guess", "", "198.51.100.7"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		_, _, _, err := s.Login(ctx, emails[3], "guess", "", "198.51.100.7")
		throttled(t, err, store.ThrottleIP, time.Second)
		// Another address is not held back.
		if _, _, _, err := s.Login(ctx, "ada@example.com", testPassword, "", "198.51.100.8"); err != nil {
			t.Fatal(err)
		}
		// The delay doubles, up to its cap.
		for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
			clk.Add(4 * time.Second)
			if _, _, _, err := s.Login(ctx, emails[i], "guess", "", "198.51.100.7"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
			_, _, _, err = s.Login(ctx, emails[3], "guess", "", "198.51.100.7")
			throttled(t, err, store.ThrottleIP, want)
		}
		if found, err := s.Unlock(ctx, store.ThrottleIP, "198.51.100.7"); err != nil || !found {
			t.Fatalf("unlock ip: %v %v", found, err)
		}
		if _, _, _, err := s.Login(ctx, "ada@example.com", testPassword, "", "198.51.100.7"); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

// Parallel guesses cannot slip past the count: each attempt is counted
// before it is hashed, under a row lock.
func TestParallelGuessesAreCountedFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newLimitedService(t, db, Limits{HashConcurrency: 2, HashWait: time.Minute})
		var mu sync.Mutex
		outcomes := map[string]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, _, err := s.Login(ctx, "ada@example.com", "wrong password", "", "")
				var te *ThrottledError
				key := "other"
				switch {
				case errors.Is(err, ErrInvalidCredentials):
					key = "checked"
				case errors.As(err, &te):
					key = "throttled"
				default:
					t.Errorf("unexpected: %v", err)
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if outcomes["checked"] != 5 || outcomes["throttled"] != 15 {
			t.Fatalf("outcomes = %v, want 5 checked and 15 throttled", outcomes)
		}
	})
}

// A sign-in that found no hashing slot is not a failure.
func TestBusyIsNotAFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newLimitedService(t, db, Limits{HashConcurrency: 1, HashWait: 20 * time.Millisecond})
		s.hashes.blocked(t)
		for range 8 {
			if _, _, _, err := s.Login(ctx, "ada@example.com", testPassword, "", "203.0.113.5"); !errors.Is(err, ErrBusy) {
				t.Fatalf("err = %v, want ErrBusy", err)
			}
		}
		if l, err := s.Lockouts(ctx); err != nil || len(l) != 0 {
			t.Fatalf("busy attempts were counted: %+v %v", l, err)
		}
	})
}
