package oauth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// warnedOverdue is the warned_state recorded once the overdue notice went
// out: still AuthExpiring as a state, but a second, louder notice.
const warnedOverdue = store.AuthState("overdue")

// Status is what Admin -> Emails, the banner and /metrics show of one
// mailbox.
type Status struct {
	MailboxID int64
	Address   string
	Kind      store.AuthKind
	Provider  string
	Account   string // who signed in (a delegate for a shared mailbox)
	State     store.AuthState
	// Overdue: past reauth_due_at while the provider still accepts the
	// refresh; shown louder, fetching continues.
	Overdue bool
	// Deadline is the earlier of ExpiresAt and ReauthDueAt (zero: none).
	Deadline      time.Time
	ExpiresAt     time.Time
	ReauthDueAt   time.Time
	AuthorizedAt  time.Time
	LastRefreshAt time.Time
	Reason        string // plain words, when State is not ok
	Code          string
	// NotConnected: an OAuth mailbox that was added but never signed in
	// (State is then needs_reauth: nothing is fetched). It is not a
	// refusal: pages say "Not connected" and /metrics its own state.
	NotConnected bool
	// SecretFault: the provider refuses the client secret (State is
	// provider_fault); updating the secret fixes it, signing in does not.
	SecretFault bool
}

// CodeNotConnected is the Status.Code of a mailbox that never signed in.
const CodeNotConnected = "not_connected"

// Fetching reports whether mail can be fetched: not while the mailbox needs
// re-authentication or the provider refuses the application.
func (st Status) Fetching() bool {
	return st.Kind != store.AuthOAuth || (st.State == store.AuthOK || st.State == store.AuthExpiring)
}

// SecondsLeft is the time to the earlier deadline in seconds (negative once
// past), for the /metrics gauge; NaN when there is none.
func (st Status) SecondsLeft(now time.Time) float64 {
	if st.Deadline.IsZero() {
		return math.NaN()
	}
	return st.Deadline.Sub(now).Seconds()
}

// maxAge is the mailbox's maximum authorization age: its own, else the
// provider's default; 0 means until revoked.
func maxAge(a store.MailboxAuth, p Provider) time.Duration {
	if a.ReauthMaxAge != nil {
		return *a.ReauthMaxAge
	}
	return p.DefaultMaxAge
}

// State is a mailbox's authorization state at now, the earlier of its two
// deadlines, and whether re-authentication is overdue:
//   - needs_reauth and provider_fault, once recorded, stay until a sign-in
//     (or, for provider_fault, a successful refresh) clears them;
//   - needs_reauth when not connected, or once expires_at (last successful
//     refresh + inactivity window) has passed;
//   - expiring, overdue, past reauth_due_at: the provider still accepts the
//     refresh, so fetching goes on;
//   - expiring from p.WarnLead before the earlier deadline;
//   - ok otherwise.
func State(now time.Time, a store.MailboxAuth, p Provider) (state store.AuthState, deadline time.Time, overdue bool) {
	if a.Kind != store.AuthOAuth {
		return store.AuthOK, time.Time{}, false
	}
	deadline = a.ExpiresAt
	if !a.ReauthDueAt.IsZero() && (deadline.IsZero() || a.ReauthDueAt.Before(deadline)) {
		deadline = a.ReauthDueAt
	}
	overdue = !a.ReauthDueAt.IsZero() && !now.Before(a.ReauthDueAt)
	switch {
	case a.State == store.AuthNeedsReauth || a.RefreshTokenSealed == "":
		return store.AuthNeedsReauth, deadline, overdue
	case a.State == store.AuthProviderFault:
		return store.AuthProviderFault, deadline, overdue
	case !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt):
		return store.AuthNeedsReauth, deadline, overdue
	case overdue:
		return store.AuthExpiring, deadline, true
	}
	lead := p.WarnLead
	if lead <= 0 {
		lead = DefaultWarnLead
	}
	if !deadline.IsZero() && !now.Before(deadline.Add(-lead)) {
		return store.AuthExpiring, deadline, false
	}
	return store.AuthOK, deadline, false
}

// status builds a Status without changing anything.
func (s *Service) status(now time.Time, a store.MailboxAuth) Status {
	st := Status{MailboxID: a.MailboxID, Address: a.Address, Kind: a.Kind, Provider: a.Provider, Account: a.Account,
		ExpiresAt: a.ExpiresAt, ReauthDueAt: a.ReauthDueAt, AuthorizedAt: a.AuthorizedAt, LastRefreshAt: a.LastRefreshAt,
		State: store.AuthOK, Reason: a.Error, Code: a.ErrorCode}
	if a.Kind != store.AuthOAuth {
		return st
	}
	p, err := s.providerFor(a.Provider)
	if err != nil {
		st.State, st.Reason, st.Code = store.AuthProviderFault, err.Error()+": restore it in the settings.", "unknown_provider"
		return st
	}
	st.State, st.Deadline, st.Overdue = State(now, a, p)
	st.SecretFault = st.State == store.AuthProviderFault && secretFaultCodes[st.Code]
	if st.State == store.AuthNeedsReauth && a.State != store.AuthNeedsReauth {
		st.Code, st.Reason = expiryReason(a, p)
		st.NotConnected = st.Code == CodeNotConnected
	}
	return st
}

// expiryReason explains a needs_reauth that no provider answer recorded.
func expiryReason(a store.MailboxAuth, p Provider) (code, reason string) {
	if a.RefreshTokenSealed == "" {
		return CodeNotConnected, "Not connected yet: sign in with the mailbox's account to connect it."
	}
	days := int(p.RefreshInactivity / Day)
	return "expired", fmt.Sprintf("The authorization expired: it was not refreshed for %d days. Sign in again.", days)
}

// Status returns one mailbox's status (kind none when it has no
// authorization recorded).
func (s *Service) Status(ctx context.Context, mailboxID int64) (Status, error) {
	a, err := s.db.MailboxAuth(ctx, mailboxID)
	if errors.Is(err, store.ErrNotFound) {
		mb, err := s.db.Mailbox(ctx, mailboxID)
		if err != nil {
			return Status{}, err
		}
		return Status{MailboxID: mb.ID, Address: mb.Address, Kind: store.AuthNone, State: store.AuthOK}, nil
	}
	if err != nil {
		return Status{}, err
	}
	return s.status(s.utcNow(), a), nil
}

// Statuses returns the status of every mailbox with an authorization, by
// address. The banner shows those whose State is not ok.
func (s *Service) Statuses(ctx context.Context) ([]Status, error) {
	all, err := s.db.MailboxAuths(ctx, "")
	if err != nil {
		return nil, err
	}
	now := s.utcNow()
	out := make([]Status, 0, len(all))
	for _, a := range all {
		out = append(out, s.status(now, a))
	}
	return out, nil
}

// Evaluate brings a mailbox's recorded state up to date with the clock and
// records a notice the first time it enters expiring, overdue,
// needs_reauth or provider_fault. Jobs call it (EvaluateAll) at least
// daily; refreshes and sign-ins evaluate too.
func (s *Service) Evaluate(ctx context.Context, mailboxID int64) (Status, error) {
	var st Status
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		a, err := tx.MailboxAuth(ctx, mailboxID)
		if errors.Is(err, store.ErrNotFound) {
			st = Status{MailboxID: mailboxID, Kind: store.AuthNone, State: store.AuthOK}
			return nil
		}
		if err != nil {
			return err
		}
		st, err = s.applyState(ctx, tx, a, s.utcNow())
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("evaluate authorization of mailbox %d: %w", mailboxID, err)
	}
	return st, nil
}

// EvaluateAll evaluates every OAuth mailbox.
func (s *Service) EvaluateAll(ctx context.Context) ([]Status, error) {
	all, err := s.db.MailboxAuths(ctx, store.AuthOAuth)
	if err != nil {
		return nil, err
	}
	var out []Status
	var errs []error
	for _, a := range all {
		st, err := s.Evaluate(ctx, a.MailboxID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}

// applyState records the state of a (as read in tx) at now, and a notice on
// entering a state the admins must hear about.
func (s *Service) applyState(ctx context.Context, tx *store.Tx, a store.MailboxAuth, now time.Time) (Status, error) {
	st := s.status(now, a)
	if a.Kind != store.AuthOAuth || (a.AuthorizedAt.IsZero() && a.RefreshTokenSealed == "") {
		// Not an OAuth mailbox, or one never connected: there is nothing to
		// expire and nobody to warn (Admin -> Emails shows "Not connected").
		return st, nil
	}
	if st.State != a.State {
		code, reason := st.Code, st.Reason
		if st.State == store.AuthOK || st.State == store.AuthExpiring {
			code, reason = "", ""
		}
		if err := tx.SetAuthState(ctx, a.MailboxID, st.State, code, reason, now); err != nil {
			return st, err
		}
		st.Code, st.Reason = code, reason
	}
	warn := st.State
	if st.State == store.AuthExpiring && st.Overdue {
		warn = warnedOverdue
	}
	if warn == a.WarnedState {
		return st, nil
	}
	if msg := noticeText(st, warn, a.WarnedState); msg != "" {
		kind := string(warn)
		if warn == store.AuthOK {
			kind = "restored"
		}
		if err := tx.AddNotice(ctx, &store.Notice{MailboxID: a.MailboxID, Kind: kind, Message: msg, CreatedAt: now}); err != nil {
			return st, err
		}
		s.log.Warn("oauth mailbox state changed", "mailbox_id", a.MailboxID, "state", string(warn), "code", st.Code)
	}
	return st, tx.SetWarnedState(ctx, a.MailboxID, warn)
}

// noticeTimeLayout writes a moment in a notice as the pages do, with the
// time of day and the zone: "3 Mar 2026, 10:02 UTC".
const noticeTimeLayout = "2 Jan 2006, 15:04 MST"

// noticeText is the notice for entering warn (from the state last warned
// about); "" for changes nobody needs to hear about.
func noticeText(st Status, warn, prev store.AuthState) string {
	date := st.Deadline.UTC().Format(noticeTimeLayout)
	switch warn {
	case store.AuthExpiring:
		if prev == warnedOverdue {
			return "" // a re-authentication pushed the due date back into the lead
		}
		return fmt.Sprintf("%s: the authorization runs out on %s. Reauthenticate it in Admin → Emails before then to keep mail flowing.", st.Address, date)
	case warnedOverdue:
		return fmt.Sprintf("%s: reauthentication was due on %s. Mail still flows while the provider accepts it; reauthenticate in Admin → Emails now.", st.Address, st.ReauthDueAt.UTC().Format(noticeTimeLayout))
	case store.AuthNeedsReauth:
		return fmt.Sprintf("%s needs reauthentication: %s Fetching has stopped until an admin reauthenticates in Admin → Emails; mail that arrives meanwhile stays in the mailbox and is fetched then.", st.Address, st.Reason)
	case store.AuthProviderFault:
		return fmt.Sprintf("%s (%s): %s", st.Address, st.Provider, st.Reason)
	case store.AuthOK:
		if prev == store.AuthNeedsReauth || prev == store.AuthProviderFault {
			return fmt.Sprintf("%s is working again.", st.Address)
		}
	}
	return ""
}

// SetMaxAge sets a mailbox's maximum authorization age (nil: the
// provider's default; 0: until revoked), moves its due date accordingly
// and evaluates it.
func (s *Service) SetMaxAge(ctx context.Context, mailboxID int64, age *time.Duration) (Status, error) {
	if age != nil && *age < 0 {
		return Status{}, errors.New("the maximum authorization age cannot be negative")
	}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		a, err := tx.MailboxAuth(ctx, mailboxID)
		if err != nil {
			return err
		}
		p, err := s.providerFor(a.Provider)
		if err != nil {
			return err
		}
		a.ReauthMaxAge = age
		var due time.Time
		if !a.AuthorizedAt.IsZero() {
			due = addNonZero(a.AuthorizedAt, maxAge(a, p))
		}
		return tx.SetReauthMaxAge(ctx, mailboxID, age, due, s.utcNow())
	})
	if err != nil {
		return Status{}, fmt.Errorf("set maximum authorization age of mailbox %d: %w", mailboxID, err)
	}
	return s.Evaluate(ctx, mailboxID)
}
