package oauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/store"
)

// How refreshes are coordinated. A refresh token may be spent only once:
// strict providers treat a second presentation as theft and revoke the
// grant. So every refresh of a mailbox, whoever asks (the sync, the daily
// job, a sending job) and in whichever process, goes through one gate:
//
//  1. In a process, one singleflight key per mailbox: a caller arriving
//     during a refresh waits for it and gets its result.
//  2. Across processes, a refresh lease on the mailbox's authorization row
//     (store.ClaimRefresh, compare-and-swap in a short transaction; no lock
//     is held while the provider answers). A process that finds another's
//     lease re-reads the row until that refresh is recorded, and uses it.
//  3. The refresh token is read in the transaction that claims the lease,
//     so it is always the newest; the rotated one is committed (still
//     compare-and-swap on the old one) before the new access token is handed
//     out.
//  4. Close refuses new refreshes and waits for those in flight, so a
//     shutdown never drops a token the provider has already rotated.

// refreshMode says when a refresh asks the provider.
type refreshMode int

const (
	refreshIfDue        refreshMode = iota // only when the access token expires soon
	refreshUnlessRecent                    // unless another refresh just happened (scheduled refreshes)
	refreshAlways                          // always: the mail server refused the token we have
)

const (
	// recentRefresh is how soon after a successful refresh RefreshNow skips
	// another: the row was re-read and someone else just did it.
	recentRefresh = time.Minute
	// providerTimeout bounds one refresh's requests to the provider,
	// retries included.
	providerTimeout = 2 * time.Minute
	// saveTimeout bounds recording a refresh's outcome.
	saveTimeout = 30 * time.Second
	// leaseTTL is how long a claim on a mailbox's refresh lasts: longer than
	// any refresh, so it only lapses when its holder died mid-refresh.
	leaseTTL = providerTimeout + saveTimeout + 30*time.Second
	// leasePoll is how often a process waiting for another's refresh
	// re-reads the row.
	leasePoll = 200 * time.Millisecond
	// saveAttempts is how often a rotated token's write is tried.
	saveAttempts = 3
)

// flight is the outcome of one refresh, shared by its callers.
type flight struct {
	token    string
	mode     refreshMode
	resource string // whose access token token is
	// fresh: a refresh was recorded during the flight (this process's or
	// another's), so the token satisfies any caller.
	fresh bool
}

// refreshAhead is how long before its expiry an access token is renewed:
// Config.RefreshAhead, but at most a fifth of the token's lifetime, so
// short-lived tokens are not refreshed at every request.
func (s *Service) refreshAhead(a store.MailboxAuth, resource string) time.Duration {
	ahead := s.cfg.RefreshAhead
	_, expires := accessOf(a, resource)
	if life := expires.Sub(a.LastRefreshAt); life > 0 {
		ahead = min(ahead, life/5)
	}
	return ahead
}

// satisfied returns the stored access token if mode asks for no refresh.
func (s *Service) satisfied(a store.MailboxAuth, mode refreshMode, now time.Time, resource string) (string, bool) {
	tok, ok := s.validAccess(a, now, resource)
	if !ok {
		return "", false
	}
	switch mode {
	case refreshIfDue:
		return tok, true
	case refreshUnlessRecent:
		return tok, now.Sub(a.LastRefreshAt) < recentRefresh
	}
	return "", false
}

// refreshShared runs one refresh per mailbox at a time; callers arriving
// meanwhile share its result. The refresh is not cancelled when a caller
// gives up (the provider may already have rotated the token), but Close
// waits for it. Every resource's refresh of a mailbox shares the one gate
// (they spend the same refresh token); a caller that joined a refresh for
// another resource asks again.
func (s *Service) refreshShared(ctx context.Context, mailboxID int64, mode refreshMode, resource string) (string, error) {
	key := strconv.FormatInt(mailboxID, 10)
	for range 4 {
		ch := s.refreshes.DoChan(key, func() (any, error) {
			if !s.track(mailboxID) {
				return flight{}, ErrClosed
			}
			defer s.untrack(mailboxID)
			return s.refresh(context.WithoutCancel(ctx), mailboxID, mode, resource)
		})
		var r singleflightResult
		select {
		case res := <-ch:
			r = singleflightResult{res.Val.(flight), res.Err}
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if r.err != nil {
			return "", r.err
		}
		// Joined a flight that asked for less and found the stored token
		// good enough: ask again with this caller's mode.
		if r.f.resource == resource && (r.f.fresh || r.f.mode >= mode) {
			return r.f.token, nil
		}
	}
	return "", fmt.Errorf("refresh of mailbox %d: %w", mailboxID, ErrTemporary)
}

type singleflightResult struct {
	f   flight
	err error
}

// refresh re-reads the row (a refresh that finished just before may have
// made this one unnecessary), claims the mailbox's refresh lease or waits
// for the process holding it, asks the provider, and records the outcome.
func (s *Service) refresh(ctx context.Context, mailboxID int64, mode refreshMode, resource string) (flight, error) {
	before, err := s.db.MailboxAuth(ctx, mailboxID)
	if err != nil {
		return flight{}, s.readErr(mailboxID, err)
	}
	if err := usable(before); err != nil {
		return flight{}, err
	}
	if tok, ok := s.satisfied(before, mode, s.utcNow(), resource); ok {
		return flight{token: tok, mode: mode, resource: resource}, nil
	}
	p, err := s.providerFor(before.Provider)
	if err != nil {
		return flight{}, err
	}
	waitUntil := time.Now().Add(leaseTTL + leasePoll)
	logged := false
	for {
		a, held, err := s.claim(ctx, mailboxID)
		if err != nil {
			return flight{}, err
		}
		if held {
			defer s.release(ctx, mailboxID)
		}
		if err := usable(a); err != nil {
			return flight{}, err
		}
		if refreshedSince(a, before) {
			// Another process refreshed (or an admin signed in) meanwhile.
			if tok, ok := s.validAccess(a, s.utcNow(), resource); ok {
				return flight{token: tok, mode: mode, fresh: true, resource: resource}, nil
			}
			before = a
		}
		if held {
			return s.askProvider(ctx, a, p, mode, resource)
		}
		if !logged {
			s.log.Debug("oauth refresh: another process is refreshing this mailbox; waiting for its result", "mailbox_id", mailboxID)
			logged = true
		}
		if time.Now().After(waitUntil) {
			return flight{}, &ProviderError{MailboxID: mailboxID, Op: "refresh", Failure: Failure{Kind: Temporary, Code: "refresh_busy",
				Reason: "another Postdesk process has been refreshing this mailbox's token for too long"}}
		}
		select {
		case <-time.After(leasePoll):
		case <-s.closed:
			return flight{}, ErrClosed
		}
	}
}

// refreshedSince reports whether the row's tokens were written after
// before was read.
func refreshedSince(a, before store.MailboxAuth) bool {
	return a.RefreshTokenSealed != before.RefreshTokenSealed || a.LastRefreshAt.After(before.LastRefreshAt) ||
		a.AccessTokenSealed != before.AccessTokenSealed || a.GraphAccessTokenSealed != before.GraphAccessTokenSealed
}

// claim tries once to claim the mailbox's refresh lease. It returns the row
// as read in the claiming transaction (the newest refresh token) and
// whether this process now holds the lease.
func (s *Service) claim(ctx context.Context, mailboxID int64) (a store.MailboxAuth, held bool, err error) {
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		now := time.Now() // real time: leases are shared with other processes
		c, err := tx.ClaimRefresh(ctx, mailboxID, s.owner, now, now.Add(leaseTTL))
		if err != nil {
			return err
		}
		held = c.Claimed
		a, err = tx.MailboxAuth(ctx, mailboxID)
		return err
	})
	if err != nil {
		return a, false, s.readErr(mailboxID, err)
	}
	return a, held, nil
}

// release gives the mailbox's refresh lease up.
func (s *Service) release(ctx context.Context, mailboxID int64) {
	ctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	if err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseRefresh(ctx, mailboxID, s.owner) }); err != nil {
		s.log.Warn("oauth refresh lease not released; it lapses by itself", "mailbox_id", mailboxID, "err", err)
	}
}

// askProvider exchanges the mailbox's refresh token, holding its lease, and
// records the outcome before returning the new access token.
func (s *Service) askProvider(ctx context.Context, a store.MailboxAuth, p Provider, mode refreshMode, resource string) (flight, error) {
	rt, err := s.vault.Open(a.RefreshTokenSealed, store.MailboxSecret(a.MailboxID, "refresh_token"))
	if err != nil {
		return flight{}, fmt.Errorf("refresh token of mailbox %d: %w", a.MailboxID, err)
	}
	conf := s.oauthConfig(p)
	pctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	var tok *oauth2.Token
	err = Retry(pctx, s.cfg.Retry, s.cfg.Sleep, func(ctx context.Context) error {
		var err error
		if resource == ResourceGraph {
			// A token for another resource: the same refresh token,
			// asked for that resource's scopes.
			tok, err = s.refreshFor(ctx, p, string(rt), GraphScopes(p, a.Granted()))
			return err
		}
		tok, err = conf.TokenSource(s.httpCtx(ctx), &oauth2.Token{RefreshToken: string(rt)}).Token()
		return err
	})
	sctx, cancelSave := context.WithTimeout(ctx, saveTimeout)
	defer cancelSave()
	if err != nil {
		return flight{}, s.refreshFailed(sctx, a, p, Classify(err))
	}
	if err := s.refreshed(sctx, a, p, string(rt), tok, resource); err != nil {
		return flight{}, err
	}
	return flight{token: tok.AccessToken, mode: mode, fresh: true, resource: resource}, nil
}

// saveRetrying runs fn in a write transaction, up to saveAttempts times
// while the database fails.
func (s *Service) saveRetrying(ctx context.Context, mailboxID int64, fn func(tx *store.Tx) error) error {
	var err error
	for i := range saveAttempts {
		if err = s.db.Write(ctx, fn); err == nil || ctx.Err() != nil {
			return err
		}
		s.log.Warn("oauth save refreshed token failed; trying again", "mailbox_id", mailboxID, "attempt", i+1, "err", err)
		if sleepCtx(ctx, time.Second) != nil {
			break
		}
	}
	return err
}

// track registers a refresh starting for the mailbox; false once Close
// has begun.
func (s *Service) track(mailboxID int64) bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	s.flying[mailboxID]++
	return true
}

func (s *Service) untrack(mailboxID int64) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.flying[mailboxID]--; s.flying[mailboxID] <= 0 {
		delete(s.flying, mailboxID)
	}
	s.inflight.Done()
}

// Close stops the Service from starting refreshes (they fail with
// ErrClosed; stored access tokens are still handed out) and waits until
// the refreshes in flight have recorded their outcome, so a token the
// provider has already rotated is saved before the process exits. If ctx
// ends first, it logs the mailboxes whose refresh may be lost and returns
// ctx's error. Safe to call more than once.
func (s *Service) Close(ctx context.Context) error {
	s.closeMu.Lock()
	if !s.closing {
		s.closing = true
		close(s.closed)
	}
	n := len(s.flying)
	s.closeMu.Unlock()
	if n > 0 {
		s.log.Info("waiting for token refreshes in flight", "refreshes", n)
	}
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.closeMu.Lock()
	var ids []int64
	for id := range s.flying {
		ids = append(ids, id)
	}
	s.closeMu.Unlock()
	s.log.Error("stopped before token refreshes finished: a rotated refresh token may be lost", "mailbox_ids", ids)
	return fmt.Errorf("wait for token refreshes of mailboxes %v: %w", ids, errors.Join(ctx.Err(), ErrClosed))
}
