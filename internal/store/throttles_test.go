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

func TestThrottles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		if th, err := db.Throttle(ctx, store.ThrottleIP, "192.0.2.1"); err != nil || th.Failures != 0 || !th.LastFailedAt.IsZero() {
			t.Fatalf("missing throttle = %+v, %v", th, err)
		}
		// Increments under the row lock never lose one, on either database.
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := db.Write(ctx, func(tx *store.Tx) error {
					th, err := tx.LockThrottle(ctx, store.ThrottleAccount, "ada@example.com")
					if err != nil {
						return err
					}
					th.Failures++
					th.LastFailedAt = now
					return tx.PutThrottle(ctx, th)
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		th, err := db.Throttle(ctx, store.ThrottleAccount, "ada@example.com")
		if err != nil || th.Failures != 20 || !th.LastFailedAt.Equal(now) {
			t.Fatalf("after 20 concurrent increments: %+v, %v", th, err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			return tx.PutThrottle(ctx, store.Throttle{Kind: store.ThrottleIP, Subject: "192.0.2.1", Failures: 3, LastFailedAt: now.Add(-2 * time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
		all, err := db.Throttles(ctx)
		if err != nil || len(all) != 2 || all[0].Subject != "ada@example.com" || all[1].Kind != store.ThrottleIP {
			t.Fatalf("throttles = %+v, %v", all, err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			n, err := tx.DeleteStaleThrottles(ctx, now.Add(-time.Hour))
			if n != 1 {
				t.Errorf("removed %d stale throttles, want 1", n)
			}
			if err != nil {
				return err
			}
			// No failures left: the row goes.
			return tx.PutThrottle(ctx, store.Throttle{Kind: store.ThrottleAccount, Subject: "ada@example.com"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if all, err := db.Throttles(ctx); err != nil || len(all) != 0 {
			t.Fatalf("throttles left = %+v, %v", all, err)
		}
	})
}

func TestAPIKeyExpiryAndRevocation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		var u store.User
		keys := []store.APIKey{
			{Name: "forever", Prefix: "pdk_aaaaaa", KeyHash: "h1", CreatedAt: now},
			{Name: "ninety days", Prefix: "pdk_bbbbbb", KeyHash: "h2", CreatedAt: now, ExpiresAt: now.AddDate(0, 0, 90)},
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if u, err = tx.CreateUser(ctx, store.User{Email: "ada@example.com", Role: store.RoleAgent, PasswordHash: "-"}); err != nil {
				return err
			}
			for i := range keys {
				keys[i].UserID = u.ID
				if err := tx.CreateAPIKey(ctx, &keys[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := db.APIKeyByHash(ctx, "h2")
		if err != nil || !k.ExpiresAt.Equal(now.AddDate(0, 0, 90)) || k.Expired(now) || !k.Expired(now.AddDate(0, 0, 90)) {
			t.Fatalf("expiring key = %+v, %v", k, err)
		}
		if k, _, _ := db.APIKeyByHash(ctx, "h1"); !k.ExpiresAt.IsZero() || k.Expired(now.AddDate(100, 0, 0)) {
			t.Fatalf("key without expiry = %+v", k)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.RevokeAPIKey(ctx, keys[0].ID, now) })
		if err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.RevokeAPIKey(ctx, keys[0].ID, now) })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke twice: %v", err)
		}
		list, err := db.APIKeysByUser(ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].Name != "ninety days" {
			t.Fatalf("keys = %+v, %v", list, err)
		}
		if k, err := db.APIKey(ctx, keys[0].ID); err != nil || !k.RevokedAt.Equal(now) {
			t.Fatalf("revoked key = %+v, %v", k, err)
		}
	})
}
