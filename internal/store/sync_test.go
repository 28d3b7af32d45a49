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

		cp, err := db.Checkpoint(ctx, mbID, "INBOX")
		if err != nil || cp.UIDValidity != 0 {
			t.Fatalf("fresh checkpoint = %+v %v", cp, err)
		}
		write(func(tx *store.Tx) error {
			return tx.SetCheckpoint(ctx, store.Checkpoint{MailboxID: mbID, Folder: "INBOX", UIDValidity: 4000000000, LastUID: 10}, now)
		})
		// Never backwards under the same UIDVALIDITY.
		write(func(tx *store.Tx) error {
			return tx.SetCheckpoint(ctx, store.Checkpoint{MailboxID: mbID, Folder: "INBOX", UIDValidity: 4000000000, LastUID: 7}, now)
		})
		if cp, _ := db.Checkpoint(ctx, mbID, "INBOX"); cp.LastUID != 10 || cp.UIDValidity != 4000000000 {
			t.Fatalf("checkpoint moved backwards: %+v", cp)
		}
		write(func(tx *store.Tx) error { return tx.ResetCheckpoint(ctx, mbID, "INBOX", 5, now) })
		if cp, _ := db.Checkpoint(ctx, mbID, "INBOX"); cp.LastUID != 0 || cp.UIDValidity != 5 {
			t.Fatalf("reset checkpoint = %+v", cp)
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

		write(func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mbID, 3, now) })
		write(func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mbID, 2, now) })
		write(func(tx *store.Tx) error { return tx.CountSyncedMessages(ctx, mbID, 1, now.Add(24*time.Hour)) })
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
