package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestRefreshLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		var mb store.Mailbox
		if err := db.Write(ctx, func(tx *store.Tx) (err error) {
			mb, err = tx.CreateMailbox(ctx, "support@example.com", "Support")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		claim := func(owner string, at time.Time) store.RefreshClaim {
			t.Helper()
			var c store.RefreshClaim
			if err := db.Write(ctx, func(tx *store.Tx) (err error) {
				c, err = tx.ClaimRefresh(ctx, mb.ID, owner, at, at.Add(time.Minute))
				return err
			}); err != nil {
				t.Fatalf("claim by %s: %v", owner, err)
			}
			return c
		}
		release := func(owner string) {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseRefresh(ctx, mb.ID, owner) }); err != nil {
				t.Fatal(err)
			}
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.ClaimRefresh(ctx, mb.ID, "a", now, now.Add(time.Minute))
			return err
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("claim without an authorization: %v, want ErrNotFound", err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.PutMailboxAuth(ctx, store.MailboxAuth{MailboxID: mb.ID, Kind: store.AuthOAuth, RefreshTokenSealed: "v1:x:rt"})
		}); err != nil {
			t.Fatal(err)
		}
		if c := claim("a", now); !c.Claimed {
			t.Fatalf("first claim refused: %+v", c)
		}
		if c := claim("b", now.Add(30*time.Second)); c.Claimed || c.Owner != "a" || !c.Until.Equal(now.Add(time.Minute)) {
			t.Fatalf("claim over a live lease: %+v, want held by a until %v", c, now.Add(time.Minute))
		}
		release("b") // not b's: changes nothing
		if c := claim("b", now.Add(30*time.Second)); c.Claimed {
			t.Fatal("a release by another owner freed the lease")
		}
		release("a")
		if c := claim("b", now.Add(30*time.Second)); !c.Claimed {
			t.Fatalf("claim after release refused: %+v", c)
		}
		// b dies holding it: the lease lapses.
		if c := claim("a", now.Add(91*time.Second)); !c.Claimed {
			t.Fatalf("claim over a lapsed lease refused: %+v", c)
		}
		release("a")

		// Racing claims: exactly one wins.
		var wg sync.WaitGroup
		won := make([]bool, 8)
		for i := range won {
			wg.Go(func() {
				_ = db.Write(ctx, func(tx *store.Tx) error {
					c, err := tx.ClaimRefresh(ctx, mb.ID, string(rune('a'+i)), now.Add(time.Hour), now.Add(time.Hour+time.Minute))
					won[i] = c.Claimed
					return err
				})
			})
		}
		wg.Wait()
		n := 0
		for _, w := range won {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d of %d racing claims won, want 1", n, len(won))
		}
	})
}
