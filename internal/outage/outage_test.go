package outage

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
)

// A database out of reach for 150 rounds of a second is three lines, not
// 150: when it starts, a minute later, when it ends; and a new outage
// starts over.
func TestOutageLoggedWhenItStartsGoesOnAndEnds(t *testing.T) {
	var buf logtest.Buffer
	o := New(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, "sync round")
	clock := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return clock }
	down := errors.New("connection refused")
	o.Done() // nothing to end
	for range 150 {
		o.Failed(down)
		clock = clock.Add(time.Second)
	}
	o.Done()
	o.Failed(down)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="sync round failed" err="connection refused"`,
		`level=WARN msg="sync round still failing" for=1m0s failures=61 err="connection refused"`,
		`level=WARN msg="sync round still failing" for=2m0s failures=121 err="connection refused"`,
		`level=INFO msg="sync round works again" after=2m30s failures=150`,
		`level=WARN msg="sync round failed" err="connection refused"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant %s", i, lines[i], w)
		}
	}
}
