package desk

import (
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// Health is how urgently a mailbox needs an admin, most urgent first:
// Admin -> Emails lists mailboxes in this order.
type Health int

// Health values, most urgent first.
const (
	HealthNeedsReauth  Health = iota // the provider or server refused the sign-in: no mail arrives
	HealthFailing                    // fetching fails (network, server): retried with back-off
	HealthExpiring                   // the authorization runs out soon: reauthenticate
	HealthNotConnected               // added but never signed in
	HealthOK                         // fetching
	HealthPaused                     // paused by an admin
)

// String is the Health as the API names it: "needs_reauth", "failing",
// "expiring", "not_connected", "ok", "paused".
func (h Health) String() string {
	switch h {
	case HealthNeedsReauth:
		return "needs_reauth"
	case HealthFailing:
		return "failing"
	case HealthExpiring:
		return "expiring"
	case HealthNotConnected:
		return "not_connected"
	case HealthPaused:
		return "paused"
	}
	return "ok"
}

// HealthOf decides a mailbox's Health from its sign-in (au; hasAuth false
// when it has none), its server settings' enabled flag and its sync status.
func HealthOf(au store.MailboxAuth, hasAuth, enabled bool, sync store.SyncStatus) Health {
	switch {
	case hasAuth && (au.State == store.AuthNeedsReauth || au.State == store.AuthProviderFault) && connected(au):
		return HealthNeedsReauth
	case !hasAuth || au.Kind == store.AuthNone || !connected(au):
		return HealthNotConnected
	case !enabled:
		return HealthPaused
	case sync.State == "error":
		return HealthFailing
	case au.State == store.AuthExpiring:
		return HealthExpiring
	}
	return HealthOK
}

// connected reports whether a mailbox ever signed in: a password mailbox
// has its password; an OAuth one was authorized at least once (its tokens
// may since have been refused).
func connected(au store.MailboxAuth) bool {
	if au.Kind == store.AuthPassword {
		return au.PasswordSealed != ""
	}
	return au.Kind == store.AuthOAuth && (au.RefreshTokenSealed != "" || !au.AuthorizedAt.IsZero())
}

// Resolution says that a later event resolved a notice: the mailbox was
// reauthenticated, or fetches again. By is the event in a few words.
type Resolution struct {
	By string
	At time.Time
}

// ResolveNotice reports what resolved a notice about a mailbox's sign-in
// (expiring, needs reauthentication, client secret) or fetching, given the
// mailbox's sign-in and sync status now; ok is false while it stands. A
// resolved notice needs no Dismiss.
func ResolveNotice(n store.Notice, au store.MailboxAuth, sync store.SyncStatus) (r Resolution, ok bool) {
	switch n.Kind {
	case string(store.AuthExpiring), string(store.AuthNeedsReauth), string(store.AuthProviderFault):
	default:
		return Resolution{}, false
	}
	if n.MailboxID == 0 || au.MailboxID != n.MailboxID || au.State != store.AuthOK {
		return Resolution{}, false
	}
	// A sign-in at the notice's very moment (same millisecond, or a test's
	// frozen clock) came after it: the notice was written first.
	after := func(t time.Time) bool { return !t.IsZero() && !t.Before(n.CreatedAt) }
	switch {
	case au.Kind == store.AuthOAuth && after(au.AuthorizedAt):
		return Resolution{By: "Reauthenticated", At: au.AuthorizedAt}, true
	case au.Kind == store.AuthPassword && after(au.UpdatedAt) && n.Kind != string(store.AuthExpiring):
		return Resolution{By: "Password changed", At: au.UpdatedAt}, true
	case n.Kind != string(store.AuthExpiring) && sync.LastSuccessAt.After(n.CreatedAt):
		return Resolution{By: "Fetching again", At: sync.LastSuccessAt}, true
	case n.Kind == string(store.AuthProviderFault) && au.LastRefreshAt.After(n.CreatedAt):
		return Resolution{By: "Refreshed again", At: au.LastRefreshAt}, true
	}
	return Resolution{}, false
}
