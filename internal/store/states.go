package store

// SyncState is where a mailbox's sync is, as mail sync records it in
// sync_status and every surface shows it (Words).
type SyncState string

// Sync states.
const (
	SyncIdle      SyncState = "idle"      // never started
	SyncConnected SyncState = "connected" // logged in, fetching
	SyncIdling    SyncState = "idling"    // up to date, waiting for new mail (IDLE or between polls)
	SyncSynced    SyncState = "synced"    // a pass over the folders ended
	SyncError     SyncState = "error"     // the session failed; it is retried with back-off
	SyncStopped   SyncState = "stopped"   // this process stopped the session (shutdown, lease lost, mailbox paused)
)

// Words is the state in plain words for people.
func (s SyncState) Words() string {
	switch s {
	case SyncIdle, "":
		return "Not started yet"
	case SyncConnected:
		return "Connected, fetching"
	case SyncIdling:
		return "Up to date, waiting for new mail"
	case SyncSynced:
		return "Up to date"
	case SyncError:
		return "Failing: retrying with back-off"
	case SyncStopped:
		return "Stopped"
	}
	return string(s)
}

// UpToDate reports whether the state follows a successful pass.
func (s SyncState) UpToDate() bool { return s == SyncSynced || s == SyncIdling }

// Usability is whether a mailbox may be fetched now, and if not, why. It is
// decided in one place, MailboxAuth.Usability; the syncer and the token
// service act on it.
type Usability string

// Usabilities.
const (
	Usable Usability = "usable"
	// UnusableNoSignIn: no way to sign in is configured (no authorization, or kind none).
	UnusableNoSignIn Usability = "no_sign_in"
	// UnusableNoProvider: an OAuth mailbox while no OAuth provider is configured.
	UnusableNoProvider Usability = "no_provider"
	// UnusableNotConnected: an OAuth mailbox nobody has signed in to yet (or whose tokens were forgotten).
	UnusableNotConnected Usability = "not_connected"
	// UnusableNeedsReauth: the provider or the mail server refused for good; an admin signs in again
	// (or gives the new password).
	UnusableNeedsReauth Usability = "needs_reauth"
	// UnusableProviderFault: the provider refuses the application (client secret); fixed in the settings.
	UnusableProviderFault Usability = "provider_fault"
)

// OK reports whether the mailbox may be fetched.
func (u Usability) OK() bool { return u == Usable }

// Words is why a mailbox is not fetched, in plain words (empty when it is).
func (u Usability) Words() string {
	switch u {
	case Usable:
		return ""
	case UnusableNoSignIn:
		return "no sign-in configured"
	case UnusableNoProvider:
		return "no OAuth provider configured"
	case UnusableNotConnected:
		return "not connected yet"
	case UnusableNeedsReauth:
		return "needs reauthentication"
	case UnusableProviderFault:
		return "the provider refuses the application"
	}
	return string(u)
}

// Usability decides whether the mailbox may be fetched now; oauth tells
// whether an OAuth provider service is configured in this process.
func (a MailboxAuth) Usability(oauth bool) Usability {
	return usability(a.Kind, a.RefreshTokenSealed != "", a.State, oauth)
}

// usability is the one rule behind MailboxAuth.Usability and
// SyncCandidate.Usability.
func usability(kind AuthKind, connected bool, state AuthState, oauth bool) Usability {
	switch {
	case kind == AuthNone || kind == "":
		return UnusableNoSignIn
	case kind == AuthOAuth && !oauth:
		return UnusableNoProvider
	case kind == AuthOAuth && !connected:
		return UnusableNotConnected
	case state == AuthNeedsReauth:
		return UnusableNeedsReauth
	case state == AuthProviderFault:
		return UnusableProviderFault
	}
	return Usable
}

// HoldsReplies reports whether the mailbox's outgoing mail waits for a
// sign-in: it needs re-authentication, or has not been connected (yet, or
// again since its tokens were forgotten). Its replies are held, and sent in
// order once an admin signs in.
func (a MailboxAuth) HoldsReplies() bool {
	switch a.Usability(true) {
	case UnusableNeedsReauth, UnusableNotConnected:
		return true
	}
	return false
}

// CodePasswordRefused is the authorization error code of a password mailbox
// whose password the mail server refused: surfaces say how to give the new one.
const CodePasswordRefused = "password_refused"
