package store_test

import (
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

func TestMailboxUsability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		auth  store.MailboxAuth
		oauth bool
		want  store.Usability
	}{
		{"no kind", store.MailboxAuth{}, true, store.UnusableNoSignIn},
		{"none", store.MailboxAuth{Kind: store.AuthNone}, true, store.UnusableNoSignIn},
		{"password", store.MailboxAuth{Kind: store.AuthPassword, State: store.AuthOK}, false, store.Usable},
		{"password refused", store.MailboxAuth{Kind: store.AuthPassword, State: store.AuthNeedsReauth}, false, store.UnusableNeedsReauth},
		{"oauth without a provider", store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "x"}, false, store.UnusableNoProvider},
		{"oauth never connected", store.MailboxAuth{Kind: store.AuthOAuth}, true, store.UnusableNotConnected},
		{"oauth connected", store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "x", State: store.AuthOK}, true, store.Usable},
		{"oauth expiring", store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "x", State: store.AuthExpiring}, true, store.Usable},
		{"oauth needs reauth", store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "x", State: store.AuthNeedsReauth}, true, store.UnusableNeedsReauth},
		{"oauth provider fault", store.MailboxAuth{Kind: store.AuthOAuth, RefreshTokenSealed: "x", State: store.AuthProviderFault}, true, store.UnusableProviderFault},
	}
	for _, tt := range tests {
		got := tt.auth.Usability(tt.oauth)
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if got.OK() != (tt.want == store.Usable) || (got.OK() == (got.Words() != "")) {
			t.Errorf("%s: OK %v with words %q", tt.name, got.OK(), got.Words())
		}
	}
}

func TestSyncStateWords(t *testing.T) {
	t.Parallel()
	seen := map[string]store.SyncState{}
	for _, s := range []store.SyncState{store.SyncIdle, store.SyncConnected, store.SyncIdling, store.SyncSynced, store.SyncError, store.SyncStopped} {
		w := s.Words()
		if w == "" || w == string(s) {
			t.Errorf("%s has no words: %q", s, w)
		}
		if other, dup := seen[w]; dup {
			t.Errorf("%s and %s both read %q", s, other, w)
		}
		seen[w] = s
	}
}
