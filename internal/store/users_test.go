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

func TestUserProfileRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)
		var u store.User
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			u, err = tx.CreateUser(ctx, store.User{Email: "Ann@Example.com", Name: "Ann", Role: store.RoleAgent, PasswordHash: "h"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The schema's defaults: answers and assignments, not every new ticket; UTC; never signed in.
		if got.Notify != store.DefaultNotify || got.TimeZone != "" || !got.LastSignInAt.IsZero() || got.State() != store.UserActive {
			t.Fatalf("new user = %+v", got)
		}
		if u.Notify != got.Notify {
			t.Errorf("CreateUser returned notify %+v, stored %+v", u.Notify, got.Notify)
		}
		want := store.NotifyChoices{NewTicket: true, CustomerReply: false, Assigned: true}
		err = db.Write(ctx, func(tx *store.Tx) error {
			for _, f := range []func() error{
				func() error { return tx.SetUserName(ctx, u.ID, "Ann Smith") },
				func() error { return tx.SetUserTimeZone(ctx, u.ID, "Europe/Berlin") },
				func() error { return tx.SetNotifyChoices(ctx, u.ID, want) },
				func() error { return tx.RecordSignIn(ctx, u.ID, at) },
				func() error { return tx.SetUserRole(ctx, u.ID, store.RoleAdmin) },
			} {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err = db.UserByEmail(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ann Smith" || got.TimeZone != "Europe/Berlin" || got.Notify != want || !got.LastSignInAt.Equal(at) || got.Role != store.RoleAdmin {
			t.Fatalf("after updates = %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetUserRole(ctx, u.ID, "owner") }); err == nil {
			t.Error("an unknown role was stored")
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetUserName(ctx, 9999, "x") }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rename of a missing user: %v, want ErrNotFound", err)
		}
		// Disabled and back; the state follows.
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetUserDisabled(ctx, u.ID, at) }); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.User(ctx, u.ID); !got.DisabledAt.Equal(at) || got.State() != store.UserDisabled {
			t.Errorf("disabled user = %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetUserDisabled(ctx, u.ID, time.Time{}) }); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.User(ctx, u.ID); !got.DisabledAt.IsZero() || got.State() != store.UserActive {
			t.Errorf("enabled user = %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetPasswordHash(ctx, u.ID, "") }); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.User(ctx, u.ID); got.State() != store.UserInvited {
			t.Errorf("user without a password is %q, want invited", got.State())
		}
	})
}

func TestMailboxFollows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var ann, bob, cyd store.User
		var sales, support store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if sales, err = tx.CreateMailbox(ctx, "sales@example.com", "Sales"); err != nil {
				return err
			}
			if support, err = tx.CreateMailbox(ctx, "support@example.com", "Support"); err != nil {
				return err
			}
			for _, p := range []struct {
				u     *store.User
				email string
			}{{&ann, "ann@example.com"}, {&bob, "bob@example.com"}, {&cyd, "cyd@example.com"}} {
				if *p.u, err = tx.CreateUser(ctx, store.User{Email: p.email, Role: store.RoleAgent, PasswordHash: "h"}); err != nil {
					return err
				}
			}
			if err := tx.SetFollowedMailboxes(ctx, ann.ID, []int64{support.ID, sales.ID, support.ID}); err != nil {
				return err
			}
			if err := tx.SetFollowedMailboxes(ctx, bob.ID, []int64{support.ID}); err != nil {
				return err
			}
			if err := tx.SetFollowedMailboxes(ctx, cyd.ID, []int64{support.ID}); err != nil {
				return err
			}
			return tx.SetUserDisabled(ctx, cyd.ID, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		ids, err := db.FollowedMailboxes(ctx, ann.ID)
		if err != nil || !slices.Equal(ids, []int64{sales.ID, support.ID}) {
			t.Fatalf("ann follows %v, %v", ids, err)
		}
		// A disabled follower hears nothing.
		fs, err := db.MailboxFollowers(ctx, support.ID)
		if err != nil || len(fs) != 2 || fs[0].ID != ann.ID || fs[1].ID != bob.ID || fs[0].Notify != store.DefaultNotify {
			t.Fatalf("support's followers = %+v, %v", fs, err)
		}
		// Setting replaces the set; empty is none.
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetFollowedMailboxes(ctx, ann.ID, []int64{sales.ID}) }); err != nil {
			t.Fatal(err)
		}
		if fs, _ := db.MailboxFollowers(ctx, support.ID); len(fs) != 1 || fs[0].ID != bob.ID {
			t.Errorf("after ann stopped following support: %+v", fs)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetFollowedMailboxes(ctx, ann.ID, nil) }); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.FollowedMailboxes(ctx, ann.ID); len(ids) != 0 {
			t.Errorf("after unfollowing all, ann follows %v", ids)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetFollowedMailboxes(ctx, ann.ID, []int64{9999}) }); err == nil {
			t.Error("following a mailbox that does not exist was stored")
		}
		// A deleted mailbox takes its follows with it.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.SetFollowedMailboxes(ctx, ann.ID, []int64{sales.ID}); err != nil {
				return err
			}
			deleted, err := tx.RemoveMailbox(ctx, sales.ID)
			if err == nil && !deleted {
				err = errors.New("mailbox without mail was not deleted")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.FollowedMailboxes(ctx, ann.ID); len(ids) != 0 {
			t.Errorf("ann still follows deleted mailbox: %v", ids)
		}
	})
}

func TestActiveAdminsAndSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		var root, invited, off store.User
		var keep store.Session
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if root, err = tx.CreateUser(ctx, store.User{Email: "root@example.com", Role: store.RoleAdmin, PasswordHash: "h"}); err != nil {
				return err
			}
			if invited, err = tx.CreateUser(ctx, store.User{Email: "new@example.com", Role: store.RoleAdmin}); err != nil {
				return err
			}
			if off, err = tx.CreateUser(ctx, store.User{Email: "off@example.com", Role: store.RoleAdmin, PasswordHash: "h"}); err != nil {
				return err
			}
			if _, err = tx.CreateUser(ctx, store.User{Email: "agent@example.com", Role: store.RoleAgent, PasswordHash: "h"}); err != nil {
				return err
			}
			if err := tx.SetUserDisabled(ctx, off.ID, now); err != nil {
				return err
			}
			for i, h := range []string{"s1", "s2", "s3"} {
				s := store.Session{TokenHash: h, UserID: root.ID, CSRFToken: "c", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := tx.CreateSession(ctx, &s); err != nil {
					return err
				}
				if i == 1 {
					keep = s
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			ids, err := tx.ActiveAdminIDs(ctx)
			if err != nil {
				return err
			}
			if !slices.Equal(ids, []int64{root.ID}) {
				t.Errorf("active admins = %v, want only %d (not invited %d nor disabled %d)", ids, root.ID, invited.ID, off.ID)
			}
			n, err := tx.DeleteUserSessions(ctx, root.ID, keep.ID)
			if n != 2 {
				t.Errorf("ended %d sessions, want 2", n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.SessionByTokenHash(ctx, "s2", now); err != nil {
			t.Errorf("kept session: %v", err)
		}
		if _, _, err := db.SessionByTokenHash(ctx, "s1", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ended session: %v, want ErrNotFound", err)
		}
	})
}

func TestInvitationsAreSingleUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
		var u store.User
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if u, err = tx.CreateUser(ctx, store.User{Email: "new@example.com", Role: store.RoleAgent}); err != nil {
				return err
			}
			if err := tx.CreateInvitation(ctx, store.Invitation{TokenHash: "old", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
			return tx.CreateInvitation(ctx, store.Invitation{TokenHash: "new", UserID: u.ID, CreatedBy: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
		// A new link replaces the old one.
		if _, _, err := db.InvitationByHash(ctx, "old", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replaced invitation: %v, want ErrNotFound", err)
		}
		inv, iu, err := db.InvitationByHash(ctx, "new", now)
		if err != nil || iu.ID != u.ID || inv.CreatedBy != 1 || !inv.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("invitation = %+v %+v, %v", inv, iu, err)
		}
		if p, err := db.PendingInvitation(ctx, u.ID, now); err != nil || p.TokenHash != "new" {
			t.Errorf("pending = %+v, %v", p, err)
		}
		// Expired is gone.
		if _, _, err := db.InvitationByHash(ctx, "new", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired invitation: %v, want ErrNotFound", err)
		}
		use := func() error {
			return db.Write(ctx, func(tx *store.Tx) error { _, err := tx.UseInvitation(ctx, "new", now); return err })
		}
		if err := use(); err != nil {
			t.Fatal(err)
		}
		if err := use(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second use: %v, want ErrNotFound", err)
		}
		if _, err := db.PendingInvitation(ctx, u.ID, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pending after use: %v, want ErrNotFound", err)
		}
	})
}
