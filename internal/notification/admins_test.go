package notification_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/notification"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// needsReauth records that a password mailbox's password was refused, as
// the sender does (the state, and the notice, which mail sync may record
// a second time for the same refusal).
func (e *dbEnv) needsReauth(mb store.Mailbox, notices int) {
	e.t.Helper()
	err := e.db.Write(e.ctx, func(tx *store.Tx) error {
		now := e.clock.Now()
		if err := tx.SetAuthState(e.ctx, mb.ID, store.AuthNeedsReauth, store.CodePasswordRefused, "The mail server refused the password.", now); err != nil {
			return err
		}
		for range notices {
			n := store.Notice{MailboxID: mb.ID, Kind: string(store.AuthNeedsReauth), Message: mb.Address + ": the mail server refused the password.", CreatedAt: now}
			if err := tx.AddNotice(e.ctx, &n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *dbEnv) notices() []store.Notice {
	e.t.Helper()
	list, err := e.db.Notices(e.ctx, store.NoticeFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// A mailbox needing reauthentication is told to every active admin, once,
// through another, healthy mailbox; when no mailbox is healthy nothing is
// sent and the notice says why.
func TestNoticeToEveryAdmin(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDBEnv(t, dialect, nil)
			a := e.passwordMailbox("a@example.test")
			b := e.passwordMailbox("b@example.test")
			root := e.user("root@helpdesk.test", store.RoleAdmin, store.DefaultNotify)
			ops := e.user("ops@helpdesk.test", store.RoleAdmin, store.NotifyChoices{})
			agent := e.user("agent@helpdesk.test", store.RoleAgent, store.DefaultNotify)
			gone := e.user("gone@helpdesk.test", store.RoleAdmin, store.DefaultNotify)
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error { return tx.SetUserDisabled(e.ctx, gone.ID, e.clock.Now()) }); err != nil {
				t.Fatal(err)
			}

			e.needsReauth(a, 2)
			e.run()
			e.run()
			for _, admin := range []store.User{root, ops} {
				got := e.sentTo(admin.Email)
				if len(got) != 1 {
					t.Fatalf("%s got %d emails, want 1", admin.Email, len(got))
				}
				m := got[0]
				if m.MailboxID != b.ID || m.msg.From[0].Address != b.Address || m.msg.Subject != "Postdesk: a@example.test needs reauthentication" ||
					!strings.Contains(m.msg.Text, "a@example.test: the mail server refused the password.") ||
					!strings.Contains(m.msg.Text, "https://desk.example.test/admin/emails#notices") || m.msg.Auto == "" {
					t.Errorf("%s: through mailbox %d, subject %q:\n%s", admin.Email, m.MailboxID, m.msg.Subject, m.msg.Text)
				}
			}
			if n := len(e.sentTo(agent.Email)) + len(e.sentTo(gone.Email)); n != 0 {
				t.Errorf("%d emails to an agent or a disabled admin", n)
			}
			ns := e.notices()
			if len(ns) != 2 || ns[1].Email != (store.NoticeEmail{State: store.EmailQueued, MailboxID: b.ID, Count: 2}) ||
				ns[0].Email.State != store.EmailRepeat {
				t.Errorf("notices' emails: %+v", ns)
			}

			// B fails too: nobody can send; the notice says so.
			e.needsReauth(b, 1)
			e.run()
			if n := len(e.sentTo(root.Email)); n != 1 {
				t.Errorf("root got %d emails, want still 1", n)
			}
			if ns := e.notices(); ns[0].MailboxID != b.ID || ns[0].Email.State != store.EmailNoMailbox {
				t.Errorf("newest notice: %+v, want no_mailbox", ns[0])
			}
			// Good news is shown in the app only.
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				return tx.AddNotice(e.ctx, &store.Notice{MailboxID: a.ID, Kind: store.NoticeRestored, Message: "a is working again.", CreatedAt: e.clock.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			e.run()
			if ns := e.notices(); ns[0].Email.State != store.EmailNotEmailed {
				t.Errorf("restored notice: %+v", ns[0])
			}
		})
	}
}

// The admins hear of an authorization running out at the first warning,
// then 3 days and 1 day before its deadline, each exactly once, however
// often the loop runs (the clock is moved).
func TestRemindersBeforeDeadline(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			clk := fakeidp.NewClock(start)
			idp := fakeidp.New(fakeidp.Options{Clock: clk, Accounts: []fakeidp.Account{{Address: "a@example.test", Name: "A"}},
				Apps: []fakeidp.App{{ClientID: "pd", Name: "Postdesk", ClientSecret: "s", RedirectURIs: []string{"https://desk.example.test/oauth/callback"}}}})
			srv := httptest.NewServer(idp)
			t.Cleanup(srv.Close)
			p := oauth.Microsoft("organizations", srv.URL)
			p.ClientID, p.ClientSecret, p.MailHosts = "pd", "s", []string{"127.0.0.1"}
			e := newDBEnv(t, dialect, nil)
			svc, err := oauth.New(oauth.Config{DB: e.db, Vault: e.vault, Providers: []oauth.Provider{p}, Now: clk.Now,
				RedirectURL: "https://desk.example.test/oauth/callback", Sleep: func(context.Context, time.Duration) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			// The Mailer needs the service built on its database.
			if e.mailer, err = notification.New(notification.Options{DB: e.db, BaseURL: baseURL, OAuth: svc, Now: clk.Now}); err != nil {
				t.Fatal(err)
			}
			e.admin = desk.NewAdmin(e.db, e.vault, desk.Providers([]oauth.Provider{p}))
			a, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: "a@example.test", Name: "A", Auth: "microsoft",
				IMAPHost: "127.0.0.1", IMAPPort: 10143, IMAPSecurity: "none", SMTPHost: "127.0.0.1", SMTPPort: 10587, SMTPSecurity: "none"})
			if err != nil {
				t.Fatal(err)
			}
			u, err := svc.Begin(e.ctx, a.ID, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			cb, err := idp.SignIn(u, a.Address)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Complete(e.ctx, 1, cb.Query()); err != nil {
				t.Fatal(err)
			}
			b := e.passwordMailbox("b@example.test")
			root := e.user("root@helpdesk.test", store.RoleAdmin, store.DefaultNotify)
			st, err := svc.Status(e.ctx, a.ID)
			if err != nil || st.Deadline.IsZero() {
				t.Fatalf("status %+v, %v", st, err)
			}
			deadline := st.Deadline

			step := func(at time.Time, wantTotal int, wantSubject string) {
				t.Helper()
				clk.Set(at)
				if _, err := svc.EvaluateAll(e.ctx); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if err := e.mailer.Run(e.ctx); err != nil {
						t.Fatal(err)
					}
				}
				got := e.sentTo(root.Email)
				if len(got) != wantTotal {
					t.Fatalf("at %s before the deadline: %d emails, want %d", deadline.Sub(at), len(got), wantTotal)
				}
				if wantSubject != "" && got[len(got)-1].msg.Subject != wantSubject {
					t.Errorf("at %s before the deadline: subject %q, want %q", deadline.Sub(at), got[len(got)-1].msg.Subject, wantSubject)
				}
				for _, m := range got {
					if m.MailboxID != b.ID {
						t.Errorf("sent through mailbox %d, want the other one, %d", m.MailboxID, b.ID)
					}
				}
			}
			step(deadline.Add(-11*24*time.Hour), 0, "")
			step(deadline.Add(-10*24*time.Hour+time.Hour), 1, "Postdesk: a@example.test must be reauthenticated soon")
			step(deadline.Add(-5*24*time.Hour), 1, "")
			step(deadline.Add(-3*24*time.Hour+time.Minute), 2, "Postdesk: a@example.test must be reauthenticated within 3 days")
			step(deadline.Add(-2*24*time.Hour), 2, "")
			step(deadline.Add(-24*time.Hour+time.Minute), 3, "Postdesk: a@example.test must be reauthenticated within a day")
			step(deadline.Add(-time.Hour), 3, "")
			if got := e.sentTo(root.Email); !strings.Contains(got[2].msg.Text, deadline.UTC().Format("2 Jan 2006, 15:04 MST")) {
				t.Errorf("the reminder does not name the deadline:\n%s", got[2].msg.Text)
			}
			rs, err := e.db.Reminders(e.ctx, a.ID)
			if err != nil || len(rs) != 2 || rs[0].LeadDays != 3 || rs[1].LeadDays != 1 || rs[1].Email.State != store.EmailQueued {
				t.Errorf("reminders: %+v, %v", rs, err)
			}
		})
	}
}
