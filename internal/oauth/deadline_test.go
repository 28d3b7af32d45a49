package oauth_test

import (
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

func TestState(t *testing.T) {
	t.Parallel()
	day := oauth.Day
	p := oauth.Microsoft("", "")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// authorized at t0, refreshed at refreshed, due at t0+90d.
	auth := func(refreshed time.Time, due time.Time, state store.AuthState) store.MailboxAuth {
		return store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "v1:x:y", AuthorizedAt: t0,
			LastRefreshAt: refreshed, ExpiresAt: refreshed.Add(90 * day), ReauthDueAt: due, State: state}
	}
	due := t0.Add(90 * day)
	tests := []struct {
		name     string
		now      time.Time
		a        store.MailboxAuth
		want     store.AuthState
		deadline time.Time
		overdue  bool
	}{
		{"fresh", t0.Add(day), auth(t0.Add(day), due, store.AuthOK), store.AuthOK, due, false},
		{"day 79", t0.Add(79 * day), auth(t0.Add(79*day), due, store.AuthOK), store.AuthOK, due, false},
		{"day 80: warning lead", t0.Add(80 * day), auth(t0.Add(80*day), due, store.AuthOK), store.AuthExpiring, due, false},
		{"day 91 refreshed daily: overdue, still expiring", t0.Add(91 * day), auth(t0.Add(91*day), due, store.AuthOK), store.AuthExpiring, due, true},
		{"no max age, refreshed daily", t0.Add(300 * day), auth(t0.Add(300*day), time.Time{}, store.AuthOK), store.AuthOK, t0.Add(390 * day), false},
		{"no max age, idle 81 days", t0.Add(81 * day), auth(t0, time.Time{}, store.AuthOK), store.AuthExpiring, t0.Add(90 * day), false},
		{"no max age, idle 90 days: expired", t0.Add(90 * day), auth(t0, time.Time{}, store.AuthOK), store.AuthNeedsReauth, t0.Add(90 * day), false},
		{"refused by the provider", t0.Add(day), auth(t0, due, store.AuthNeedsReauth), store.AuthNeedsReauth, due, false},
		{"provider fault", t0.Add(day), auth(t0, due, store.AuthProviderFault), store.AuthProviderFault, due, false},
		{"not connected", t0, store.MailboxAuth{Kind: store.AuthOAuth}, store.AuthNeedsReauth, time.Time{}, false},
		{"password mailbox", t0, store.MailboxAuth{Kind: store.AuthPassword}, store.AuthOK, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, deadline, overdue := oauth.State(tt.now, tt.a, p)
			if got != tt.want || !deadline.Equal(tt.deadline) || overdue != tt.overdue {
				t.Errorf("State = %s, %v, %v; want %s, %v, %v", got, deadline, overdue, tt.want, tt.deadline, tt.overdue)
			}
		})
	}
}
