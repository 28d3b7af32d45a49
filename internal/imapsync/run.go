package imapsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// SyncOnce connects, syncs every folder once and logs out. It returns the
// number of messages handed to Store.Handle, and an *AuthError when the
// server refused the credentials.
func SyncOnce(ctx context.Context, cfg Config, st Store) (fetched int, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return 0, err
	}
	s, err := connect(ctx, &cfg, st)
	if err != nil {
		return 0, err
	}
	defer s.close()
	fetched, err = s.syncAll(ctx)
	if ctx.Err() != nil {
		return fetched, ctx.Err()
	}
	return fetched, err
}

// Run keeps the mailbox synced until ctx ends (it then returns ctx.Err()),
// or until the server refuses the credentials (it returns the *AuthError)
// or a credential function fails with ErrPermanent. A server ending the
// session normally while Postdesk waits for mail (ErrSessionEnded) is a
// reconnect logged at info. Any other failure
// (network, server restart, a Handle error) is reported as an EventError
// and retried after a jittered exponential back-off that starts again from
// BackoffMin after a successful sync. events, if not nil, is called from
// Run's goroutine and must not block.
//
// An idle session waits at the bottom of Run's call chain, so Run's frame
// is kept small: cfg is a pointer, and the normalised copy and the
// handling of a session's end live in functions of their own.
func Run(ctx context.Context, cfg *Config, st Store, events func(Event)) error {
	c, err := normalized(cfg)
	if err != nil {
		return err
	}
	r := &sessionRunner{cfg: c, events: events, bo: backoff{min: c.BackoffMin, max: c.BackoffMax}}
	for {
		if c.Pace != nil {
			if err := c.Pace(ctx); err != nil {
				return err
			}
		}
		synced, err := runSession(ctx, c, st, r.emit)
		if err := r.ended(ctx, synced, err); err != nil {
			return err
		}
	}
}

// normalized returns a normalised copy of cfg.
func normalized(cfg *Config) (*Config, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// sessionRunner is what Run keeps between sessions.
type sessionRunner struct {
	cfg    *Config
	events func(Event)
	bo     backoff
}

func (r *sessionRunner) emit(e Event) {
	if r.events != nil {
		e.At = time.Now()
		r.events(e)
	}
}

// ended handles the end of a session: it returns the error that ends Run,
// or nil after waiting the back-off before the next session.
func (r *sessionRunner) ended(ctx context.Context, synced bool, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if ae := (*AuthError)(nil); errors.As(err, &ae) {
		r.cfg.Logger.Warn("imap authentication refused; stopping until re-authentication", "error", err)
		r.emit(Event{Kind: EventAuthFailed, Err: err})
		return err
	}
	if errors.Is(err, ErrPermanent) {
		r.cfg.Logger.Warn("imap session stopped", "error", err)
		r.emit(Event{Kind: EventError, Err: err})
		return err
	}
	if synced {
		r.bo.reset()
	}
	d := r.bo.next()
	if errors.Is(err, ErrSessionEnded) {
		// A normal end (Exchange's hourly one): no error to report.
		r.cfg.Logger.Info("imap server ended the session; reconnecting", "reason", err, "retry_in", d.Round(time.Millisecond))
	} else {
		r.emit(Event{Kind: EventError, Err: err})
		r.cfg.Logger.Warn("imap session failed; reconnecting", "error", err, "retry_in", d.Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runSession runs one connection: sync, then wait for mail with IDLE or
// poll, and sync again, until an error. synced reports whether a sync
// succeeded (the back-off then restarts).
func runSession(ctx context.Context, cfg *Config, st Store, emit func(Event)) (synced bool, err error) {
	s, err := connect(ctx, cfg, st)
	if err != nil {
		return false, err
	}
	defer s.close()
	emit(Event{Kind: EventConnected})
	idle := s.hasIdle() && !cfg.NoIdle
	if !idle {
		s.log.Info("imap polling", "interval", cfg.PollInterval, "server_has_idle", s.hasIdle())
	}
	for {
		n, err := s.syncAll(ctx)
		if err != nil {
			return synced, err
		}
		synced = true
		emit(Event{Kind: EventSynced, Fetched: n})
		if idle {
			err = s.idle(ctx, func() { emit(Event{Kind: EventIdling}) })
		} else {
			emit(Event{Kind: EventIdling})
			err = s.sleep(ctx, cfg.PollInterval)
		}
		if err != nil {
			return synced, err
		}
	}
}

// idle waits in IDLE (RFC 2177, RFC 9051 6.3.13) on the selected first
// folder until the server announces a new message with EXISTS, IdleRestart
// passes (PollInterval with more than one folder, whose others cannot be
// watched), or the connection ends. started is called once the server
// accepted IDLE.
func (s *session) idle(ctx context.Context, started func()) error {
	d := s.cfg.IdleRestart
	if len(s.cfg.Folders) > 1 {
		d = min(d, s.cfg.PollInterval)
	}
	// Up to a fifth earlier, at random: sessions started together do not
	// restart IDLE (and sync) together for ever after.
	d -= rand.N(d/5 + 1)
	var cmd interface {
		Close() error
		Wait() error
	}
	err := s.wait(func() (err error) {
		cmd, err = s.c.Idle()
		return err
	})
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	started()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.wake:
		s.log.Debug("imap idle: new message announced")
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
		if err := s.bye.ended(); err != nil && ctx.Err() == nil {
			return err
		}
	}
	// DONE (RFC 2177 3), then the tagged OK.
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("end idle: %w", err)
	}
	if err := s.wait(cmd.Wait); err != nil {
		return fmt.Errorf("end idle: %w", err)
	}
	return nil
}

// sleep waits d between polls, ending early if the connection closes.
func (s *session) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.c.Closed():
		if err := s.bye.ended(); err != nil {
			return err
		}
		return errors.New("connection closed by the server")
	}
}

// backoff is a jittered exponential delay: each delay is drawn from
// [d/2, d] where d doubles from min up to max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }
