package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// wantInvalid fails unless err is a *ValidationError about field wrapping cause (nil: any).
func wantInvalid(t *testing.T, err error, field string, cause error) {
	t.Helper()
	var v *ValidationError
	if !errors.As(err, &v) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	if v.Field != field || (cause != nil && !errors.Is(err, cause)) || v.Message == "" {
		t.Fatalf("err = %+v, want field %q, cause %v", v, field, cause)
	}
}

func TestAddUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewService(Options{DB: db})
		root, _, err := CreateUser(ctx, db, "root@example.com", "Root", store.RoleAdmin, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		agent, creds, err := s.AddUser(ctx, root, NewUser{Email: " Ann@Example.com ", Name: "Ann", Role: store.RoleAgent, Setup: SetupPassword})
		if err != nil {
			t.Fatal(err)
		}
		if agent.Email != "ann@example.com" || agent.State() != store.UserActive || len(creds.Password) < MinPasswordLen || creds.InviteToken != "" {
			t.Fatalf("added %+v with %+v", agent, creds)
		}
		if _, _, u, err := s.Login(ctx, "ann@example.com", creds.Password, "", ""); err != nil || u.ID != agent.ID || u.LastSignInAt.IsZero() {
			t.Fatalf("sign in with the generated password: %+v, %v", u, err)
		}
		if got, _ := db.User(ctx, agent.ID); got.LastSignInAt.IsZero() {
			t.Error("sign-in time not recorded")
		}

		// An invitation: no password until the link is used, once.
		bob, creds, err := s.AddUser(ctx, root, NewUser{Email: "bob@example.com", Role: store.RoleAdmin, Setup: SetupInvite})
		if err != nil {
			t.Fatal(err)
		}
		if bob.State() != store.UserInvited || creds.InviteToken == "" || creds.Password != "" || creds.InviteExpires.Sub(time.Now()) < InvitationTTL-time.Minute {
			t.Fatalf("invited %+v with %+v", bob, creds)
		}
		if u, _, err := s.Invitation(ctx, creds.InviteToken); err != nil || u.ID != bob.ID {
			t.Fatalf("invitation lookup = %+v, %v", u, err)
		}
		if _, _, _, err := s.AcceptInvitation(ctx, creds.InviteToken, "short", "", ""); err == nil {
			t.Fatal("a short password was accepted")
		} else {
			wantInvalid(t, err, "password", nil)
		}
		tok, _, u, err := s.AcceptInvitation(ctx, creds.InviteToken, testPassword, "test", "127.0.0.1")
		if err != nil || u.ID != bob.ID || tok == "" {
			t.Fatalf("accept = %+v, %v", u, err)
		}
		if _, su, err := s.Session(ctx, tok); err != nil || su.ID != bob.ID {
			t.Fatalf("session from the invitation: %v", err)
		}
		if _, _, _, err := s.AcceptInvitation(ctx, creds.InviteToken, testPassword, "", ""); !errors.Is(err, ErrInvitationInvalid) {
			t.Fatalf("second use: %v, want ErrInvitationInvalid", err)
		}
		if got, _ := db.User(ctx, bob.ID); got.State() != store.UserActive {
			t.Errorf("after accepting: %q", got.State())
		}

		// Refusals, each with its field.
		_, _, err = s.AddUser(ctx, root, NewUser{Email: "ANN@example.com", Role: store.RoleAgent, Setup: SetupPassword})
		wantInvalid(t, err, "email", ErrEmailTaken)
		_, _, err = s.AddUser(ctx, root, NewUser{Email: "not an email", Role: store.RoleAgent, Setup: SetupPassword})
		wantInvalid(t, err, "email", nil)
		for _, long := range []string{strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 248) + ".test"} {
			_, _, err = s.AddUser(ctx, root, NewUser{Email: long, Role: store.RoleAgent, Setup: SetupPassword})
			wantInvalid(t, err, "email", nil)
		}
		if _, _, err = s.AddUser(ctx, root, NewUser{Email: strings.Repeat("a", 64) + "@example.com", Role: store.RoleAgent, Setup: SetupPassword}); err != nil {
			t.Errorf("a 64-character local part was refused: %v", err)
		}
		_, _, err = s.AddUser(ctx, root, NewUser{Email: "c@example.com", Role: "owner", Setup: SetupPassword})
		wantInvalid(t, err, "role", nil)
		_, _, err = s.AddUser(ctx, root, NewUser{Email: "c@example.com", Role: store.RoleAgent})
		wantInvalid(t, err, "setup", nil)
		_, _, err = s.AddUser(ctx, agent, NewUser{Email: "c@example.com", Role: store.RoleAgent, Setup: SetupPassword})
		wantInvalid(t, err, "", ErrNotAdmin)
		if _, err := db.UserByEmail(ctx, "c@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused user was stored: %v", err)
		}
	})
}

func TestNeverWithoutAnActiveAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewService(Options{DB: db})
		root, _, err := CreateUser(ctx, db, "root@example.com", "", store.RoleAdmin, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		ann, _, err := CreateUser(ctx, db, "ann@example.com", "", store.RoleAgent, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SetRole(ctx, root, root.ID, store.RoleAgent)
		wantInvalid(t, err, "role", ErrLastAdmin)
		_, err = s.SetDisabled(ctx, store.User{}, root.ID, true) // the command line too
		wantInvalid(t, err, "disabled", ErrLastAdmin)
		_, err = s.SetDisabled(ctx, root, root.ID, true)
		wantInvalid(t, err, "disabled", ErrSelf)
		_, err = s.ResetPassword(ctx, store.User{}, root.ID, SetupInvite)
		wantInvalid(t, err, "", ErrLastAdmin)
		// An invited admin is not an active one.
		if _, _, err := s.AddUser(ctx, root, NewUser{Email: "new@example.com", Role: store.RoleAdmin, Setup: SetupInvite}); err != nil {
			t.Fatal(err)
		}
		_, err = s.SetRole(ctx, root, root.ID, store.RoleAgent)
		wantInvalid(t, err, "role", ErrLastAdmin)
		// With a second admin the first may step down.
		if _, err := s.SetRole(ctx, root, ann.ID, store.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if u, err := s.SetRole(ctx, root, root.ID, store.RoleAgent); err != nil || u.Role != store.RoleAgent {
			t.Fatalf("step down = %+v, %v", u, err)
		}
		ann, _ = db.User(ctx, ann.ID)
		_, err = s.SetDisabled(ctx, store.User{}, ann.ID, true)
		wantInvalid(t, err, "disabled", ErrLastAdmin)
		if _, err := s.SetRole(ctx, root, root.ID, store.RoleAdmin); err == nil {
			t.Fatal("an agent made themselves an admin")
		}
		if _, err := s.SetRole(ctx, ann, 9999, store.RoleAgent); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown user: %v, want ErrNotFound", err)
		}
	})
}

func TestDisabledUserStopsAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewService(Options{DB: db})
		root, _, err := CreateUser(ctx, db, "root@example.com", "", store.RoleAdmin, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		ann, _, err := CreateUser(ctx, db, "ann@example.com", "", store.RoleAgent, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, _, err := s.Login(ctx, ann.Email, testPassword, "", "")
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := s.CreateAPIKey(ctx, ann.ID, "script")
		if err != nil {
			t.Fatal(err)
		}
		if u, err := s.SetDisabled(ctx, root, ann.ID, true); err != nil || u.State() != store.UserDisabled {
			t.Fatalf("disable = %+v, %v", u, err)
		}
		if _, _, err := s.Session(ctx, tok); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("session of a disabled user: %v", err)
		}
		if _, _, err := s.APIKey(ctx, key); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("key of a disabled user: %v", err)
		}
		if _, _, _, err := s.Login(ctx, ann.Email, testPassword, "", ""); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("sign-in of a disabled user: %v", err)
		}
		if _, err := s.ResetPassword(ctx, root, ann.ID, SetupPassword); err == nil {
			t.Error("reset the password of a disabled user")
		}
		if _, err := s.SetDisabled(ctx, root, ann.ID, false); err != nil {
			t.Fatal(err)
		}
		// Enabled again: the key works, the old session stays ended.
		if _, _, err := s.APIKey(ctx, key); err != nil {
			t.Errorf("key after enabling: %v", err)
		}
		if _, _, err := s.Session(ctx, tok); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("old session after enabling: %v", err)
		}
		if _, _, _, err := s.Login(ctx, ann.Email, testPassword, "", ""); err != nil {
			t.Errorf("sign-in after enabling: %v", err)
		}
	})
}

func TestResetPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewService(Options{DB: db})
		root, _, err := CreateUser(ctx, db, "root@example.com", "", store.RoleAdmin, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		ann, _, err := CreateUser(ctx, db, "ann@example.com", "", store.RoleAgent, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, _, err := s.Login(ctx, ann.Email, testPassword, "", "")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := s.ResetPassword(ctx, root, ann.ID, SetupPassword)
		if err != nil || creds.Password == "" {
			t.Fatalf("reset = %+v, %v", creds, err)
		}
		if _, _, err := s.Session(ctx, tok); err == nil {
			t.Error("a session survived the reset")
		}
		if _, _, _, err := s.Login(ctx, ann.Email, testPassword, "", ""); err == nil {
			t.Error("the old password still works")
		}
		if _, _, _, err := s.Login(ctx, ann.Email, creds.Password, "", ""); err != nil {
			t.Errorf("the new password: %v", err)
		}
		creds, err = s.ResetPassword(ctx, root, ann.ID, SetupInvite)
		if err != nil || creds.InviteToken == "" {
			t.Fatalf("reset by link = %+v, %v", creds, err)
		}
		if u, _ := db.User(ctx, ann.ID); u.State() != store.UserInvited {
			t.Errorf("after a reset by link: %q", u.State())
		}
		if _, err := s.ResetPassword(ctx, root, root.ID, SetupPassword); !errors.Is(err, ErrSelf) {
			t.Errorf("own reset: %v, want ErrSelf", err)
		}
	})
}

func TestProfileAndPasswordChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewService(Options{DB: db, Limits: Limits{Account: Backoff{Free: 2, Base: time.Minute, Max: time.Hour}}})
		ann, _, err := CreateUser(ctx, db, "ann@example.com", "", store.RoleAgent, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		var support, gone store.Mailbox
		err = db.Write(ctx, func(tx *store.Tx) error {
			if support, err = tx.CreateMailbox(ctx, "support@example.com", ""); err != nil {
				return err
			}
			if gone, err = tx.CreateMailbox(ctx, "gone@example.com", ""); err != nil {
				return err
			}
			if err := tx.InsertMessage(ctx, &store.Message{MailboxID: gone.ID, Direction: "in", Kind: store.KindEmail, DedupeKey: "k", ReceivedAt: time.Now()}); err != nil {
				return err
			}
			_, err := tx.RemoveMailbox(ctx, gone.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.UpdateProfile(ctx, ann.ID, Profile{TimeZone: "Mars/Olympus"})
		wantInvalid(t, err, "time_zone", nil)
		_, err = s.UpdateProfile(ctx, ann.ID, Profile{Follows: []int64{gone.ID}})
		wantInvalid(t, err, "follows", nil)
		_, err = s.UpdateProfile(ctx, ann.ID, Profile{Name: "a\nb"})
		wantInvalid(t, err, "name", nil)
		want := store.NotifyChoices{NewTicket: true}
		u, err := s.UpdateProfile(ctx, ann.ID, Profile{Name: " Ann ", TimeZone: "Asia/Kolkata", Notify: want, Follows: []int64{support.ID}})
		if err != nil || u.Name != "Ann" || u.TimeZone != "Asia/Kolkata" || u.Notify != want {
			t.Fatalf("profile = %+v, %v", u, err)
		}
		if ids, _ := db.FollowedMailboxes(ctx, ann.ID); !slices.Equal(ids, []int64{support.ID}) {
			t.Errorf("follows = %v", ids)
		}
		if loc, err := LoadZone(u.TimeZone); err != nil || loc.String() != "Asia/Kolkata" {
			t.Errorf("zone = %v, %v", loc, err)
		}

		// The current password is checked like a sign-in: wrong answers back off.
		keep, keepSess, _, err := s.Login(ctx, ann.Email, testPassword, "", "")
		if err != nil {
			t.Fatal(err)
		}
		other, _, _, err := s.Login(ctx, ann.Email, testPassword, "", "")
		if err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, s.ChangePassword(ctx, ann.ID, testPassword, "short", keepSess.ID, "192.0.2.1"), "new_password", nil)
		for range 2 {
			wantInvalid(t, s.ChangePassword(ctx, ann.ID, "wrong password", "a new password", keepSess.ID, "192.0.2.1"), "current_password", ErrWrongPassword)
		}
		var throttled *ThrottledError
		if err := s.ChangePassword(ctx, ann.ID, testPassword, "a new password", keepSess.ID, "192.0.2.1"); !errors.As(err, &throttled) {
			t.Fatalf("after two wrong answers: %v, want a *ThrottledError", err)
		}
		if _, err := s.Unlock(ctx, store.ThrottleAccount, ann.Email); err != nil {
			t.Fatal(err)
		}
		if err := s.ChangePassword(ctx, ann.ID, testPassword, "a new password", keepSess.ID, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Session(ctx, keep); err != nil {
			t.Errorf("the session that changed the password ended: %v", err)
		}
		if _, _, err := s.Session(ctx, other); err == nil {
			t.Error("another session survived the password change")
		}
		if _, _, _, err := s.Login(ctx, ann.Email, "a new password", "", ""); err != nil {
			t.Errorf("sign in with the new password: %v", err)
		}
	})
}
