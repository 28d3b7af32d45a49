package notification

import (
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

func TestPickSender(t *testing.T) {
	mbs := func(ids ...int64) []store.Mailbox {
		var out []store.Mailbox
		for _, id := range ids {
			out = append(out, store.Mailbox{ID: id})
		}
		return out
	}
	for _, c := range []struct {
		name       string
		healthy    []store.Mailbox
		prefer     []int64
		avoid      int64
		lastResort bool
		want       int64 // 0: none
	}{
		{"the broken one is never chosen", mbs(1, 2, 3), nil, 1, false, 2},
		{"lowest id otherwise", mbs(2, 3), nil, 0, false, 2},
		{"preferred when healthy", mbs(1, 2, 3), []int64{0, 3, 2}, 0, false, 3},
		{"preferred but broken: the next", mbs(1, 2, 3), []int64{1}, 1, false, 2},
		{"preferred but not healthy: lowest", mbs(2, 3), []int64{7}, 0, false, 2},
		{"only the broken one is healthy: none", mbs(1), nil, 1, false, 0},
		{"an expiring one may send about itself as a last resort", mbs(1), nil, 1, true, 1},
		{"but another healthy one first", mbs(1, 4), nil, 1, true, 4},
		{"none healthy", nil, []int64{1}, 0, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := pickSender(c.healthy, c.prefer, c.avoid, c.lastResort)
			if ok != (c.want != 0) || got.ID != c.want {
				t.Errorf("pickSender = %d, %v; want %d", got.ID, ok, c.want)
			}
		})
	}
}

func TestDueReminder(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	leads := []time.Duration{3 * 24 * time.Hour, 24 * time.Hour}
	st := func(left time.Duration, mod func(*oauth.Status)) oauth.Status {
		s := oauth.Status{MailboxID: 1, Kind: store.AuthOAuth, State: store.AuthExpiring, Deadline: now.Add(left)}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	for _, c := range []struct {
		name    string
		st      oauth.Status
		lead    time.Duration // 0: none due
		covered int
	}{
		{"10 days left: the first warning only", st(10*24*time.Hour, nil), 0, 0},
		{"3 days and a minute left: not yet", st(3*24*time.Hour+time.Minute, nil), 0, 0},
		{"exactly 3 days left", st(3*24*time.Hour, nil), 3 * 24 * time.Hour, 0},
		{"2 days left", st(48*time.Hour, nil), 3 * 24 * time.Hour, 0},
		{"20 hours left: the 1-day one, the 3-day one covered", st(20*time.Hour, nil), 24 * time.Hour, 1},
		{"past the deadline", st(-time.Hour, nil), 0, 0},
		{"overdue", st(time.Hour, func(s *oauth.Status) { s.Overdue = true }), 0, 0},
		{"needs reauthentication already", st(time.Hour, func(s *oauth.Status) { s.State = store.AuthNeedsReauth }), 0, 0},
		{"a password mailbox", st(time.Hour, func(s *oauth.Status) { s.Kind = store.AuthPassword }), 0, 0},
		{"no deadline", st(0, func(s *oauth.Status) { s.Deadline = time.Time{} }), 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ok := dueReminder(c.st, now, leads)
			if ok != (c.lead != 0) || r.lead != c.lead || len(r.covered) != c.covered {
				t.Errorf("dueReminder = %+v, %v; want lead %v, %d covered", r, ok, c.lead, c.covered)
			}
		})
	}
	if leadDays(3*24*time.Hour) != 3 || leadDays(24*time.Hour) != 1 {
		t.Error("leadDays")
	}
}
