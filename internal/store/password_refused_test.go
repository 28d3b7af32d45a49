package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A refusal of a password is recorded once, and only while the password the
// login read is still the saved one: a server answers a failed login
// seconds later, and an admin may have saved the new password meanwhile.
func TestPasswordRefusedFencedByPasswordVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		old := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
		var id int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "help@example.com", "")
			if err != nil {
				return err
			}
			id = mb.ID
			return tx.SetMailboxPassword(ctx, id, "help", "sealed-old", old)
		})
		if err != nil {
			t.Fatal(err)
		}
		refuse := func(passwordAt time.Time) bool {
			t.Helper()
			var recorded bool
			err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				recorded, err = tx.PasswordRefused(ctx, id, passwordAt, "The mail server refused the mailbox's password.", time.Now())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return recorded
		}
		notices := func() int {
			t.Helper()
			ns, err := db.Notices(ctx, store.NoticeFilter{MailboxID: id})
			if err != nil {
				t.Fatal(err)
			}
			return len(ns)
		}

		// The admin saves a new password before the old one's refusal
		// arrives: nothing is recorded.
		saved := old.Add(time.Hour)
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.SetMailboxPassword(ctx, id, "help", "sealed-new", saved) }); err != nil {
			t.Fatal(err)
		}
		if refuse(old) {
			t.Error("the old password's refusal was recorded after the new password was saved")
		}
		if a, _ := db.MailboxAuth(ctx, id); a.State != store.AuthOK || notices() != 0 {
			t.Errorf("state %s, %d notices; want ok and none", a.State, notices())
		}

		// The saved password refused: recorded once, with one notice.
		if !refuse(saved) {
			t.Error("the saved password's refusal was not recorded")
		}
		if refuse(saved) {
			t.Error("the same refusal was recorded twice")
		}
		a, err := db.MailboxAuth(ctx, id)
		if err != nil || a.State != store.AuthNeedsReauth || a.ErrorCode != store.CodePasswordRefused {
			t.Errorf("auth %+v, %v; want needs_reauth, password_refused", a, err)
		}
		if n := notices(); n != 1 {
			t.Errorf("%d notices, want 1", n)
		}
	})
}
