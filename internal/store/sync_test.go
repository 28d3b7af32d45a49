package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestSyncCheckpointsLeasesAndStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		var mbID int64
		write := func(fn func(tx *store.Tx) error) {
			t.Helper()
			if err := db.Write(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		write(func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "support@example.com", "")
			mbID = mb.ID
			if err != nil {
				return err
			}
			return tx.PutMailboxServer(ctx, store.MailboxServer{MailboxID: mb.ID, IMAPHost: "127.0.0.1", IMAPPort: 143,
				IMAPSecurity: "none", AuthMethod: "xoauth2", Folders: []string{"INBOX", "Support/Escalations"}, InitialDays: 14, MaxAgeDays: 90, Enabled: true})
		})
		srv, err := db.MailboxServer(ctx, mbID)
		if err != nil || len(srv.Folders) != 2 || srv.AfterProcessing != "leave" || !srv.Enabled {
			t.Fatalf("server settings = %+v, %v", srv, err)
		}
		if ids, err := db.SyncedMailboxIDs(ctx); err != nil || len(ids) != 1 {
			t.Fatalf("synced ids = %v %v", ids, err)
		}

		if c, err := db.SyncCursor(ctx, mbID, "INBOX"); err != nil || c != "" {
			t.Fatalf("fresh cursor = %q %v", c, err)
		}
		write(func(tx *store.Tx) error { return tx.SetSyncCursor(ctx, mbID, "INBOX", "imap:4000000000:10", now) })
		write(func(tx *store.Tx) error { return tx.SetSyncCursor(ctx, mbID, "Support/Escalations", "imap:5:1", now) })
		write(func(tx *store.Tx) error { return tx.SetSyncCursor(ctx, mbID, "INBOX", "imap:4000000000:11", now) })
		if c, _ := db.SyncCursor(ctx, mbID, "INBOX"); c != "imap:4000000000:11" {
			t.Fatalf("cursor = %q", c)
		}
		if c, _ := db.SyncCursor(ctx, mbID, "Support/Escalations"); c != "imap:5:1" {
			t.Fatalf("second folder's cursor = %q", c)
		}

		lease := func(owner string, at time.Time) bool {
			var ok bool
			write(func(tx *store.Tx) error {
				var err error
				ok, err = tx.AcquireLease(ctx, mbID, owner, at, at.Add(30*time.Second))
				return err
			})
			return ok
		}
		if !lease("a", now) || lease("b", now.Add(10*time.Second)) || !lease("a", now.Add(20*time.Second)) {
			t.Fatal("a lease is exclusive while live and renewable by its owner")
		}
		if !lease("b", now.Add(51*time.Second)) {
			t.Fatal("an expired lease is taken over")
		}
		if owner, _ := db.LeaseOwner(ctx, mbID, now.Add(52*time.Second)); owner != "b" {
			t.Fatalf("owner = %q", owner)
		}

		write(func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mbID, store.Fetched{Count: 3}, now) })
		write(func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mbID, store.Fetched{Count: 2}, now) })
		write(func(tx *store.Tx) error {
			return tx.CountSyncedMessages(ctx, mbID, store.Fetched{Count: 1}, now.Add(24*time.Hour))
		})
		st, err := db.SyncStatus(ctx, mbID)
		if err != nil || st.MessagesDay != 1 || st.Day != "2026-11-30" {
			t.Fatalf("status = %+v %v", st, err)
		}
	})
}

func TestSyncHeartbeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		beat := func(owner string, at time.Time) int {
			t.Helper()
			var live int
			if err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				live, err = tx.Heartbeat(ctx, owner, at, at.Add(-30*time.Second))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return live
		}
		if beat("a", now) != 1 || beat("b", now.Add(time.Second)) != 2 || beat("a", now.Add(5*time.Second)) != 2 {
			t.Fatal("two live processes are two")
		}
		// b stops beating: after 30 s it no longer counts.
		if live := beat("a", now.Add(40*time.Second)); live != 1 {
			t.Fatalf("live = %d after b went quiet, want 1", live)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.RemoveHeartbeat(ctx, "a") }); err != nil {
			t.Fatal(err)
		}
		if live := beat("c", now.Add(41*time.Second)); live != 1 {
			t.Fatalf("live = %d after a left, want 1", live)
		}
	})
}
