// Package outage logs a failure that repeats, such as every round of a
// loop while the database is out of reach: once when it starts, once a
// minute while it lasts (with how long and how often), and once when it
// ends, instead of a line at every round.
package outage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// every is how often a failure that goes on is logged again.
const every = time.Minute

// Log follows one repeating operation's failures. It is safe for
// concurrent use.
type Log struct {
	log   *slog.Logger
	level slog.Level
	what  string
	now   func() time.Time

	mu       sync.Mutex
	since    time.Time // when the current outage began; zero when none
	logged   time.Time // when it was last logged
	failures int
}

// New follows the operation what ("sync round", "outbox sweep"), logging
// its failures at level and its recovery at Info.
func New(log *slog.Logger, level slog.Level, what string) *Log {
	return &Log{log: log, level: level, what: what, now: time.Now}
}

// Failed records a failure: logged if it is the first of an outage, or
// the first for every (a minute).
func (o *Log) Failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.failures++
	switch {
	case o.since.IsZero():
		o.since, o.logged = now, now
		o.log.Log(context.Background(), o.level, o.what+" failed", "err", err)
	case now.Sub(o.logged) >= every:
		o.logged = now
		o.log.Log(context.Background(), o.level, o.what+" still failing", "for", now.Sub(o.since).Round(time.Second).String(),
			"failures", o.failures, "err", err)
	}
}

// Done records a success: the end of an outage, if there was one, is logged.
func (o *Log) Done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	o.log.Info(o.what+" works again", "after", o.now().Sub(o.since).Round(time.Second).String(), "failures", o.failures)
	o.since, o.failures = time.Time{}, 0
}
