package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// Recording attempts. A message's attempt is committed before the message
// can be sent: before dialling, and before the end of its data (the final
// "." of DATA, RFC 5321 4.1.1.4, the one point at which the server takes
// it). The commands before that end (MAIL, RCPT, DATA and the body) go
// out while the commit runs (smtpsend.Conn.SendWhen), so a durable commit
// a message costs no round trip of its own; if the attempt could not be
// recorded, the connection is closed before the end of data and the
// server drops the message (RFC 5321 3.8). A process killed at any point
// leaves at most one message in state sending: the one whose attempt was
// committed last.

// errNotRecorded is why a message was cut off before its end: its attempt
// was not recorded (the lease was lost, the message changed meanwhile, or
// the database failed).
var errNotRecorded = errors.New("the attempt to send it could not be recorded")

// recording is the commit, in flight, that records a message's attempt
// (alone, or with the previous message's sent).
type recording struct {
	done      chan struct{}
	began     bool  // the attempt was recorded
	leaseLost bool  // another sender holds the mailbox now
	err       error // the attempt's own transaction failed
}

// wait waits for the commit and returns its error.
func (r *recording) wait() error {
	<-r.done
	return r.err
}

// pending reports whether the commit is still running.
func (r *recording) pending() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// ready waits for the commit and says whether the message may be sent
// (smtpsend.Conn.SendWhen's ready; it may be called more than once).
func (r *recording) ready() error {
	if err := r.wait(); err != nil {
		return fmt.Errorf("%w: %w", errNotRecorded, err)
	}
	if !r.began {
		return errNotRecorded
	}
	return nil
}

// record runs fn in a goroutine and returns its recording.
func (s *Sender) recordAsync(mailboxID int64, fn func(r *recording)) *recording {
	r := &recording{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("outbox recording panicked", "mailbox_id", mailboxID, "panic", fmt.Sprint(p))
				r.began, r.err = false, fmt.Errorf("recording panicked: %v", p)
			}
		}()
		fn(r)
	}()
	return r
}

// beginAsync records item's attempt, renewing the lease when due.
func (s *Sender) beginAsync(ctx context.Context, st *mailboxState, item store.OutboxItem) *recording {
	return s.recordAsync(st.mb.ID, func(r *recording) {
		r.err = s.db.Write(ctx, func(tx *store.Tx) (err error) {
			r.began, r.leaseLost, err = s.beginIn(ctx, tx, st, item.ID)
			return err
		})
		if r.err != nil {
			r.began = false
		}
	})
}

// sentAsync records that the server accepted item and next's attempt, in
// one transaction.
func (s *Sender) sentAsync(ctx context.Context, st *mailboxState, item store.OutboxItem, next *dueItem) *recording {
	return s.recordAsync(st.mb.ID, func(r *recording) {
		r.began, r.leaseLost = s.sent(ctx, st, item, next)
	})
}

// beginIn records an attempt in tx, renewing the lease first when half of
// it is spent (BeginAttempt itself refuses unless the lease is live).
func (s *Sender) beginIn(ctx context.Context, tx *store.Tx, st *mailboxState, messageID int64) (began, leaseLost bool, err error) {
	now := s.now()
	if now.After(st.leaseUntil.Add(-s.opt.Lease / 2)) {
		ok, err := tx.ClaimOutbox(ctx, st.mb.ID, s.owner, now, now.Add(s.opt.Lease))
		if err != nil || !ok {
			return false, !ok, err
		}
		tx.AfterCommit(func() { st.leaseUntil = now.Add(s.opt.Lease) })
	}
	began, err = tx.BeginAttempt(ctx, messageID, s.owner, now)
	return began, false, err
}

// sent records that the server accepted item and, in the same
// transaction, the attempt of next (when given); it reports whether next's
// attempt was recorded, and whether the lease was lost. Sent is recorded
// even if ctx was cancelled.
func (s *Sender) sent(ctx context.Context, st *mailboxState, item store.OutboxItem, next *dueItem) (nextBegan, leaseLost bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := s.db.Write(rctx, func(tx *store.Tx) error {
		now := s.now()
		nextBegan, leaseLost = false, false
		if err := markSent(rctx, tx, st, item, now); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		var err error
		nextBegan, leaseLost, err = s.beginIn(rctx, tx, st, next.ID)
		return err
	})
	if err != nil {
		nextBegan, leaseLost = false, false
		s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error { return markSent(ctx, tx, st, item, now) })
	}
	s.metrics.sent.Inc()
	s.log.Info(item.What()+" sent", "mailbox_id", item.MailboxID, "message_id", item.ID, "attempt", item.Attempts+1, "recipients", len(item.Recipients))
	return nextBegan, leaseLost
}
