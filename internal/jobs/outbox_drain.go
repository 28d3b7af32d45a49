package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// maxRounds bounds how often one drain takes the lease again for work
// that arrived meanwhile (the sweep does the rest).
const maxRounds = 5

// recordTimeout bounds writing an outcome, which must happen even when the
// drain's context was cancelled (a message the server accepted is recorded
// sent).
const recordTimeout = 30 * time.Second

// drain holds a mailbox's lease and sends its due outbox, then looks again
// for work queued meanwhile.
func (s *Sender) drain(ctx context.Context, mailboxID int64) error {
	for range maxRounds {
		var claimed bool
		err := s.db.Write(ctx, func(tx *store.Tx) (err error) {
			now := s.now()
			claimed, err = tx.ClaimOutbox(ctx, mailboxID, s.owner, now, now.Add(s.opt.Lease))
			return err
		})
		if err != nil || !claimed {
			return err // another process is sending: it looks again after releasing
		}
		stopKeeping := s.keepLease(ctx, mailboxID)
		err = s.drainClaimed(ctx, mailboxID)
		stopKeeping()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		if rerr := s.db.Write(rctx, func(tx *store.Tx) error { return tx.ReleaseOutbox(rctx, mailboxID, s.owner) }); rerr != nil {
			s.log.Warn("release outbox lease", "mailbox_id", mailboxID, "err", rerr)
		}
		cancel()
		if err != nil || ctx.Err() != nil || s.stopped() {
			return err
		}
		more, err := s.db.HasOutboxWork(ctx, mailboxID, s.now())
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// keepLease renews the lease on a mailbox's outbox every third of its
// length until the returned function is called (and has waited for the
// renewal in flight). One message can take longer than a lease (a slow
// answer to the end of its data, a large attachment, Graph's throttling):
// renewed only between messages, the lease lapsed mid-send, and another
// process took the mailbox and called the message's outcome unknown while
// this one still waited for it.
//
// It goes on after ctx ends (a shutdown past its deadline, the job
// stopped): the message in flight is still awaited, not abandoned, and
// its lease must outlast it.
func (s *Sender) keepLease(ctx context.Context, mailboxID int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.opt.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var ok bool
			err := s.db.Write(ctx, func(tx *store.Tx) (err error) {
				now := s.now()
				ok, err = tx.ClaimOutbox(ctx, mailboxID, s.owner, now, now.Add(s.opt.Lease))
				return err
			})
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.log.Warn("renew outbox lease", "mailbox_id", mailboxID, "err", err)
			case !ok:
				// It lapsed (the database was out of reach for a whole
				// lease) and another process holds it: the next attempt
				// finds out and stops.
				s.log.Warn("outbox lease lost to another process", "mailbox_id", mailboxID)
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// mailboxState is what a drain reads about its mailbox once.
type mailboxState struct {
	mb     store.Mailbox
	srv    store.MailboxServer
	auth   store.MailboxAuth
	noSMTP bool
	// told: mailbox-wide causes already recorded as a notice in this drain.
	told map[smtpsend.Kind]bool
	// leaseUntil is when this drain's lease lapses unless renewed.
	leaseUntil time.Time
}

func (s *Sender) loadMailbox(ctx context.Context, id int64) (*mailboxState, error) {
	st := &mailboxState{told: map[smtpsend.Kind]bool{}}
	var err error
	if st.mb, err = s.db.Mailbox(ctx, id); err != nil {
		return nil, err
	}
	st.srv, err = s.db.MailboxServer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		st.noSMTP = true
	} else if err != nil {
		return nil, err
	}
	// A mailbox that sends through Graph needs no SMTP server.
	st.noSMTP = st.noSMTP || st.mb.Removed() || (!st.srv.SendsWithGraph() && (st.srv.SMTPHost == "" || st.srv.SMTPPort == 0))
	st.auth, err = s.db.MailboxAuth(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return st, nil
}

// drainClaimed sends a mailbox's due outbox in order while holding its lease.
func (s *Sender) drainClaimed(ctx context.Context, id int64) error {
	st, err := s.loadMailbox(ctx, id)
	if err != nil {
		return err
	}
	// What a sender that died left sending: its outcome is unknown.
	stranded, err := s.db.OutboxItems(ctx, id, store.DeliverySending, 0)
	if err != nil {
		return err
	}
	if len(stranded) > 0 {
		s.resolveUnknown(ctx, st, stranded, "the sender stopped (the process ended or lost its lease) after recording the attempt")
	}
	if st.noSMTP {
		return s.failAll(ctx, st, "the mailbox has no SMTP settings (or was removed), so nothing can be sent from it")
	}
	if st.auth.HoldsReplies() {
		return s.hold(ctx, id)
	}
	sess := s.newSubmitter(st)
	defer sess.close()
	q := &dueQueue{mailboxID: id}
	var cur *dueItem   // the message to send now
	var rec *recording // the commit of cur's attempt, in flight
	for {
		if cur == nil {
			if s.stopped() || ctx.Err() != nil {
				break
			}
			item, err := s.nextDue(ctx, q)
			if err != nil {
				return err
			}
			if item == nil {
				break
			}
			cur, rec = item, s.beginAsync(ctx, st, item.OutboxItem)
		}
		item, r := cur, rec
		cur, rec = nil, nil
		// The message's commands and data go out while its attempt is
		// being committed; its end waits for the commit (r.ready), and
		// while it waits the next message's source is read.
		sendErr := sess.send(ctx, item.OutboxItem, item.raw, func() error {
			if r.pending() {
				s.readAhead(ctx, q)
			}
			return r.ready()
		})
		if err := r.wait(); err != nil || r.leaseLost {
			return err // the new holder of the lease sends it
		}
		if !r.began {
			q.reset() // changed meanwhile, or not recorded: it was not sent; read the queue again
			continue
		}
		if sendErr != nil {
			if stop := s.outcome(ctx, st, item.OutboxItem, sendErr); stop {
				break
			}
			continue
		}
		// Sent: record it together with the next message's attempt, one
		// commit a message, while the next message goes out.
		var after *dueItem
		if !s.stopped() && ctx.Err() == nil {
			var err error
			if after, err = s.nextDue(ctx, q); err != nil {
				s.log.Warn("read the outbox", "mailbox_id", id, "err", err)
				after = nil
			}
		}
		if after == nil {
			s.sent(ctx, st, item.OutboxItem, nil)
			continue
		}
		cur, rec = after, s.sentAsync(ctx, st, item.OutboxItem, after)
	}
	sess.close()
	s.appendCopies(ctx, st)
	return nil
}

// dueItem is a queued message with its source.
type dueItem struct {
	store.OutboxItem
	raw []byte
}

// dueQueue reads a mailbox's queued messages ahead, in order.
type dueQueue struct {
	mailboxID int64
	items     []store.OutboxItem
	ahead     []byte // the source of items[0] when read ahead, else nil
}

func (q *dueQueue) reset() { q.items, q.ahead = nil, nil }

// readAhead reads the source of the next queued message, if it is known
// and not read yet (a failure is left to nextDue).
func (s *Sender) readAhead(ctx context.Context, q *dueQueue) {
	if len(q.items) == 0 || q.ahead != nil {
		return
	}
	if raw, err := s.readRaw(ctx, q.items[0]); err == nil {
		q.ahead = raw
	}
}

// prefetch is how many queued messages are read at once.
const prefetch = 64

// nextDue returns the mailbox's next queued message, due now, with its
// source; nil when there is none or the next one waits for a retry (it is
// scheduled then: the ones after it wait too, order is kept).
func (s *Sender) nextDue(ctx context.Context, q *dueQueue) (*dueItem, error) {
	for {
		if len(q.items) == 0 {
			items, err := s.db.OutboxItems(ctx, q.mailboxID, store.DeliveryQueued, prefetch)
			if err != nil {
				return nil, err
			}
			if len(items) == 0 {
				return nil, nil
			}
			q.items = items
		}
		item := q.items[0]
		if item.NextAttemptAt.After(s.now()) {
			s.wakeAt(q.mailboxID, item.NextAttemptAt)
			q.reset()
			return nil, nil
		}
		if item.ErrorKind == store.Released && item.What() == "reply" {
			wait, err := s.checkReleased(ctx, item)
			if err != nil {
				return nil, err
			}
			switch {
			case wait > 0:
				s.wakeAt(q.mailboxID, s.now().Add(wait))
				q.reset()
				return nil, nil
			case wait < 0: // failed: the customer wrote again
				q.items, q.ahead = q.items[1:], nil
				continue
			}
		}
		q.items = q.items[1:]
		raw, err := q.ahead, error(nil)
		q.ahead = nil
		if raw == nil {
			raw, err = s.readRaw(ctx, item)
		}
		if errors.Is(err, store.ErrNotFound) {
			s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
				return tx.MarkFailed(ctx, item.ID, "config", "the stored email is missing from Postdesk's storage (the data folder, or the database on PostgreSQL)", now)
			})
			continue
		}
		if err != nil {
			return nil, err
		}
		return &dueItem{OutboxItem: item, raw: raw}, nil
	}
}

// markSent records that the server accepted item, and counts the send in
// the mailbox's activity ("Sent N emails" on Admin -> Emails: replies,
// acknowledgements and notifications alike, all of which left its address).
func markSent(ctx context.Context, tx *store.Tx, st *mailboxState, item store.OutboxItem, now time.Time) error {
	// Graph files what it sent in Sent Items itself: no copy to append.
	if err := tx.MarkSent(ctx, item.ID, now, st.srv.SaveSent && !st.srv.SendsWithGraph()); err != nil {
		return err
	}
	return tx.RecordSentActivity(ctx, item.MailboxID, now)
}

func (s *Sender) readRaw(ctx context.Context, item store.OutboxItem) ([]byte, error) {
	f, err := s.db.Blobs().Open(ctx, item.RawSHA256)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// record writes an outcome even when ctx was cancelled meanwhile: fn gets
// a context of its own (not cancelled with ctx, ending after
// recordTimeout) for its statements.
func (s *Sender) record(ctx context.Context, item store.OutboxItem, fn func(ctx context.Context, tx *store.Tx, now time.Time) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.db.Write(rctx, func(tx *store.Tx) error { return fn(rctx, tx, s.now()) }); err != nil {
		s.log.Error("record outgoing message's outcome", "mailbox_id", item.MailboxID, "message_id", item.ID, "err", err)
	}
}

// outcome records what became of a failed attempt and reports whether
// the drain stops (the rest of the mailbox's outbox waits, in order).
func (s *Sender) outcome(ctx context.Context, st *mailboxState, item store.OutboxItem, err error) (stop bool) {
	log := s.log.With("mailbox_id", item.MailboxID, "message_id", item.ID)
	kind := smtpsend.KindOf(err)
	words := serverWords(err)
	switch {
	case errors.Is(err, oauth.ErrNeedsReauth), errors.Is(err, oauth.ErrNotConnected):
		// The provider refused the token for good: oauth recorded why.
		s.metrics.failures.WithLabelValues("auth_failed").Inc()
		s.requeueAndHold(ctx, item, "auth_failed", words)
		log.Warn("mailbox needs re-authentication: its outbox is held")
		return true
	case errors.Is(err, oauth.ErrHostNotTrusted):
		kind = smtpsend.KindConfig
	}
	label := kind.String()
	if kind == 0 {
		label = "temporary"
	}
	s.metrics.failures.WithLabelValues(label).Inc()
	log.Warn(item.What()+" not sent", "kind", label, "attempt", item.Attempts+1, "err", err)
	switch kind {
	case smtpsend.KindOutcomeUnknown:
		item.State = store.DeliverySending
		s.resolveUnknown(ctx, st, []store.OutboxItem{item}, "the connection was lost after the whole email was handed to the mail server, before its answer")
		return false
	case smtpsend.KindAuthFailed:
		s.needsReauth(ctx, st, words)
		s.requeueAndHold(ctx, item, "auth_failed", words)
		return true
	case smtpsend.KindAuthDisabled, smtpsend.KindSendAsDenied:
		s.mailboxWide(ctx, st, kind, words)
		s.fail(ctx, item, label, words)
		return false
	case smtpsend.KindRecipientUnknown, smtpsend.KindPermanent:
		s.fail(ctx, item, label, words)
		return false
	case smtpsend.KindConfig:
		s.mailboxWide(ctx, st, kind, words)
	}
	// Temporary, throttled, a configuration that may be fixed, anything
	// else: try again later, keeping order.
	now := s.now()
	if now.Sub(item.QueuedAt) > s.opt.GiveUp { // since it was last queued: a reply held for days gets its full time once released
		s.fail(ctx, item, label, fmt.Sprintf("gave up after %d attempts over %s; last: %s", item.Attempts+1, s.opt.GiveUp, words))
		return false
	}
	next := now.Add(s.backoff(item.Attempts + 1))
	s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
		return tx.MarkRetry(ctx, item.ID, label, words, next, now)
	})
	s.wakeAt(item.MailboxID, next)
	return true
}

func (s *Sender) fail(ctx context.Context, item store.OutboxItem, kind, words string) {
	s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
		return tx.MarkFailed(ctx, item.ID, kind, words, now)
	})
}

// failAll fails every queued and held message of a mailbox that cannot send.
func (s *Sender) failAll(ctx context.Context, st *mailboxState, why string) error {
	for _, state := range []string{store.DeliveryQueued, store.DeliveryHeld} {
		items, err := s.db.OutboxItems(ctx, st.mb.ID, state, 0)
		if err != nil {
			return err
		}
		for _, item := range items {
			s.metrics.failures.WithLabelValues("config").Inc()
			s.fail(ctx, item, "config", why)
		}
	}
	return nil
}

// hold holds a mailbox's queued mail until it is authorized again.
func (s *Sender) hold(ctx context.Context, mailboxID int64) error {
	var n int
	err := s.db.Write(ctx, func(tx *store.Tx) (err error) {
		n, err = tx.HoldQueued(ctx, mailboxID, s.now())
		return err
	})
	if n > 0 {
		s.log.Info("outbox held until the mailbox is reauthenticated", "mailbox_id", mailboxID, "count", n)
	}
	return err
}

// requeueAndHold puts an attempt that never reached the server back in
// the queue and holds the mailbox's outbox.
func (s *Sender) requeueAndHold(ctx context.Context, item store.OutboxItem, kind, words string) {
	s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
		if err := tx.MarkRetry(ctx, item.ID, kind, words, time.Time{}, now); err != nil {
			return err
		}
		_, err := tx.HoldQueued(ctx, item.MailboxID, now)
		return err
	})
}

// backoff is the jittered wait after the n-th consecutive failure.
func (s *Sender) backoff(n int) time.Duration {
	b := s.opt.Backoff
	d := b[min(max(n, 1), len(b))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// wakeAt schedules the mailbox's send job for t (a retry's time); the
// sweep is the fallback.
func (s *Sender) wakeAt(mailboxID int64, t time.Time) {
	s.mu.Lock()
	r := s.runner
	s.mu.Unlock()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	opts := SendRepliesArgs{}.InsertOpts()
	opts.ScheduledAt = t
	if _, err := r.Client().Insert(ctx, SendRepliesArgs{MailboxID: mailboxID}, &opts); err != nil {
		s.log.Warn("schedule the outbox's next attempt", "mailbox_id", mailboxID, "err", err)
	}
}

// serverWords is what an error says, on one line: the server's reply when
// there was one.
func serverWords(err error) string {
	var e *smtpsend.Error
	if errors.As(err, &e) && e.Code != 0 {
		w := fmt.Sprint(e.Code)
		if e.Enhanced != "" {
			w += " " + e.Enhanced
		}
		if e.Message != "" {
			w += " " + e.Message
		}
		return w
	}
	return err.Error()
}

// checkReleased decides a reply released after a sign-in (ReleaseHeld):
// if the customer wrote on the ticket after the reply was written, the
// reply fails with "stale" so that its author reads the new email first
// (wait < 0); while the mailbox's mail sync has not caught up (for at
// most CatchUpWait) it waits (wait > 0), as that email may still come;
// otherwise it goes (0). It went out before the catch-up, answering mail
// its author never saw.
func (s *Sender) checkReleased(ctx context.Context, item store.OutboxItem) (wait time.Duration, err error) {
	newer, err := s.db.NewerCustomerEmail(ctx, item.TicketID, max(item.ID, item.AnsweredThrough))
	switch {
	case err == nil: // decided as soon as it is here
		s.stale(ctx, item, newer)
		return -1, nil
	case !errors.Is(err, store.ErrNotFound):
		return 0, err
	}
	st, err := s.db.SyncStatus(ctx, item.MailboxID)
	if err != nil {
		return 0, err
	}
	// Up to date: the session fetched everything and waits for new mail
	// (after the sign-in, or all along if it never lost its connection).
	// An up-to-date state is not written again for minutes, so its time
	// says nothing; a session that failed shows "error" until it is back.
	caughtUp := st.UpdatedAt.IsZero() || // never fetched (an import-only mailbox): nothing to wait for
		st.State.UpToDate()
	if !caughtUp && s.now().Before(item.QueuedAt.Add(s.opt.CatchUpWait)) {
		return 2 * time.Second, nil
	}
	return 0, nil
}

// stale fails a released reply the customer's newer email overtook.
func (s *Sender) stale(ctx context.Context, item store.OutboxItem, newer store.Message) {
	who := cmp.Or(newer.FromAddress, "the customer")
	s.log.Info("released reply not sent: the customer wrote again while it was held", "mailbox_id", item.MailboxID, "message_id", item.ID, "newer_message_id", newer.ID)
	s.record(ctx, item, func(ctx context.Context, tx *store.Tx, now time.Time) error {
		return tx.MarkFailed(ctx, item.ID, "stale", fmt.Sprintf("%s wrote again while this reply was held (their email of %s)",
			who, newer.ReceivedAt.UTC().Format("2 Jan 2006 15:04 UTC")), now)
	})
}
