package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestMailboxActivityAndSignature(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mb store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support"); err != nil {
				return err
			}
			return tx.SetMailboxSignature(ctx, mb.ID, "-- \nThe support team")
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Mailbox(ctx, mb.ID); got.Signature != "-- \nThe support team" || got.Removed() {
			t.Fatalf("mailbox = %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetMailboxSignature(ctx, mb.ID+9, "x") }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("signature of a missing mailbox: %v", err)
		}
		at := time.Date(2026, 3, 6, 9, 40, 0, 0, time.UTC)
		for i := range store.MaxActivity + 5 {
			a := store.Activity{MailboxID: mb.ID, Kind: store.ActivityFetch, Message: fmt.Sprintf("fetched %d", i), Count: i, CreatedAt: at.Add(time.Duration(i) * time.Second)}
			if err := db.RecordMailboxActivity(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		catchUp := store.Activity{MailboxID: mb.ID, Kind: store.ActivityCatchUp, Message: "caught up", Count: 312,
			From: at.Add(-72 * time.Hour), To: at, CreatedAt: at.Add(time.Hour)}
		if err := db.RecordMailboxActivity(ctx, catchUp); err != nil {
			t.Fatal(err)
		}
		list, err := db.MailboxActivity(ctx, mb.ID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != store.MaxActivity {
			t.Fatalf("%d activity rows kept, want %d", len(list), store.MaxActivity)
		}
		if got := list[0]; got.Kind != store.ActivityCatchUp || got.Count != 312 || !got.From.Equal(catchUp.From) || !got.To.Equal(at) || !got.CreatedAt.Equal(catchUp.CreatedAt) {
			t.Fatalf("newest = %+v", got)
		}
		if list[1].Message != fmt.Sprintf("fetched %d", store.MaxActivity+4) {
			t.Fatalf("second = %+v", list[1])
		}

		// A mailbox with a ticket is kept, marked removed, when removed; and restored.
		var deleted bool
		err = db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Hi", RequesterAddress: "c@example.net", CreatedAt: at}); err != nil {
				return err
			}
			deleted, err = tx.RemoveMailbox(ctx, mb.ID)
			return err
		})
		if err != nil || deleted {
			t.Fatalf("remove: deleted %v, %v", deleted, err)
		}
		if got, err := db.Mailbox(ctx, mb.ID); err != nil || !got.Removed() {
			t.Fatalf("after remove: %+v %v", got, err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.RestoreMailbox(ctx, mb.ID, "Back") }); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Mailbox(ctx, mb.ID); err != nil || got.Removed() || got.Name != "Back" {
			t.Fatalf("after restore: %+v %v", got, err)
		}
	})
}

// Batches committed close together are one activity entry; one whose
// oldest message waited (a catch-up after an outage or a pause) makes it a
// catch-up covering the arrival times of every batch in it.
func TestFetchActivityRecordsCatchUps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mb store.Mailbox
		if err := db.Write(ctx, func(tx *store.Tx) (err error) {
			mb, err = tx.CreateMailbox(ctx, "catchup@example.com", "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		count := func(f store.Fetched, now time.Time) {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mb.ID, f, now) }); err != nil {
				t.Fatal(err)
			}
		}
		newest := func() store.Activity {
			t.Helper()
			list, err := db.MailboxActivity(ctx, mb.ID, 1)
			if err != nil || len(list) != 1 {
				t.Fatalf("activity: %v, %v", list, err)
			}
			return list[0]
		}
		now := time.Date(2026, 3, 6, 9, 40, 0, 0, time.UTC)
		// Fresh mail: a fetch.
		count(store.Fetched{Count: 2, From: now.Add(-time.Second), To: now}, now)
		if a := newest(); a.Kind != store.ActivityFetch || a.Count != 2 {
			t.Fatalf("fresh mail: %+v", a)
		}
		// An hour later, mail that waited three days arrives in two batches:
		// one catch-up entry covering both.
		later := now.Add(time.Hour)
		from, to := now.Add(-72*time.Hour), now.Add(-time.Minute)
		count(store.Fetched{Count: 64, From: from.Add(time.Hour), To: to}, later)
		count(store.Fetched{Count: 248, From: from, To: from.Add(2 * time.Hour)}, later.Add(time.Second))
		a := newest()
		if a.Kind != store.ActivityCatchUp || a.Count != 312 || !a.From.Equal(from) || !a.To.Equal(to) {
			t.Fatalf("catch-up = %+v; want 312 messages from %s to %s", a, from, to)
		}
		// Fresh mail within the window joins it, without narrowing it.
		count(store.Fetched{Count: 1, From: later, To: later}, later.Add(2*time.Second))
		if a := newest(); a.Kind != store.ActivityCatchUp || a.Count != 313 || !a.From.Equal(from) || !a.To.Equal(later) {
			t.Fatalf("after fresh mail = %+v", a)
		}
	})
}
