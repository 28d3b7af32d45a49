package oauth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Errors a mailbox's token can fail with; test with errors.Is.
var (
	// ErrNeedsReauth: the provider refused for good; an admin must sign in again.
	ErrNeedsReauth = errors.New("mailbox needs re-authentication")
	// ErrProviderFault: the provider refused the application (client secret).
	ErrProviderFault = errors.New("provider refused the application")
	// ErrTemporary: the provider or network failed; retry after a while.
	ErrTemporary = errors.New("provider temporarily unavailable")
	// ErrNotConnected: the mailbox has no OAuth authorization yet.
	ErrNotConnected = errors.New("mailbox is not connected with OAuth")
	// ErrClosed: the Service is shutting down and starts no new refresh.
	ErrClosed = errors.New("oauth service is shutting down: no new token refresh")
)

// ProviderError is a classified token failure of one mailbox. Its text is
// the classification (reason and code), never the provider's raw answer, so
// it cannot carry a token into a log or a page.
type ProviderError struct {
	MailboxID int64
	Op        string // "refresh", "exchange", "token"
	Failure
	// RetryAfter suggests when to try again (Temporary only): jittered,
	// growing with consecutive failures of the mailbox.
	RetryAfter time.Duration
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("%s token of mailbox %d: %s (%s)", e.Op, e.MailboxID, e.Reason, e.Code)
}

// Is matches ErrNeedsReauth, ErrProviderFault or ErrTemporary by kind.
func (e *ProviderError) Is(target error) bool {
	switch target {
	case ErrNeedsReauth:
		return e.Kind == Permanent
	case ErrProviderFault:
		return e.Kind == ProviderFault
	case ErrTemporary:
		return e.Kind == Temporary
	}
	return false
}

// Errors of the Connect / Reauthenticate flow; Complete returns them in a
// *FlowError whose Message is for the admin.
var (
	ErrStateUnknown   = errors.New("unknown sign-in state")
	ErrStateExpired   = errors.New("sign-in state expired")
	ErrStateUsed      = errors.New("sign-in state already used")
	ErrStateSession   = errors.New("sign-in state of another session")
	ErrSignInRefused  = errors.New("provider refused the sign-in")
	ErrCodeRejected   = errors.New("authorization code rejected")
	ErrWrongAccount   = errors.New("signed in with another account")
	ErrUnknownAccount = errors.New("signed-in account unknown")
)

// FlowError is a refused Connect / Reauthenticate callback. Message says
// what happened and what to do; whether anything changed is Changed, for
// the surface to say in its own words (Message never does).
type FlowError struct {
	Err       error  // one of the ErrState..., ErrSignInRefused, ... values
	MailboxID int64  // 0 when the state was not recognised
	Code      string // the provider's error or AADSTS code, if any
	Message   string // what happened and what to do, in plain words
	// Changed reports that the refused callback changed something about
	// the mailbox. Complete refuses before any write, so it is false today;
	// surfaces say "nothing was changed" from it, not from Message.
	Changed bool
}

func (e *FlowError) Error() string { return e.Message }
func (e *FlowError) Unwrap() error { return e.Err }

// Backoff paces retries: attempt n waits Base*2^n, at most Max, jittered
// down to between half and all of it.
type Backoff struct {
	Attempts int // total tries, including the first
	Base     time.Duration
	Max      time.Duration
}

// DefaultBackoff is three tries, 1 s then 2 s (jittered), at most 30 s.
var DefaultBackoff = Backoff{Attempts: 3, Base: time.Second, Max: 30 * time.Second}

// Delay is the wait after the attempt-th failure (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Retry calls fn until it succeeds, fails other than temporarily (see
// Classify), or b.Attempts tries are spent, sleeping b.Delay between tries.
func Retry(ctx context.Context, b Backoff, sleep func(context.Context, time.Duration) error, fn func(context.Context) error) error {
	if sleep == nil {
		sleep = sleepCtx
	}
	attempts := max(b.Attempts, 1)
	var err error
	for i := range attempts {
		if err = fn(ctx); err == nil || Classify(err).Kind != Temporary {
			return err
		}
		if i == attempts-1 {
			break
		}
		if serr := sleep(ctx, b.Delay(i)); serr != nil {
			return err
		}
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
