package desk_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Pause, resume, signature, remove and re-add, on both databases: each is
// one desk call, recorded in the mailbox's activity.
func TestManageMailbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, _ := newAdmin(t, db)
		mb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@corp.example", Auth: "password", IMAPHost: "127.0.0.1",
			IMAPSecurity: "none", Password: "abc", Signature: "-- \nHelp"})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Mailbox(ctx, mb.ID); got.Signature != "-- \nHelp" {
			t.Errorf("signature = %q", got.Signature)
		}
		if _, err := admin.SetPaused(ctx, mb.ID, true); err != nil {
			t.Fatal(err)
		}
		if srv, _ := db.MailboxServer(ctx, mb.ID); srv.Enabled {
			t.Error("paused but enabled")
		}
		if _, err := admin.SetPaused(ctx, mb.ID, false); err != nil {
			t.Fatal(err)
		}
		spec, err := admin.Spec(ctx, mb.ID)
		if err != nil || spec.Disabled {
			t.Fatalf("after resume: %+v %v", spec, err)
		}
		spec.Signature = strings.Repeat("x", desk.MaxSignatureBytes+1)
		var v *desk.ValidationError
		if _, err := admin.UpdateMailbox(ctx, mb.ID, spec); !errors.As(err, &v) || v.Field != "signature" {
			t.Errorf("a long signature: %v", err)
		}
		acts, err := db.MailboxActivity(ctx, mb.ID, 10)
		if err != nil || len(acts) != 2 || !strings.HasPrefix(acts[0].Message, "Resumed") || !strings.HasPrefix(acts[1].Message, "Paused") {
			t.Errorf("activity = %+v, %v", acts, err)
		}

		// A mailbox with a ticket is kept when removed, out of desk's
		// reach, and comes back when its address is added again.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Hi", RequesterAddress: "c@example.net", CreatedAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if deleted, err := admin.RemoveMailboxID(ctx, mb.ID); err != nil || deleted {
			t.Fatalf("remove: %v %v", deleted, err)
		}
		if _, err := admin.RemoveMailboxID(ctx, mb.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second remove: %v", err)
		}
		if _, err := admin.Spec(ctx, mb.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("spec of a removed mailbox: %v", err)
		}
		again, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@corp.example", Name: "Help again", Auth: "microsoft"})
		if err != nil || again.ID != mb.ID || again.Removed() || again.Name != "Help again" {
			t.Fatalf("re-add = %+v, %v", again, err)
		}
		if _, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@corp.example", Auth: "microsoft"}); !errors.Is(err, desk.ErrExists) {
			t.Errorf("adding it a third time: %v", err)
		}

		// Imports make a bare mailbox through desk.
		bare, created, err := admin.EnsureMailbox(ctx, "Imported@Example.com")
		if err != nil || !created || bare.Address != "imported@example.com" {
			t.Fatalf("ensure = %+v %v %v", bare, created, err)
		}
		if same, created, err := admin.EnsureMailbox(ctx, "imported@example.com"); err != nil || created || same.ID != bare.ID {
			t.Errorf("ensure again = %+v %v %v", same, created, err)
		}
	})
}

// TestConnection's refusals name the field to fix and carry the step.
func TestTestConnectionSteps(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, "sqlite")
	admin, _ := newAdmin(t, db)
	ctx := context.Background()
	plain := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{"a@corp.example": "x"}}) // Dovecot with ssl = no
	// A port nothing listens on, taken after the stack's own: taken before,
	// its freed number was once given to Dovecot, and the "closed" port
	// answered and logged in (a flaky CI run).
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	plainHost, plainPort := hostPort(t, plain.IMAPAddr)
	for _, tc := range []struct {
		spec  desk.MailboxSpec
		field string
		step  imapsync.ProbeStep
		words string
	}{
		{desk.MailboxSpec{Address: "a@corp.example", Auth: "password", Password: "x", IMAPHost: "imap.postdesk-test.invalid"}, "imap_host", imapsync.StepDNS, "was not found (DNS)"},
		{desk.MailboxSpec{Address: "a@corp.example", Auth: "password", Password: "x", IMAPHost: "127.0.0.1", IMAPSecurity: "none", IMAPPort: port}, "imap_port", imapsync.StepTCP, "Nothing answers at 127.0.0.1:" + strconv.Itoa(port)},
		{desk.MailboxSpec{Address: "a@corp.example", Auth: "password", Password: "x", IMAPHost: plainHost, IMAPSecurity: "starttls", IMAPPort: plainPort}, "imap_security", imapsync.StepTLS,
			plain.IMAPAddr + ` refused STARTTLS (it said: "TLS support isn't enabled."): it offers no TLS on this port.`},
	} {
		_, err := admin.TestConnection(ctx, tc.spec)
		var v *desk.ValidationError
		var ce *desk.ConnectionError
		if !errors.As(err, &v) || !errors.As(err, &ce) || v.Field != tc.field || ce.Step != tc.step || !strings.Contains(v.Message, tc.words) {
			t.Errorf("TestConnection(%s) = %v (field %q)", tc.spec.IMAPHost, err, fieldOf(v))
		}
	}
	if _, err := admin.TestConnection(ctx, desk.MailboxSpec{Address: "a@corp.example", Auth: "microsoft"}); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("testing an OAuth mailbox: %v", err)
	}
	if _, err := admin.TestConnection(ctx, desk.MailboxSpec{Address: "a@corp.example", Auth: "password", IMAPHost: "127.0.0.1"}); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("testing without a password: %v", err)
	}
}

func fieldOf(v *desk.ValidationError) string {
	if v == nil {
		return ""
	}
	return v.Field
}

// Health orders problems first; notices are resolved by later events.
func TestHealthAndResolution(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 6, 9, 40, 0, 0, time.UTC)
	connected := store.MailboxAuth{MailboxID: 1, Kind: store.AuthOAuth, State: store.AuthOK, RefreshTokenSealed: "v1:x", AuthorizedAt: now.Add(-time.Hour)}
	with := func(f func(*store.MailboxAuth)) store.MailboxAuth { a := connected; f(&a); return a }
	for _, tc := range []struct {
		name    string
		au      store.MailboxAuth
		hasAuth bool
		enabled bool
		sync    store.SyncStatus
		want    desk.Health
	}{
		{"refused", with(func(a *store.MailboxAuth) { a.State = store.AuthNeedsReauth }), true, true, store.SyncStatus{}, desk.HealthNeedsReauth},
		{"never connected", store.MailboxAuth{MailboxID: 1, Kind: store.AuthOAuth, State: store.AuthOK}, true, true, store.SyncStatus{}, desk.HealthNotConnected},
		{"no sign-in", store.MailboxAuth{}, false, true, store.SyncStatus{}, desk.HealthNotConnected},
		{"failing", connected, true, true, store.SyncStatus{State: "error"}, desk.HealthFailing},
		{"expiring", with(func(a *store.MailboxAuth) { a.State = store.AuthExpiring }), true, true, store.SyncStatus{}, desk.HealthExpiring},
		{"paused", connected, true, false, store.SyncStatus{State: "error"}, desk.HealthPaused},
		{"healthy", connected, true, true, store.SyncStatus{State: "idling"}, desk.HealthOK},
	} {
		if got := desk.HealthOf(tc.au, tc.hasAuth, tc.enabled, tc.sync); got != tc.want {
			t.Errorf("%s: health %v, want %v", tc.name, got, tc.want)
		}
	}
	if !(desk.HealthNeedsReauth < desk.HealthFailing && desk.HealthFailing < desk.HealthExpiring && desk.HealthExpiring < desk.HealthOK) {
		t.Error("problems do not sort first")
	}

	notice := store.Notice{MailboxID: 1, Kind: string(store.AuthNeedsReauth), CreatedAt: now.Add(-2 * time.Hour)}
	if _, ok := desk.ResolveNotice(notice, with(func(a *store.MailboxAuth) { a.State = store.AuthNeedsReauth }), store.SyncStatus{}); ok {
		t.Error("resolved while the mailbox still needs reauthentication")
	}
	if r, ok := desk.ResolveNotice(notice, connected, store.SyncStatus{}); !ok || r.By != "Reauthenticated" || !r.At.Equal(connected.AuthorizedAt) {
		t.Errorf("after reauthentication: %+v %v", r, ok)
	}
	old := with(func(a *store.MailboxAuth) { a.AuthorizedAt = now.Add(-48 * time.Hour) })
	if r, ok := desk.ResolveNotice(notice, old, store.SyncStatus{LastSuccessAt: now}); !ok || r.By != "Fetching again" {
		t.Errorf("after fetching again: %+v %v", r, ok)
	}
	if _, ok := desk.ResolveNotice(store.Notice{MailboxID: 1, Kind: "quarantined", CreatedAt: notice.CreatedAt}, connected, store.SyncStatus{LastSuccessAt: now}); ok {
		t.Error("a quarantine notice resolved itself")
	}
}
