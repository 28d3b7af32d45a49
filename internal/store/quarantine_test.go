package store_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A quarantine row stores whatever the failed message's error and file
// name hold (NUL, invalid UTF-8, any length) on both databases; the same
// source quarantined again is one row with one more attempt; resolving and
// failed retries move its state.
func TestQuarantineRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		var mb store.Mailbox
		hostile := "parse: \x00 bad \xff\xfe value " + strings.Repeat("é", 3000)
		q := store.Quarantined{Origin: store.OriginImport, SourceName: "mail/\xffweird\x00.eml", RawSHA256: storetest.PutBlob(t, db, "quarantined source"),
			RawSize: 10, Error: hostile, ReceivedAt: now, CreatedAt: now}
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
				return err
			}
			q.MailboxID = mb.ID
			return tx.Quarantine(ctx, &q)
		})
		if err != nil {
			t.Fatalf("quarantine with a hostile error text: %v", err)
		}
		got, err := db.QuarantinedMessage(ctx, q.ID)
		if err != nil || got.State != store.QuarantineOpen || got.Attempts != 1 || !utf8.ValidString(got.Error) ||
			strings.ContainsRune(got.Error, 0) || len(got.Error) > 2010 || !strings.HasPrefix(got.Error, "parse:  bad") || !got.ReceivedAt.Equal(now) {
			t.Fatalf("stored row = %+v, %v", got, err)
		}
		again := q
		again.ID, again.Error = 0, "second failure"
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.Quarantine(ctx, &again) }); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.CountQuarantined(ctx, mb.ID); n != 1 || again.ID != q.ID {
			t.Fatalf("quarantined again: %d rows, id %d (first %d)", n, again.ID, q.ID)
		}
		// Told once, for the new row, not for the repeat.
		events, err := db.EventsSince(ctx, 0, 10)
		if err != nil || len(events) != 1 || events[0].Kind != store.EventMessageQuarantined || events[0].MailboxID != mb.ID ||
			events[0].Data["quarantine_id"] != float64(q.ID) || events[0].Data["origin"] != store.OriginImport {
			t.Fatalf("events = %+v, %v; want one message.quarantined", events, err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.RetryFailed(ctx, q.ID, "third", now) }); err != nil {
			t.Fatal(err)
		}
		got, _ = db.QuarantinedMessage(ctx, q.ID)
		if got.State != store.QuarantineRetried || got.Attempts != 3 || got.Error != "third" {
			t.Fatalf("after a failed retry: %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.ResolveQuarantined(ctx, q.ID, 42, now) }); err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.ResolveQuarantined(ctx, q.ID, 43, now) })
		if err != store.ErrNotFound {
			t.Fatalf("resolving twice: %v, want ErrNotFound", err)
		}
		got, _ = db.QuarantinedMessage(ctx, q.ID)
		if got.State != store.QuarantineResolved || got.MessageID != 42 || got.ResolvedAt.IsZero() || got.Open() {
			t.Fatalf("resolved row = %+v", got)
		}
		if open, _ := db.QuarantinedMessages(ctx, store.QuarantineFilter{}); len(open) != 0 {
			t.Fatalf("open rows after resolving: %+v", open)
		}
		if all, _ := db.QuarantinedMessages(ctx, store.QuarantineFilter{All: true}); len(all) != 1 {
			t.Fatalf("all rows: %+v", all)
		}
		// One unread notice per mailbox and kind.
		for i := 0; i < 3; i++ {
			n := store.Notice{MailboxID: mb.ID, Kind: store.NoticeQuarantined, Message: strings.Repeat("x", i+1), CreatedAt: now}
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.PutUnreadNotice(ctx, &n) }); err != nil {
				t.Fatal(err)
			}
		}
		list, _ := db.Notices(ctx, store.NoticeFilter{MailboxID: mb.ID, UnreadOnly: true})
		if len(list) != 1 || list[0].Message != "xxx" {
			t.Fatalf("notices = %+v", list)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.ReadNotices(ctx, mb.ID, store.NoticeQuarantined, now) }); err != nil {
			t.Fatal(err)
		}
		if list, _ := db.Notices(ctx, store.NoticeFilter{MailboxID: mb.ID, UnreadOnly: true}); len(list) != 0 {
			t.Fatalf("notices after reading = %+v", list)
		}
	})
}

// Transient tells a database that cannot work now from one that refuses
// the values, on both databases.
func TestTransient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		storetest.PoisonTrigger(t, db)
		var mb store.Mailbox
		if err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			mb, err = tx.CreateMailbox(ctx, "support@example.com", "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		insert := func(ctx context.Context, subject string) error {
			return db.Write(ctx, func(tx *store.Tx) error {
				return tx.InsertMessage(ctx, &store.Message{MailboxID: mb.ID, Direction: "in", Kind: store.KindEmail,
					DedupeKey: "mid:" + subject, Subject: subject})
			})
		}
		if err := insert(ctx, "fine"); err != nil {
			t.Fatal(err)
		}
		refused := insert(ctx, "poison")
		conflict := insert(ctx, "fine")
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		gone := insert(cancelled, "later")
		for _, c := range []struct {
			name string
			err  error
			want bool
		}{{"refused by a trigger", refused, false}, {"unique conflict", conflict, false}, {"cancelled", gone, true}, {"nil", nil, false}} {
			if (c.err == nil) != (c.name == "nil") {
				t.Fatalf("%s: err = %v", c.name, c.err)
			}
			if got := db.Transient(c.err); got != c.want {
				t.Errorf("Transient(%s: %v) = %v, want %v", c.name, c.err, got, c.want)
			}
		}
	})
}
