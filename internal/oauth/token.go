package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/store"
)

// TokenFor returns a valid access token for the mailbox, refreshing it when
// it expires within the refresh-ahead margin (see refreshAhead). Every
// caller for one mailbox, in this process and others on the database,
// shares one refresh at a time. Errors: ErrNotConnected, or a *ProviderError matching
// ErrNeedsReauth, ErrProviderFault or ErrTemporary.
func (s *Service) TokenFor(ctx context.Context, mailboxID int64) (string, error) {
	return s.tokenFor(ctx, mailboxID, ResourceMail)
}

// tokenFor is TokenFor for one resource's access token.
func (s *Service) tokenFor(ctx context.Context, mailboxID int64, resource string) (string, error) {
	a, err := s.db.MailboxAuth(ctx, mailboxID)
	if err != nil {
		return "", s.readErr(mailboxID, err)
	}
	if err := usable(a); err != nil {
		return "", err
	}
	if tok, ok := s.validAccess(a, s.utcNow(), resource); ok {
		return tok, nil
	}
	return s.refreshShared(ctx, mailboxID, refreshIfDue, resource)
}

// TokenFunc is TokenFor bound to a mailbox, the shape imapsync and smtpsend
// take.
func (s *Service) TokenFunc(mailboxID int64) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return s.TokenFor(ctx, mailboxID) }
}

// RefreshNow refreshes the mailbox's tokens whatever the access token's
// expiry, pushing expires_at forward: jobs call it daily for every OAuth
// mailbox, idle or not. It does nothing for a mailbox that needs
// re-authentication (ErrNeedsReauth) or was refreshed a moment ago, and
// joins a refresh already running for the mailbox.
func (s *Service) RefreshNow(ctx context.Context, mailboxID int64) error {
	_, err := s.refreshShared(ctx, mailboxID, refreshUnlessRecent, ResourceMail)
	return err
}

// RefreshAll runs RefreshNow for every OAuth mailbox that does not need
// re-authentication, one after another, and returns the failures joined.
func (s *Service) RefreshAll(ctx context.Context) error {
	return s.refreshEach(ctx, func(store.MailboxAuth, time.Time) bool { return true })
}

// RefreshDue refreshes the OAuth mailboxes whose last refresh is older
// than their own due age, somewhere in [every/2, every) chosen from the
// mailbox id. Run often (hourly) with every = 12 h, it refreshes each
// mailbox about every 9 hours on average and spreads the refreshes of
// thousands of mailboxes over the interval, even when they were all
// connected (or last refreshed) in the same minute. A mailbox never
// refreshed is due at once.
func (s *Service) RefreshDue(ctx context.Context, every time.Duration) error {
	return s.refreshEach(ctx, func(a store.MailboxAuth, now time.Time) bool {
		return a.LastRefreshAt.IsZero() || now.Sub(a.LastRefreshAt) >= dueAge(a.MailboxID, every)
	})
}

// refreshEach runs RefreshNow, one after another, for every OAuth mailbox
// that does not need re-authentication and is due, and returns the
// failures joined.
func (s *Service) refreshEach(ctx context.Context, due func(a store.MailboxAuth, now time.Time) bool) error {
	all, err := s.db.MailboxAuths(ctx, store.AuthOAuth)
	if err != nil {
		return err
	}
	now := s.utcNow()
	var errs []error
	for _, a := range all {
		if a.State == store.AuthNeedsReauth || a.RefreshTokenSealed == "" || !due(a, now) {
			continue
		}
		if err := s.RefreshNow(ctx, a.MailboxID); err != nil {
			errs = append(errs, err)
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				break // shutting down: the next run does the rest
			}
		}
	}
	return errors.Join(errs...)
}

// dueAge is a mailbox's own refresh age in [every/2, every): a
// multiplicative hash of its id spreads neighbours apart.
func dueAge(mailboxID int64, every time.Duration) time.Duration {
	h := uint64(mailboxID) * 0x9E3779B97F4A7C15
	return every/2 + time.Duration(float64(every/2)*float64(h>>11)/(1<<53))
}

func (s *Service) readErr(mailboxID int64, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotConnected)
	}
	return fmt.Errorf("read authorization of mailbox %d: %w", mailboxID, err)
}

// usable refuses mailboxes that have no authorization or need a sign-in
// (store.MailboxAuth.Usability decides). A provider fault is not refused:
// a successful refresh is how it clears.
func usable(a store.MailboxAuth) error {
	if a.Kind != store.AuthOAuth {
		return fmt.Errorf("mailbox %d: %w", a.MailboxID, ErrNotConnected)
	}
	switch a.Usability(true) {
	case store.UnusableNotConnected, store.UnusableNoSignIn:
		return fmt.Errorf("mailbox %d: %w", a.MailboxID, ErrNotConnected)
	case store.UnusableNeedsReauth:
		return &ProviderError{MailboxID: a.MailboxID, Op: "token", Failure: Failure{Kind: Permanent, Code: a.ErrorCode, Reason: a.Error}}
	}
	return nil
}

// validAccess returns the stored access token if it outlives the
// refresh-ahead margin.
func (s *Service) validAccess(a store.MailboxAuth, now time.Time, resource string) (string, bool) {
	sealed, expires := accessOf(a, resource)
	if sealed == "" || !now.Add(s.refreshAhead(a, resource)).Before(expires) {
		return "", false
	}
	tok, err := s.vault.Open(sealed, store.MailboxSecret(a.MailboxID, accessSecret(resource)))
	if err != nil || len(tok) == 0 {
		return "", false // refresh instead
	}
	return string(tok), true
}

// refreshed records a successful refresh: the rotated refresh token
// replaces the old one in the transaction that moves last_refresh_at and
// expires_at forward. The provider has already spent the old token, so a
// failed write is tried again (saveAttempts) before the new one is lost.
func (s *Service) refreshed(ctx context.Context, a store.MailboxAuth, p Provider, oldRT string, tok *oauth2.Token, resource string) error {
	now := s.utcNow()
	newRT := tok.RefreshToken
	if newRT == "" {
		newRT = oldRT // the provider did not rotate it
	}
	rtSealed, err := s.vault.Seal([]byte(newRT), store.MailboxSecret(a.MailboxID, "refresh_token"))
	if err != nil {
		return err
	}
	atSealed, err := s.vault.Seal([]byte(tok.AccessToken), store.MailboxSecret(a.MailboxID, accessSecret(resource)))
	if err != nil {
		return err
	}
	err = s.saveRetrying(ctx, a.MailboxID, func(tx *store.Tx) error {
		saved, err := tx.SaveRefreshedTokens(ctx, a.MailboxID, a.RefreshTokenSealed, store.RefreshedTokens{
			Resource: resource, RefreshTokenSealed: rtSealed, AccessTokenSealed: atSealed,
			AccessExpiresAt: accessExpiry(tok, now), RefreshedAt: now,
			ExpiresAt: addNonZero(now, p.RefreshInactivity),
		})
		if err != nil || !saved {
			// !saved: a sign-in replaced the tokens meanwhile; it wins, and
			// this access token is still good to use.
			return err
		}
		cur, err := tx.MailboxAuth(ctx, a.MailboxID)
		if err != nil {
			return err
		}
		if cur.State == store.AuthProviderFault {
			// The provider accepted the application again.
			if err := tx.SetAuthState(ctx, a.MailboxID, store.AuthOK, "", "", now); err != nil {
				return err
			}
			cur.State = store.AuthOK
			cur.Error, cur.ErrorCode = "", ""
		}
		if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: a.MailboxID, Kind: store.ActivityRefresh,
			Message: "Access token refreshed", CreatedAt: now}); err != nil {
			return err
		}
		_, err = s.applyState(ctx, tx, cur, now)
		return err
	})
	if err != nil {
		s.log.Error("oauth refresh token rotated but not saved: the mailbox will need re-authentication", "mailbox_id", a.MailboxID, "provider", p.Name, "err", err)
		return fmt.Errorf("save refreshed token of mailbox %d: %w", a.MailboxID, err)
	}
	s.clearTempFailures(a.MailboxID)
	s.log.Info("oauth token refreshed", "mailbox_id", a.MailboxID, "provider", p.Name, "resource", cmp.Or(resource, "mail"), "rotated", tok.RefreshToken != "" && tok.RefreshToken != oldRT)
	return nil
}

// refreshFailed records a refused refresh and returns the error for it.
func (s *Service) refreshFailed(ctx context.Context, a store.MailboxAuth, p Provider, f Failure) error {
	now := s.utcNow()
	perr := &ProviderError{MailboxID: a.MailboxID, Op: "refresh", Failure: f}
	if f.Kind == Temporary && !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt) {
		// No successful refresh within the provider's window, and no way
		// to tell: the authorization is gone.
		code, reason := expiryReason(a, p)
		perr.Failure = Failure{Kind: Permanent, Code: code, Reason: reason}
	}
	switch perr.Kind {
	case Temporary:
		perr.RetryAfter = s.cfg.Retry.Delay(s.countTempFailure(a.MailboxID))
		s.log.Warn("oauth refresh failed, will retry", "mailbox_id", a.MailboxID, "provider", p.Name, "code", f.Code, "retry_after", perr.RetryAfter)
		return perr
	case Permanent:
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.SetAuthState(ctx, a.MailboxID, store.AuthNeedsReauth, perr.Code, perr.Reason, now); err != nil {
				return err
			}
			if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: a.MailboxID, Kind: store.ActivityError,
				Message: "Refresh refused: " + perr.Reason, CreatedAt: now}); err != nil {
				return err
			}
			cur, err := tx.MailboxAuth(ctx, a.MailboxID)
			if err != nil {
				return err
			}
			_, err = s.applyState(ctx, tx, cur, now)
			return err
		})
		s.log.Warn("oauth refresh refused: mailbox needs re-authentication", "mailbox_id", a.MailboxID, "provider", p.Name, "code", perr.Code)
		return errors.Join(perr, err)
	default: // ProviderFault: every mailbox of the provider shows it
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			all, err := tx.MailboxAuths(ctx, store.AuthOAuth)
			if err != nil {
				return err
			}
			for _, m := range all {
				if m.Provider != a.Provider || m.State == store.AuthNeedsReauth || m.State == store.AuthProviderFault {
					continue
				}
				if err := tx.SetAuthState(ctx, m.MailboxID, store.AuthProviderFault, perr.Code, perr.Reason, now); err != nil {
					return err
				}
				m.State, m.ErrorCode, m.Error = store.AuthProviderFault, perr.Code, perr.Reason
				if _, err := s.applyState(ctx, tx, m, now); err != nil {
					return err
				}
			}
			return nil
		})
		s.log.Error("oauth provider refused the application", "mailbox_id", a.MailboxID, "provider", p.Name, "code", perr.Code)
		return errors.Join(perr, err)
	}
}

// countTempFailure counts a temporary failure of the mailbox and returns
// how many happened in a row before it.
func (s *Service) countTempFailure(mailboxID int64) int {
	s.tempMu.Lock()
	defer s.tempMu.Unlock()
	n := s.tempFails[mailboxID]
	s.tempFails[mailboxID] = n + 1
	return n
}

func (s *Service) clearTempFailures(mailboxID int64) {
	s.tempMu.Lock()
	defer s.tempMu.Unlock()
	delete(s.tempFails, mailboxID)
}
