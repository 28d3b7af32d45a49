package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// sent queues n messages and records them sent, copy asking for a copy in
// Sent; it returns their ids, oldest first.
func (f *outboxFixture) sent(t *testing.T, first, n int, copy bool) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i := range n {
		ids = append(ids, f.queue(t, first+i, rcpt))
	}
	f.write(t, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbox(ctx, f.mb.ID, "w1", f.now, f.now.Add(time.Minute)); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.BeginAttempt(ctx, id, "w1", f.now); err != nil {
				return err
			}
			if err := tx.MarkSent(ctx, id, f.now, copy); err != nil {
				return err
			}
		}
		return tx.ReleaseOutbox(ctx, f.mb.ID, "w1")
	})
	return ids
}

// pending lists the ids of the mailbox's copies due at now, paging by limit.
func (f *outboxFixture) pending(t *testing.T, now time.Time, limit int) []int64 {
	t.Helper()
	var ids []int64
	var after int64
	for pages := 0; ; pages++ {
		items, err := f.db.PendingCopies(context.Background(), f.mb.ID, after, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > limit {
			t.Fatalf("page of %d copies, limit %d", len(items), limit)
		}
		if len(items) == 0 {
			return ids
		}
		for _, it := range items {
			if it.State != store.DeliverySent || !it.CopyPending {
				t.Fatalf("pending copy %+v", it)
			}
			ids = append(ids, it.ID)
		}
		after = items[len(items)-1].ID
	}
}

func TestPendingCopiesPageAndTriesAreBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newOutboxFixture(t, db)
		noCopy := f.sent(t, 1, 2, false)
		ids := f.sent(t, 10, 7, true)
		f.queue(t, 30, rcpt) // queued, not sent: no copy yet

		if got := f.pending(t, f.now, 3); !equalIDs(got, ids) {
			t.Fatalf("pending copies = %v, want %v (oldest first, without %v)", got, ids, noCopy)
		}
		has := func(at time.Time) bool {
			t.Helper()
			ok, err := db.HasOutboxWork(ctx, f.mb.ID, at)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		dueMailboxes := func(at time.Time) int {
			t.Helper()
			due, err := db.DueOutboxMailboxes(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			return len(due)
		}

		// Two appended; one failed: it counts a try, every other due copy waits.
		f.write(t, func(tx *store.Tx) error { return tx.MarkCopied(ctx, ids[0], ids[1]) })
		retry := f.now.Add(time.Minute)
		var gaveUp int
		f.write(t, func(tx *store.Tx) (err error) {
			gaveUp, err = tx.CopyFailed(ctx, f.mb.ID, ids[2], f.now, retry, 3)
			return err
		})
		if gaveUp != 0 {
			t.Fatalf("gave up %d copies after one try", gaveUp)
		}
		if o := f.item(t, ids[2]); o.CopyAttempts != 1 || !o.CopyPending {
			t.Fatalf("failed copy: %+v", o)
		}
		if o := f.item(t, ids[3]); o.CopyAttempts != 0 || !o.CopyPending {
			t.Fatalf("copy not tried: %+v", o)
		}
		if got := f.pending(t, f.now, 3); len(got) != 0 {
			t.Fatalf("copies due before the retry time: %v", got)
		}
		// The queued message is the mailbox's only work now; once it is
		// gone the copies are due again at the retry time, not before.
		f.write(t, func(tx *store.Tx) error {
			_, err := tx.HoldQueued(ctx, f.mb.ID, f.now)
			return err
		})
		if has(f.now) || dueMailboxes(f.now) != 0 {
			t.Error("work before the copies' retry time")
		}
		if !has(retry) || dueMailboxes(retry) != 1 {
			t.Error("no work at the copies' retry time")
		}
		if got := f.pending(t, retry, 3); !equalIDs(got, ids[2:]) {
			t.Fatalf("pending at the retry time = %v, want %v", got, ids[2:])
		}

		// The folder could not be opened, twice: every due copy counts a
		// try; the one tried before is given up at its third.
		at := retry
		for try := 2; try <= 3; try++ {
			next := at.Add(time.Minute)
			f.write(t, func(tx *store.Tx) (err error) {
				gaveUp, err = tx.CopyFailed(ctx, f.mb.ID, 0, at, next, 3)
				return err
			})
			want := 0
			if try == 3 {
				want = 1
			}
			if gaveUp != want {
				t.Fatalf("try %d: gave up %d, want %d", try, gaveUp, want)
			}
			at = next
		}
		if o := f.item(t, ids[2]); o.CopyAttempts != 3 || o.CopyPending || o.State != store.DeliverySent {
			t.Fatalf("copy given up: %+v", o)
		}
		if o := f.item(t, ids[3]); o.CopyAttempts != 2 || !o.CopyPending {
			t.Fatalf("copy tried twice: %+v", o)
		}
		if got := f.pending(t, at, 100); !equalIDs(got, ids[3:]) {
			t.Fatalf("pending = %v, want %v", got, ids[3:])
		}
		f.write(t, func(tx *store.Tx) error { return tx.MarkCopied(ctx, ids[3:]...) })
		if has(at) || dueMailboxes(at) != 0 || len(f.pending(t, at, 100)) != 0 {
			t.Error("work left after every copy was kept or given up")
		}
	})
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
