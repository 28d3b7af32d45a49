package msgraph_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/msgraph"
)

// syncer is the smallest fetcher a caller would write: delta rounds, MIME
// by 8 goroutines (the Client keeps 4 in flight), dedupe by id and
// Message-ID, a bounded resync after KindSyncReset.
type syncer struct {
	c      *msgraph.Client
	cursor string
	newest time.Time
	mu     sync.Mutex
	got    map[string]int // Message-ID -> times ingested
	ids    map[string]bool
	resync int
}

func (s *syncer) round(t *testing.T, between func(page int)) {
	t.Helper()
	ctx := context.Background()
	link, fresh := s.cursor, false
	for page := 0; ; page++ {
		var p *msgraph.DeltaPage
		var err error
		if fresh {
			// Bounded by what was seen, with a margin: replays are deduped.
			p, err = s.c.DeltaSince(ctx, "inbox", s.newest.Add(-time.Hour), 25)
			fresh = false
		} else {
			p, err = s.c.Delta(ctx, "inbox", link, 25)
		}
		var e *msgraph.Error
		if errors.As(err, &e) && e.Kind == msgraph.KindSyncReset {
			s.resync++
			fresh = true
			continue
		}
		if err != nil {
			t.Fatalf("delta page %d: %v", page, err)
		}
		var wg sync.WaitGroup
		work := make(chan msgraph.DeltaItem)
		for range 8 {
			wg.Go(func() {
				for it := range work {
					s.ingest(t, it)
				}
			})
		}
		for _, it := range p.Items {
			if it.ReceivedDateTime.After(s.newest) {
				s.newest = it.ReceivedDateTime
			}
			if !it.Removed {
				work <- it
			}
		}
		close(work)
		wg.Wait()
		if between != nil {
			between(page)
		}
		if p.DeltaLink != "" {
			s.cursor = p.DeltaLink
			return
		}
		link = p.NextLink
	}
}

func (s *syncer) ingest(t *testing.T, it msgraph.DeltaItem) {
	s.mu.Lock()
	if s.ids[it.ID] {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	rc, err := s.c.MIME(context.Background(), it.ID)
	var e *msgraph.Error
	if errors.As(err, &e) && e.Kind == msgraph.KindNotFound {
		return // removed meanwhile
	}
	if err != nil {
		t.Errorf("mime %s: %v", it.ID, err)
		return
	}
	defer rc.Close()
	msg, err := mail.ReadMessage(rc)
	if err != nil {
		t.Errorf("parse %s: %v", it.ID, err)
		return
	}
	io.Copy(io.Discard, msg.Body)
	id := msg.Header.Get("Message-ID")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ids[it.ID] {
		s.ids[it.ID] = true
		s.got[id]++ // the ingest path would dedupe by Message-ID; here we count
	}
}

// TestDeltaUnderFaultsEveryMessageOnce: 300 messages, more arriving and
// some removed mid-round, replays, a 410 mid-round, 429 storms with and
// without Retry-After and 503s: every message is fetched once, never more
// than 4 requests are in flight, and a later round is quiet.
func TestDeltaUnderFaultsEveryMessageOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, sl := w.client(t, customer)
	w.g.SetLatency(time.Millisecond)
	want := map[string]bool{}
	count := 0
	deliver := func(n int, at time.Time) []string {
		var ids []string
		for range n {
			mid := fmt.Sprintf("<m%d@example.org>", count)
			count++
			want[mid] = true
			ids = append(ids, w.g.DeliverAt(customer, "inbox", mime("x@example.org", customer, "s", mid), at))
		}
		return ids
	}
	old := deliver(300, time.Now().Add(-48*time.Hour))
	s := &syncer{c: c, got: map[string]int{}, ids: map[string]bool{}}
	s.round(t, func(page int) {
		switch page {
		case 1:
			w.g.Replay(customer, 2)
			w.g.Throttle(customer, fakegraph.OpAny, 3, "2")
		case 3:
			w.g.Throttle(customer, fakegraph.OpDelta, 4, "")
			w.g.Unavailable(customer, fakegraph.OpMIME, 3)
			deliver(10, time.Now())
		case 5:
			w.g.ResetDelta(customer) // 410 on the next page: resync
		case 7:
			w.g.Remove(customer, old[299])
			delete(want, "<m299@example.org>")
		}
	})
	if s.resync != 1 {
		t.Fatalf("resyncs: %d, want 1", s.resync)
	}
	deliver(5, time.Now())
	s.round(t, nil)
	before := len(s.ids)
	s.round(t, nil)
	if len(s.ids) != before {
		t.Error("a quiet round fetched messages")
	}
	// The removed one may have been fetched before it was removed.
	delete(s.got, "<m299@example.org>")
	for mid := range want {
		if s.got[mid] != 1 {
			t.Errorf("%s ingested %d times", mid, s.got[mid])
		}
	}
	if len(s.got) != len(want) {
		t.Errorf("ingested %d distinct, want %d", len(s.got), len(want))
	}
	peak := w.g.MaxInFlightSeen(customer)
	t.Logf("%d messages, %d back-off waits %v, peak in flight %d, %d requests", len(want), len(sl.all()), short(sl.all()), peak, w.g.Requests())
	if peak > 4 {
		t.Fatalf("peak %d in flight", peak)
	}
}

func short(d []time.Duration) string {
	var b strings.Builder
	for _, x := range d {
		fmt.Fprintf(&b, "%.1fs ", x.Seconds())
	}
	return strings.TrimSpace(b.String())
}
