package mailsync

import (
	"context"
	"sync"
	"testing"
	"time"
)

// 40 sessions starting at once (a boot, a takeover, the mail server back
// after a restart) log in at the pacer's rate, not together: at 100 per
// second, no more than about 10 in any 100 ms, the last about 0.4 s after
// the first.
func TestPacerSpreadsLogins(t *testing.T) {
	p := newPacer(100)
	const n = 40
	start := time.Now()
	at := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := p.wait(context.Background()); err != nil {
				t.Error(err)
			}
			at[i] = time.Since(start)
		})
	}
	wg.Wait()
	first, last := at[0], at[0]
	for _, d := range at {
		first, last = min(first, d), max(last, d)
	}
	if span := last - first; span < 350*time.Millisecond {
		t.Fatalf("%d logins spread over %s, want about %s", n, span, (n-1)*10*time.Millisecond)
	}
	for w := time.Duration(0); w < last; w += 50 * time.Millisecond {
		in := 0
		for _, d := range at {
			if d >= w && d < w+100*time.Millisecond {
				in++
			}
		}
		if in > 20 { // half of them: timers fire late on a loaded machine, never all at once
			t.Fatalf("%d logins within 100 ms from %s, want about 10 (at most 20)", in, w)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.wait(ctx); err == nil {
		t.Fatal("a cancelled wait returned nil")
	}
	if err := newPacer(-1).wait(context.Background()); err != nil {
		t.Fatalf("an unbounded pacer: %v", err)
	}
}
