package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Two processes' sync locks on one PostgreSQL: a mailbox's lock has one
// holder; when the holder's lock connection dies (the server terminates
// it, as it does when a killed process's socket closes), the other process
// counts one syncer less and takes the lock at once; once it has claimed
// the lease row, a commit fenced by the former holder fails with
// ErrLeaseLost.
func TestSyncLocksTakeover(t *testing.T) {
	ctx := context.Background()
	url := storetest.NewPostgresDatabase(t)
	open := func() *store.DB {
		db, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), DatabaseURL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbA := open()
	if _, err := dbA.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dbB := open()
	var ids []int64
	err := dbA.Write(ctx, func(tx *store.Tx) error {
		for _, a := range []string{"one@example.com", "two@example.com", "three@example.com"} {
			mb, err := tx.CreateMailbox(ctx, a, "")
			if err != nil {
				return err
			}
			ids = append(ids, mb.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := dbA.OpenSyncLocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := dbB.OpenSyncLocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	beat := func(l *store.SyncLocks, owner string) int {
		t.Helper()
		live, err := l.Heartbeat(ctx, owner, now, now.Add(-30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	beat(a, "a")
	if live := beat(b, "b"); live != 2 {
		t.Fatalf("live syncers = %d, want 2", live)
	}

	// a takes two of three (the limit stops it), b the rest.
	got, err := a.TryLock(ctx, ids, 2)
	if err != nil || !slices.Equal(got, ids[:2]) {
		t.Fatalf("a took %v (%v), want %v", got, err, ids[:2])
	}
	if got, _ := a.TryLock(ctx, ids[:2], 2); len(got) != 0 {
		t.Fatalf("a took %v again: a held lock is not taken twice", got)
	}
	got, err = b.TryLock(ctx, ids, 3)
	if err != nil || !slices.Equal(got, ids[2:]) {
		t.Fatalf("b took %v (%v), want %v", got, err, ids[2:])
	}
	claim := func(db *store.DB, owner string, ids []int64) {
		t.Helper()
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.ClaimLeases(ctx, ids, owner, now.Add(30*time.Second)) }); err != nil {
			t.Fatal(err)
		}
	}
	claim(dbA, "a", ids[:2])
	claim(dbB, "b", ids[2:])
	if err := dbA.Write(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, ids[0], "a") }); err != nil {
		t.Fatalf("a's commit on its own mailbox: %v", err)
	}

	// a unlocks one; b takes it.
	if err := a.Unlock(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.TryLock(ctx, ids, 3); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("b took %v after a unlocked %d", got, ids[1])
	}

	// a's lock connection dies: its lock is free for b at once, and a
	// counts as gone.
	var pid int
	if err := dbB.SQL().QueryRowContext(ctx, `SELECT backend_pid FROM sync_processes WHERE owner = 'a'`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := dbB.SQL().ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		got, err := b.TryLock(ctx, ids, 3)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, ids[:1]) {
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("b could not take a's lock within 5 s of a's connection ending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("b took a's lock %s after a's connection was terminated", time.Since(killed).Round(time.Millisecond))
	if live := beat(b, "b"); live != 1 {
		t.Fatalf("live syncers = %d after a's connection died, want 1", live)
	}
	if _, err := a.Heartbeat(ctx, "a", now, now.Add(-time.Minute)); !errors.Is(err, store.ErrLocksLost) {
		t.Fatalf("a's heartbeat on its dead connection: %v, want ErrLocksLost", err)
	}

	// a's commit still in flight holds its lease row: b's claim waits for
	// it; after b's claim, a's next commit is refused.
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	commitA := make(chan error, 1)
	go func() {
		commitA <- dbA.Write(ctx, func(tx *store.Tx) error {
			if err := tx.CheckLease(ctx, ids[0], "a"); err != nil {
				return err
			}
			close(inFlight)
			<-finish
			return nil
		})
	}()
	<-inFlight
	claimed := make(chan struct{})
	go func() { claim(dbB, "b", ids[:1]); close(claimed) }()
	select {
	case <-claimed:
		t.Fatal("b claimed the lease while a's fenced commit was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	close(finish)
	if err := <-commitA; err != nil {
		t.Fatalf("a's in-flight commit: %v", err)
	}
	<-claimed
	err = dbA.Write(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, ids[0], "a") })
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a's commit after b's claim: %v, want ErrLeaseLost", err)
	}

	// a reopens: a fresh connection holding nothing, alive again.
	if err := a.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.TryLock(ctx, ids, 3); len(got) != 0 {
		t.Fatalf("a took %v while b holds all", got)
	}
	if live := beat(a, "a"); live != 2 {
		t.Fatalf("live syncers = %d after a reopened, want 2", live)
	}
}

// The lease rows: one statement renews all of an owner's leases, and
// LeasedBy lists them; the fence refuses a mailbox with no lease.
func TestSyncLeaseBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
		var ids []int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			for _, a := range []string{"one@example.com", "two@example.com", "three@example.com"} {
				mb, err := tx.CreateMailbox(ctx, a, "")
				if err != nil {
					return err
				}
				ids = append(ids, mb.ID)
				if err := tx.PutMailboxServer(ctx, store.MailboxServer{MailboxID: mb.ID, IMAPHost: "127.0.0.1", IMAPPort: 143,
					IMAPSecurity: "none", AuthMethod: "plain", Enabled: true}); err != nil {
					return err
				}
			}
			if err := tx.SetMailboxPassword(ctx, ids[0], "one", "sealed", now); err != nil {
				return err
			}
			if err := tx.SetMailboxAuthKind(ctx, ids[1], store.AuthOAuth, "microsoft", now); err != nil {
				return err
			}
			if _, err := tx.AcquireLease(ctx, ids[0], "a", now, now.Add(30*time.Second)); err != nil {
				return err
			}
			if _, err := tx.AcquireLease(ctx, ids[1], "a", now, now.Add(30*time.Second)); err != nil {
				return err
			}
			_, err := tx.AcquireLease(ctx, ids[2], "b", now, now.Add(30*time.Second))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		cands, err := db.SyncCandidates(ctx)
		if err != nil || len(cands) != 3 {
			t.Fatalf("candidates %+v, %v", cands, err)
		}
		for i, want := range []store.Usability{store.Usable, store.UnusableNotConnected, store.UnusableNoSignIn} {
			if u := cands[i].Usability(true); u != want {
				t.Fatalf("candidate %d usability %s, want %s", i, u, want)
			}
		}
		var n int64
		err = db.Write(ctx, func(tx *store.Tx) error {
			n, err = tx.RenewLeases(ctx, "a", now.Add(time.Minute))
			return err
		})
		if err != nil || n != 2 {
			t.Fatalf("renewed %d (%v), want 2", n, err)
		}
		if owner, _ := db.LeaseOwner(ctx, ids[0], now.Add(50*time.Second)); owner != "a" {
			t.Fatalf("owner after renewal = %q", owner)
		}
		if mine, _ := db.LeasedBy(ctx, "a"); !slices.Equal(slices.Sorted(slices.Values(mine)), ids[:2]) {
			t.Fatalf("leased by a: %v", mine)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, ids[2], "a") }); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("fence on b's mailbox: %v", err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseLease(ctx, ids[2], "b") })
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, ids[2], "b") }); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("fence on a released mailbox: %v", err)
		}
	})
}
