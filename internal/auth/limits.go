package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// ErrBusy is returned by Login when no password-hashing slot came free in
// Limits.HashWait: the sign-in was not checked and should be retried soon.
var ErrBusy = errors.New("too many sign-ins are being checked at once")

// ThrottledError is returned by Login when the account or the client IP
// has failed too often and must wait; no password was checked.
type ThrottledError struct {
	Kind       string        // store.ThrottleAccount or store.ThrottleIP
	RetryAfter time.Duration // how long until an attempt is accepted again
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins for this %s: retry in %s", e.Kind, e.RetryAfter.Round(time.Second))
}

// Limits bound the cost of sign-ins. Zero fields take DefaultLimits' values.
type Limits struct {
	// HashConcurrency is how many passwords are checked at once. Each check
	// takes 64 MiB, so this bounds that memory at HashConcurrency × 64 MiB
	// live (about twice that with the garbage collector's headroom).
	HashConcurrency int
	// HashWait is how long a sign-in waits for a hashing slot before ErrBusy.
	HashWait time.Duration
	// Account and IP are the back-off of one email and of one client IP.
	Account, IP Backoff
}

// Backoff is an exponential back-off after failed sign-ins: Free failures
// cost nothing; after them every attempt must wait Base, 2×Base, 4×Base…
// (at most Max) after the last failure. Failures are forgotten Window
// after the last one.
type Backoff struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Window time.Duration
}

// DefaultLimits are the limits of a Service whose Limits fields are zero.
// The per-IP allowance is larger than the per-account one: several agents
// behind one office address mistype too.
func DefaultLimits() Limits {
	return Limits{
		// Each argon2id check runs on 2 threads, so two at once fill 4
		// processors; more would mostly add memory. Go's collector lets
		// the heap grow to about twice what is live, so a flood's peak is
		// near 2 × 2 × 64 MiB beside the rest of the server (measured: 300
		// to 360 MB RSS under 200 concurrent sign-ins).
		HashConcurrency: min(runtime.NumCPU(), 2),
		HashWait:        2 * time.Second,
		Account:         Backoff{Free: 5, Base: 2 * time.Second, Max: 15 * time.Minute, Window: time.Hour},
		IP:              Backoff{Free: 10, Base: 2 * time.Second, Max: 15 * time.Minute, Window: time.Hour},
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.HashConcurrency <= 0 {
		l.HashConcurrency = d.HashConcurrency
	}
	if l.HashWait <= 0 {
		l.HashWait = d.HashWait
	}
	l.Account = l.Account.withDefaults(d.Account)
	l.IP = l.IP.withDefaults(d.IP)
	return l
}

func (b Backoff) withDefaults(d Backoff) Backoff {
	if b.Free <= 0 {
		b.Free = d.Free
	}
	if b.Base <= 0 {
		b.Base = d.Base
	}
	if b.Max <= 0 {
		b.Max = d.Max
	}
	if b.Window <= 0 {
		b.Window = d.Window
	}
	b.Window = max(b.Window, b.Max) // a back-off is never forgotten before it ends
	return b
}

// Delay is how long after the last of failures an attempt must wait.
func (b Backoff) Delay(failures int) time.Duration {
	if failures < b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// current is t with its failures forgotten when the window has passed.
func (b Backoff) current(t store.Throttle, now time.Time) store.Throttle {
	if t.Failures > 0 && now.Sub(t.LastFailedAt) > b.Window {
		t.Failures = 0
	}
	return t
}

// Wait is how long an attempt at now must still wait under t (0: none).
func (b Backoff) Wait(t store.Throttle, now time.Time) time.Duration {
	t = b.current(t, now)
	if t.Failures == 0 {
		return 0
	}
	return max(0, t.LastFailedAt.Add(b.Delay(t.Failures)).Sub(now))
}

// attempt is a sign-in counted as a failure until it is known not to be one.
type attempt struct {
	account, ip string           // throttle subjects; ip may be empty
	counted     []store.Throttle // the throttles with this attempt counted
}

// failed logs the back-off a failed attempt started or lengthened, naming
// the account as typed (never the password).
func (s *Service) failed(att attempt) {
	for _, t := range att.counted {
		if b := s.limits.backoff(t.Kind); t.Failures >= b.Free {
			s.log.Warn("sign-in back-off", "kind", t.Kind, "subject", t.Subject, "failures", t.Failures,
				"wait_s", int(b.Delay(t.Failures).Seconds()))
		}
	}
}

// accountSubject is how an email is counted: as typed, normalised like
// the users table, whether or not a user has it.
func accountSubject(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// precheck refuses, with a read only, a sign-in whose account or IP must
// wait; beginAttempt checks again under the row locks.
func (s *Service) precheck(ctx context.Context, email, ip string) error {
	now := s.now().UTC()
	var refused *ThrottledError
	subjects := [][2]string{{store.ThrottleAccount, accountSubject(email)}, {store.ThrottleIP, ip}}
	for _, ks := range subjects {
		if ks[1] == "" {
			continue
		}
		t, err := s.db.Throttle(ctx, ks[0], ks[1])
		if err != nil {
			return fmt.Errorf("sign in: read throttle: %w", err)
		}
		if w := s.limits.backoff(t.Kind).Wait(t, now); w > 0 && (refused == nil || w > refused.RetryAfter) {
			refused = &ThrottledError{Kind: t.Kind, RetryAfter: w}
		}
	}
	if refused != nil {
		return s.refuse(refused, ip)
	}
	return nil
}

func (s *Service) refuse(e *ThrottledError, ip string) error {
	s.log.Info("sign-in refused: back-off", "kind", e.Kind, "ip", ip, "retry_after_s", int((e.RetryAfter+time.Second-1)/time.Second))
	return e
}

// beginAttempt refuses a sign-in that must wait, or counts it as a failure
// of its account and IP, in one transaction.
func (s *Service) beginAttempt(ctx context.Context, email, ip string) (attempt, error) {
	att := attempt{account: accountSubject(email), ip: ip}
	now := s.now().UTC()
	var refused *ThrottledError
	var counted []store.Throttle
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		refused, counted = nil, nil
		// Always the account first: one lock order, no deadlock.
		acc, err := tx.LockThrottle(ctx, store.ThrottleAccount, att.account)
		if err != nil {
			return err
		}
		next := []store.Throttle{acc}
		if att.ip != "" {
			t, err := tx.LockThrottle(ctx, store.ThrottleIP, att.ip)
			if err != nil {
				return err
			}
			next = append(next, t)
		}
		for i, t := range next {
			b := s.limits.backoff(t.Kind)
			if w := b.Wait(t, now); w > 0 && (refused == nil || w > refused.RetryAfter) {
				refused = &ThrottledError{Kind: t.Kind, RetryAfter: w}
			}
			next[i] = b.current(t, now)
			next[i].Failures++
			next[i].LastFailedAt = now
		}
		if refused != nil {
			return nil // a refused attempt costs nothing and counts nothing
		}
		for _, t := range next {
			if err := tx.PutThrottle(ctx, t); err != nil {
				return err
			}
		}
		counted = next
		return nil
	})
	if err != nil {
		return attempt{}, fmt.Errorf("sign in: count attempt: %w", err)
	}
	if refused != nil {
		return attempt{}, s.refuse(refused, ip)
	}
	att.counted = counted
	s.pruneThrottles(ctx, now)
	return att, nil
}

// endAttempt takes back the failure beginAttempt counted, for a sign-in
// that succeeded (which also clears the account's failures) or that was
// never judged (busy, or an internal error).
func (s *Service) endAttempt(ctx context.Context, att attempt, succeeded bool) {
	ctx = context.WithoutCancel(ctx)
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if succeeded {
			if _, err := tx.DeleteThrottle(ctx, store.ThrottleAccount, att.account); err != nil {
				return err
			}
		} else if err := uncount(ctx, tx, store.ThrottleAccount, att.account); err != nil {
			return err
		}
		if att.ip == "" {
			return nil
		}
		return uncount(ctx, tx, store.ThrottleIP, att.ip)
	})
	if err != nil {
		s.log.Error("sign-in: could not take back a counted attempt", "err", err)
	}
}

func uncount(ctx context.Context, tx *store.Tx, kind, subject string) error {
	t, err := tx.LockThrottle(ctx, kind, subject)
	if err != nil {
		return err
	}
	t.Failures--
	return tx.PutThrottle(ctx, t)
}

// pruneThrottles removes, at most every ten minutes, throttles whose
// failures are forgotten, so a flood of made-up emails leaves no rows.
func (s *Service) pruneThrottles(ctx context.Context, now time.Time) {
	last := s.lastPrune.Load()
	if now.UnixMilli()-last < (10*time.Minute).Milliseconds() || !s.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	cutoff := now.Add(-max(s.limits.Account.Window, s.limits.IP.Window))
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteStaleThrottles(ctx, cutoff)
		return err
	})
	if err != nil {
		s.log.Warn("sign-in: could not remove stale throttles", "err", err)
	}
}

func (l Limits) backoff(kind string) Backoff {
	if kind == store.ThrottleIP {
		return l.IP
	}
	return l.Account
}

// Lockout is an account or IP with failed sign-ins, as admins see it.
type Lockout struct {
	store.Throttle
	// Wait is how long the next attempt must still wait (0: it may sign in).
	Wait time.Duration
}

// Lockouts lists every account and IP with failed sign-ins not yet forgotten.
func (s *Service) Lockouts(ctx context.Context) ([]Lockout, error) {
	ts, err := s.db.Throttles(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Lockout
	for _, t := range ts {
		b := s.limits.backoff(t.Kind)
		if b.current(t, now).Failures == 0 {
			continue
		}
		out = append(out, Lockout{Throttle: t, Wait: b.Wait(t, now)})
	}
	return out, nil
}

// Unlock forgets the failed sign-ins of an account (kind
// store.ThrottleAccount, subject an email) or an IP, and reports whether
// there were any.
func (s *Service) Unlock(ctx context.Context, kind, subject string) (bool, error) {
	if kind == store.ThrottleAccount {
		subject = accountSubject(subject)
	}
	var found bool
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		found, err = tx.DeleteThrottle(ctx, kind, subject)
		return err
	})
	return found, err
}

// HashLimiter bounds how many password hashes run at once.
type HashLimiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewHashLimiter allows n hashes at once; a caller waits at most wait for
// a slot.
func NewHashLimiter(n int, wait time.Duration) *HashLimiter {
	return &HashLimiter{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

// Acquire takes a slot, waiting at most the limiter's wait (ErrBusy after
// it) or until ctx ends. Call release once when the hash is done.
func (l *HashLimiter) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-l.slots }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
