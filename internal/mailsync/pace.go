package mailsync

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// pacer spreads a process's session starts and connection attempts: each
// caller reserves the next free slot (one per gap) and waits for a random
// moment within it. 5,000 mailboxes starting at once, or reconnecting
// after the mail server restarted, log in at most 1/gap per second instead
// of all in the same instant.
type pacer struct {
	gap  time.Duration
	mu   sync.Mutex
	next time.Time
}

// newPacer paces to rate per second; rate <= 0 does not pace.
func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{gap: time.Duration(float64(time.Second) / rate)}
}

// wait returns at the caller's moment, or with ctx's error.
func (p *pacer) wait(ctx context.Context) error {
	if p.gap <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.gap)
	p.mu.Unlock()
	at = at.Add(rand.N(p.gap))
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
