package desk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// microsoftOnly is a providers lookup with Microsoft configured.
func microsoftOnly(name string) (oauth.Provider, bool) {
	if name == "microsoft" {
		return oauth.Microsoft("organizations", ""), true
	}
	return oauth.Provider{}, false
}

func newAdmin(t *testing.T, db *store.DB) (*desk.Admin, *store.Vault) {
	t.Helper()
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	admin := desk.NewAdmin(db, vault, microsoftOnly)
	admin.ProbeResolver = mailtest.NoSuchHost() // made-up names fail here, with no DNS query
	return admin, vault
}

func days(n int) *int { return &n }

// openPassword returns a mailbox's login and its password, unsealed.
func openPassword(t *testing.T, db *store.DB, vault *store.Vault, id int64) (string, string) {
	t.Helper()
	au, err := db.MailboxAuth(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if au.Kind != store.AuthPassword {
		t.Fatalf("sign-in kind = %s, want password", au.Kind)
	}
	pw, err := vault.Open(au.PasswordSealed, store.MailboxSecret(id, "password"))
	if err != nil {
		t.Fatalf("open the sealed password: %v", err)
	}
	return au.Account, string(pw)
}

func TestAddMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, vault := newAdmin(t, db)

		mb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: " Support@Example.com ", Name: "Support", Auth: "microsoft"})
		if err != nil {
			t.Fatal(err)
		}
		spec, err := admin.Spec(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Address != "support@example.com" || spec.Auth != "microsoft" || spec.IMAPHost != "outlook.office365.com" ||
			spec.IMAPPort != 993 || spec.IMAPSecurity != "tls" || spec.AuthMethod != "xoauth2" || spec.Disabled ||
			strings.Join(spec.Folders, ",") != "INBOX" || *spec.InitialDays != 14 || *spec.MaxAgeDays != 90 {
			t.Errorf("OAuth mailbox spec = %+v", spec)
		}

		pmb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@example.com", Auth: "password", IMAPHost: "imap.example.com",
			Password: "hunter2", Folders: []string{"INBOX", "Support"}, InitialDays: days(0), Disabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if login, pw := openPassword(t, db, vault, pmb.ID); login != "help@example.com" || pw != "hunter2" {
			t.Errorf("stored login %q password %q", login, pw)
		}
		srv, err := db.MailboxServer(ctx, pmb.ID)
		if err != nil || srv.Enabled || srv.InitialDays != 0 || srv.AuthMethod != "plain" || len(srv.Folders) != 2 {
			t.Errorf("password mailbox server = %+v, %v", srv, err)
		}

		_, err = admin.AddMailbox(ctx, desk.MailboxSpec{Address: "SUPPORT@example.com", Auth: "microsoft"})
		if !errors.Is(err, desk.ErrExists) || !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("duplicate: %v, want ErrExists and ErrInvalid", err)
		}
	})
}

func TestUpdateMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, vault := newAdmin(t, db)
		mb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@example.com", Auth: "password", IMAPHost: "imap.example.com", Password: "old secret"})
		if err != nil {
			t.Fatal(err)
		}
		update := func(change func(*desk.MailboxSpec)) error {
			t.Helper()
			spec, err := admin.Spec(ctx, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			change(&spec)
			_, err = admin.UpdateMailbox(ctx, mb.ID, spec)
			return err
		}

		// Settings change; the password stays.
		if err := update(func(s *desk.MailboxSpec) {
			s.Name, s.Folders, s.AfterProcessing, s.MoveTo, s.Disabled = "Help", []string{"INBOX", "Sales"}, "move", "Done", true
		}); err != nil {
			t.Fatal(err)
		}
		spec, _ := admin.Spec(ctx, mb.ID)
		if spec.Name != "Help" || strings.Join(spec.Folders, ",") != "INBOX,Sales" || spec.AfterProcessing != "move" ||
			spec.MoveTo != "Done" || !spec.Disabled || spec.IMAPHost != "imap.example.com" {
			t.Errorf("after update: %+v", spec)
		}
		if _, pw := openPassword(t, db, vault, mb.ID); pw != "old secret" {
			t.Errorf("password after a settings change = %q, want it kept", pw)
		}

		// A refused password is replaced: re-sealed, and the state clears.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.SetAuthState(ctx, mb.ID, store.AuthNeedsReauth, "auth_failed", "The server refused the password.", time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if err := update(func(s *desk.MailboxSpec) { s.Password, s.Username = "new secret", "helpdesk" }); err != nil {
			t.Fatal(err)
		}
		if login, pw := openPassword(t, db, vault, mb.ID); login != "helpdesk" || pw != "new secret" {
			t.Errorf("after a new password: login %q password %q", login, pw)
		}
		if au, _ := db.MailboxAuth(ctx, mb.ID); au.State != store.AuthOK || au.Error != "" {
			t.Errorf("state after a new password = %s %q, want ok", au.State, au.Error)
		}

		// Refused changes leave everything as it was.
		for _, c := range []struct {
			name, want string
			change     func(*desk.MailboxSpec)
		}{
			{"address", "cannot change", func(s *desk.MailboxSpec) { s.Address = "other@example.com" }},
			{"after processing", "leave, seen or move", func(s *desk.MailboxSpec) { s.AfterProcessing = "delete" }},
			{"move without folder", "needs a folder", func(s *desk.MailboxSpec) { s.MoveTo = "" }},
			{"port", "between 1 and 65535", func(s *desk.MailboxSpec) { s.IMAPPort = 70000 }},
			{"plain imap", "only allowed to this machine", func(s *desk.MailboxSpec) { s.IMAPSecurity = "none" }},
			{"oauth method", "plain or login", func(s *desk.MailboxSpec) { s.AuthMethod = "xoauth2" }},
			{"unknown provider", "not configured", func(s *desk.MailboxSpec) { s.Auth = "yahoo" }},
		} {
			err := update(c.change)
			if !errors.Is(err, desk.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want ErrInvalid saying %q", c.name, err, c.want)
			}
		}
		if after, _ := admin.Spec(ctx, mb.ID); after.Name != "Help" || after.IMAPPort != 993 || after.AfterProcessing != "move" {
			t.Errorf("a refused change changed the mailbox: %+v", after)
		}

		// To OAuth: the password is forgotten and the provider's servers apply.
		if err := update(func(s *desk.MailboxSpec) { s.Auth = "microsoft" }); err != nil {
			t.Fatal(err)
		}
		au, err := db.MailboxAuth(ctx, mb.ID)
		if err != nil || au.Kind != store.AuthOAuth || au.Provider != "microsoft" || au.PasswordSealed != "" || !au.AuthorizedAt.IsZero() {
			t.Errorf("after switching to OAuth: %+v, %v", au, err)
		}
		if spec, _ := admin.Spec(ctx, mb.ID); spec.IMAPHost != "outlook.office365.com" || spec.AuthMethod != "xoauth2" {
			t.Errorf("servers after switching to OAuth: %+v", spec)
		}
		// Back to a password needs one.
		if err := update(func(s *desk.MailboxSpec) { s.Auth, s.IMAPHost = "password", "imap.example.com" }); err == nil ||
			!strings.Contains(err.Error(), "needs a password") {
			t.Errorf("to password without one: %v", err)
		}

		_, err = admin.UpdateMailbox(ctx, mb.ID+100, desk.MailboxSpec{Name: "x"})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update a missing mailbox: %v, want ErrNotFound", err)
		}
	})
}

func TestUpdateImportedMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, _ := newAdmin(t, db)
		var mb store.Mailbox
		if err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			mb, err = tx.CreateMailbox(ctx, "archive@example.com", "Archive")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// Without a sign-in, the name can change.
		spec, _ := admin.Spec(ctx, mb.ID)
		spec.Name = "Old archive"
		if got, err := admin.UpdateMailbox(ctx, mb.ID, spec); err != nil || got.Mailbox.Name != "Old archive" {
			t.Fatalf("rename: %+v, %v", got, err)
		}
		// Server settings need one.
		spec.Folders = []string{"Archive"}
		if _, err := admin.UpdateMailbox(ctx, mb.ID, spec); !errors.Is(err, desk.ErrInvalid) || !strings.Contains(err.Error(), "say how the mailbox signs in") {
			t.Errorf("settings without a sign-in: %v", err)
		}
		// With one, it becomes a fetched mailbox.
		spec.Auth = "microsoft"
		if _, err := admin.UpdateMailbox(ctx, mb.ID, spec); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.SyncedMailboxIDs(ctx); len(ids) != 1 || ids[0] != mb.ID {
			t.Errorf("synced mailboxes = %v, want [%d]", ids, mb.ID)
		}
	})
}

func TestRemoveMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, _ := newAdmin(t, db)
		mb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@example.com", Auth: "microsoft"})
		if err != nil {
			t.Fatal(err)
		}
		if deleted, err := admin.RemoveMailbox(ctx, "HELP@example.com"); err != nil || !deleted {
			t.Fatalf("remove = %v, %v; want deleted", deleted, err)
		}
		if _, err := db.Mailbox(ctx, mb.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after remove: %v, want ErrNotFound", err)
		}
		if _, err := admin.RemoveMailbox(ctx, "help@example.com"); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("remove again: %v, want ErrInvalid", err)
		}
	})
}
