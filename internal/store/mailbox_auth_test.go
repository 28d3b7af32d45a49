package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestMailboxAuthRoundTrip(t *testing.T) {
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
		if _, err := db.MailboxAuth(ctx, mb.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no row: err = %v, want ErrNotFound", err)
		}
		zero := time.Duration(0)
		for _, maxAge := range []*time.Duration{nil, &zero} {
			want := store.MailboxAuth{MailboxID: mb.ID, Address: mb.Address, Kind: store.AuthOAuth, Provider: "microsoft",
				Account: "delegate@example.com", RefreshTokenSealed: "v1:x:rt", AccessTokenSealed: "v1:x:at",
				AccessExpiresAt: now.Add(time.Hour), AuthorizedAt: now, LastRefreshAt: now, ExpiresAt: now.Add(90 * 24 * time.Hour),
				ReauthMaxAge: maxAge, State: store.AuthOK, WarnedState: store.AuthOK, UpdatedAt: now}
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.PutMailboxAuth(ctx, want) }); err != nil {
				t.Fatal(err)
			}
			got, err := db.MailboxAuth(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			if (got.ReauthMaxAge == nil) != (maxAge == nil) || (maxAge != nil && *got.ReauthMaxAge != *maxAge) {
				t.Errorf("max age = %v, want %v", got.ReauthMaxAge, maxAge)
			}
			got.ReauthMaxAge, want.ReauthMaxAge = nil, nil
			if got != want {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		}
		// Compare-and-swap on the refresh token.
		var saved, stale bool
		err := db.Write(ctx, func(tx *store.Tx) (err error) {
			t2 := store.RefreshedTokens{RefreshTokenSealed: "v1:x:rt2", AccessTokenSealed: "v1:x:at2", RefreshedAt: now.Add(time.Hour), ExpiresAt: now.Add(91 * 24 * time.Hour)}
			if saved, err = tx.SaveRefreshedTokens(ctx, mb.ID, "v1:x:rt", t2); err != nil {
				return err
			}
			stale, err = tx.SaveRefreshedTokens(ctx, mb.ID, "v1:x:rt", t2)
			return err
		})
		if err != nil || !saved || stale {
			t.Fatalf("save refreshed = %v then %v, %v; want true then false", saved, stale, err)
		}
		if got, _ := db.MailboxAuth(ctx, mb.ID); got.RefreshTokenSealed != "v1:x:rt2" || !got.LastRefreshAt.Equal(now.Add(time.Hour)) {
			t.Errorf("after refresh: %+v", got)
		}
		if all, err := db.MailboxAuths(ctx, store.AuthOAuth); err != nil || len(all) != 1 {
			t.Errorf("oauth mailboxes = %d, %v", len(all), err)
		}
		if all, err := db.MailboxAuths(ctx, store.AuthPassword); err != nil || len(all) != 0 {
			t.Errorf("password mailboxes = %d, %v", len(all), err)
		}
	})
}

func TestNoticesAndOAuthStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		var mb store.Mailbox
		var n store.Notice
		err := db.Write(ctx, func(tx *store.Tx) (err error) {
			if mb, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
				return err
			}
			n = store.Notice{MailboxID: mb.ID, Kind: "expiring", Message: "soon", CreatedAt: now}
			if err := tx.AddNotice(ctx, &n); err != nil {
				return err
			}
			return tx.CreateOAuthState(ctx, store.OAuthState{StateHash: "h1", MailboxID: mb.ID, SessionID: 7, Provider: "microsoft",
				VerifierSealed: "v1:x:v", Nonce: "n", AllowAddressChange: true, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)})
		})
		if err != nil {
			t.Fatal(err)
		}
		list, err := db.Notices(ctx, store.NoticeFilter{UnreadOnly: true})
		if err != nil || len(list) != 1 || list[0].Message != "soon" || list[0].MailboxID != mb.ID {
			t.Fatalf("notices = %+v, %v", list, err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.MarkNoticeRead(ctx, n.ID, now) }); err != nil {
			t.Fatal(err)
		}
		if list, _ := db.Notices(ctx, store.NoticeFilter{UnreadOnly: true}); len(list) != 0 {
			t.Errorf("unread after marking read: %d", len(list))
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.MarkNoticeRead(ctx, 9999, now) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("mark unknown notice: %v", err)
		}
		st, err := db.OAuthState(ctx, "h1")
		if err != nil || !st.AllowAddressChange || st.SessionID != 7 || !st.UsedAt.IsZero() {
			t.Fatalf("state = %+v, %v", st, err)
		}
		var first, second bool
		err = db.Write(ctx, func(tx *store.Tx) (err error) {
			if first, err = tx.UseOAuthState(ctx, "h1", now); err != nil {
				return err
			}
			second, err = tx.UseOAuthState(ctx, "h1", now)
			return err
		})
		if err != nil || !first || second {
			t.Fatalf("use state = %v then %v, %v; want true then false", first, second, err)
		}
		var deleted int64
		if err := db.Write(ctx, func(tx *store.Tx) (err error) {
			deleted, err = tx.DeleteOAuthStatesBefore(ctx, now.Add(time.Hour))
			return err
		}); err != nil || deleted != 1 {
			t.Errorf("delete old states = %d, %v", deleted, err)
		}
	})
}
