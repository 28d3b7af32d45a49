package oauth_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// authEvents lists a mailbox's mailbox.auth_state_changed events.
func (e *env) authEvents(mailboxID int64) []string {
	e.t.Helper()
	events, err := e.db.EventsSince(e.ctx, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		if ev.Kind == store.EventMailboxAuthStateChange && ev.MailboxID == mailboxID {
			out = append(out, fmt.Sprintf("%v<-%v %v", ev.Data["state"], ev.Data["previous"], ev.Data["error_code"]))
		}
	}
	return out
}

// A token revoked at the provider: the refresh that fails tells
// mailbox.auth_state_changed once (further failures and the hourly
// evaluation tell nothing more), and signing in again tells the way back.
func TestAuthStateChangeToldOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.connect(e.mb)
		if got := e.authEvents(e.mb.ID); len(got) != 0 {
			t.Fatalf("connecting a new mailbox told %v", got)
		}
		if err := e.idp.Revoke(support); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Minute)
		if err := e.svc.RefreshNow(e.ctx, e.mb.ID); !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("refresh after revocation: %v", err)
		}
		if _, err := e.svc.TokenFor(e.ctx, e.mb.ID); !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Fatalf("token after revocation: %v", err)
		}
		if _, err := e.svc.EvaluateAll(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(e.authEvents(e.mb.ID), ","), "needs_reauth<-ok AADSTS50173"; got != want {
			t.Fatalf("events = %q, want %q", got, want)
		}
		e.connect(e.mb)
		if got, want := strings.Join(e.authEvents(e.mb.ID), ","), "needs_reauth<-ok AADSTS50173,ok<-needs_reauth <nil>"; got != want {
			t.Fatalf("after signing in again: events = %q, want %q", got, want)
		}
		if got := e.authEvents(e.sales.ID); len(got) != 0 {
			t.Errorf("the other mailbox told %v", got)
		}
	})
}
