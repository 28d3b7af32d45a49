package mailsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

// syncBatch is how many fetched messages commit in one transaction (with
// their checkpoint). Larger batches amortise the commit; the checkpoint
// still never passes a message that is not committed.
const syncBatch = 64

// syncStore is a Fetcher's Store: one mailbox in the database. Messages go
// through ingest's ApplyBatch, and each batch commits with its cursor move.
type syncStore struct {
	db      *store.DB
	ingest  *ingest.Ingester
	mailbox store.Mailbox
	now     func() time.Time
	// ahead is the transport's order of cursors (nil: always replace).
	ahead   func(stored, next Cursor) bool
	pending []pendingMessage
	onBatch func(results []ingest.Result)
	// owner, when set, fences every commit: it must hold the mailbox's
	// lease row (store.Tx.CheckLease), or nothing commits and lost is
	// called (the session is stopped).
	owner   string
	lost    func()
	workers chan struct{} // parse slots

	// Full batches commit in the background, in order, while the next
	// batch streams in; Flush waits for them. After a failed commit every
	// later batch is dropped (committing it would move the checkpoint past
	// the failed messages) until the session starts over.
	commits  chan queuedBatch
	inflight sync.WaitGroup
	errMu    sync.Mutex
	err      error
}

type pendingMessage struct {
	parsed           chan parseResult // the parse running in the background
	folder           string
	cursor           Cursor // the folder's cursor once this message is committed
	uidValidity, uid uint32
	stored           ingest.Stored // its raw source, kept if it must be quarantined
	received         time.Time     // when the server received it (else when fetched)
}

type parseResult struct {
	p   *ingest.Prepared
	err error
}

// parseWorkers bounds the messages parsed at once while the connection
// streams the next ones in.
const parseWorkers = 3

var _ Store = (*syncStore)(nil)

// Cursor returns the folder's cursor.
func (s *syncStore) Cursor(ctx context.Context, folder string) (Cursor, error) {
	// Commit what is pending (another folder's tail); after a failure,
	// drop it and start clean: those messages are refetched from the
	// cursor.
	_ = s.Flush(ctx)
	s.setErr(nil)
	c, err := s.db.SyncCursor(ctx, s.mailbox.ID, folder)
	return Cursor(c), err
}

// Handle writes the raw message to the blob store (the one step that must
// read the connection) and parses it in the background, so the next
// message streams in meanwhile; Flush waits for the parses and commits.
func (s *syncStore) Handle(ctx context.Context, m *Message) error {
	stored, err := s.ingest.Store(m.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Where, err)
	}
	if s.workers == nil {
		s.workers = make(chan struct{}, parseWorkers)
	}
	pm := pendingMessage{parsed: make(chan parseResult, 1), folder: m.Folder, stored: stored, received: s.now().UTC(),
		cursor: m.Cursor, uidValidity: m.UIDValidity, uid: m.UID}
	if !m.InternalDate.IsZero() && m.InternalDate.Before(pm.received) {
		pm.received = m.InternalDate.UTC()
	}
	select {
	case s.workers <- struct{}{}:
	case <-ctx.Done():
		s.ingest.Release(stored, nil)
		return ctx.Err()
	}
	where, size, truncated, internal := m.Where, m.Size, m.Truncated, m.InternalDate
	go func() {
		defer func() { <-s.workers }()
		p, err := s.ingest.Parse(ctx, stored)
		if err != nil {
			pm.parsed <- parseResult{err: fmt.Errorf("%s: %w", where, err)}
			return
		}
		if !internal.IsZero() {
			p.ReceivedAt = internal.UTC()
			if now := s.now().UTC(); p.ReceivedAt.After(now) {
				p.ReceivedAt = now
			}
		}
		if truncated {
			p.Msg.Problems = append(p.Msg.Problems, fmt.Sprintf("the message is %.1f MB, over the size limit: only its headers were fetched; open it in the mailbox (%s)",
				float64(size)/(1<<20), where))
			if p.Msg.Text == "" {
				p.Msg.Text = "(This message was too large to fetch; only its headers were kept.)"
			}
		}
		pm.parsed <- parseResult{p: p}
	}()
	s.pending = append(s.pending, pm)
	if len(s.pending) >= syncBatch {
		return s.submit()
	}
	if err := s.failed(); err != nil {
		s.discard(s.pending)
		s.pending = nil
		return err
	}
	return nil
}

func (s *syncStore) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *syncStore) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if err == nil || s.err == nil {
		s.err = err
	}
}

// submit hands the pending batch to the background committer (waiting
// while one batch is already queued) and reports an earlier failure.
func (s *syncStore) submit() error {
	if err := s.failed(); err != nil {
		s.discard(s.pending)
		s.pending = nil
		return err
	}
	if len(s.pending) == 0 {
		return nil
	}
	if s.commits == nil {
		s.commits = make(chan queuedBatch, 1)
		go s.committer()
	}
	q := queuedBatch{msgs: s.pending, flushed: make(chan error, 1)}
	s.pending = nil
	// The batch's blobs (all stored by now) are flushed to disk while the
	// batch waits for the committer and is parsed: the writer waited for
	// each flush (a tenth of a 10,000-message fetch), and waiting for it
	// inside the transaction would hold SQLite's one writer meanwhile.
	go func() { q.flushed <- s.db.Blobs().Sync() }()
	s.inflight.Add(1)
	s.commits <- q
	return nil
}

// queuedBatch is a batch handed to the committer, and the result of the
// flush of its blobs.
type queuedBatch struct {
	msgs    []pendingMessage
	flushed chan error
}

func (s *syncStore) committer() {
	for q := range s.commits {
		if s.failed() != nil {
			s.discard(q.msgs)
		} else if err := s.commit(q.msgs, q.flushed); err != nil {
			s.setErr(err)
		}
		s.inflight.Done()
	}
}

// discard waits for a dropped batch's parses, so none outlives it, and
// releases their blobs (the messages are fetched again).
func (s *syncStore) discard(batch []pendingMessage) {
	for _, pm := range batch {
		r := <-pm.parsed
		s.ingest.Release(pm.stored, r.p)
	}
}

// close stops the committer after the queued batches, and drops what
// was handled but never submitted (fetched again next time).
func (s *syncStore) close() {
	if s.commits != nil {
		close(s.commits)
		s.inflight.Wait()
	}
	s.discard(s.pending)
	s.pending = nil
}

// Flush commits everything handled so far (the last partial batch too)
// and returns once it is committed, or the first failure.
func (s *syncStore) Flush(ctx context.Context) error {
	if err := s.submit(); err != nil {
		return err
	}
	s.inflight.Wait()
	return s.failed()
}

// commit commits one batch and its checkpoint in one transaction. When
// that fails for any reason but a transient one (another writer stored one
// of the messages first, a message the database refuses, a message that
// did not parse), the batch is retried one message per transaction: a
// message stored by another writer is a duplicate, and a message that
// still fails is quarantined, its checkpoint moving past it in the same
// transaction. A transient failure commits nothing: the session refetches
// from the checkpoint. A commit in progress finishes even when the session
// is cancelled: it is short, and its work is correct.
func (s *syncStore) commit(batch []pendingMessage, flushed <-chan error) error {
	err := s.commitBatch(batch, flushed)
	if errors.Is(err, store.ErrLeaseLost) && s.lost != nil {
		s.lost()
	}
	return err
}

func (s *syncStore) commitBatch(batch []pendingMessage, flushed <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prepared := make([]*ingest.Prepared, len(batch))
	parseErrs := make([]error, len(batch))
	var transient error
	failed := false
	for i, pm := range batch {
		r := <-pm.parsed // wait for every parse, even after a failure, so none outlives the batch
		prepared[i], parseErrs[i] = r.p, r.err
		if r.err != nil {
			failed = true
			if transient == nil && s.ingest.Transient(ctx, r.err) {
				transient = r.err
			}
		}
	}
	defer func() {
		// Committed (the database holds them) or given up (fetched again).
		for i, pm := range batch {
			s.ingest.Release(pm.stored, prepared[i])
		}
	}()
	if transient != nil {
		return transient // nothing committed: the session refetches from the checkpoint
	}
	// Its blobs on disk before any row naming them commits (submit
	// started the flush); a failed flush commits nothing, and the batch is
	// fetched again.
	if err := <-flushed; err != nil {
		return err
	}
	var results []ingest.Result
	var err error
	if !failed {
		err = s.db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if results, err = s.ingest.ApplyBatch(ctx, tx, s.mailbox, prepared); err != nil {
				return err
			}
			return s.commitCheckpoints(ctx, tx, batch)
		})
		if err != nil && (errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrConflict) && s.ingest.Transient(ctx, err)) {
			return fmt.Errorf("commit %d fetched messages: %w", len(batch), err)
		}
	}
	if failed || err != nil {
		// One by one, the messages before a failure are committed, and
		// counted.
		results, err = s.oneByOne(ctx, batch, prepared, parseErrs)
	}
	if s.onBatch != nil && len(results) > 0 {
		s.onBatch(results)
	}
	if err != nil {
		return fmt.Errorf("commit %d fetched messages: %w", len(batch), err)
	}
	return nil
}

// oneByOne commits each message of a batch in its own transaction with its
// checkpoint, quarantining the messages that fail. It stops at the first
// transient failure: the messages from there on are refetched.
func (s *syncStore) oneByOne(ctx context.Context, batch []pendingMessage, prepared []*ingest.Prepared, parseErrs []error) ([]ingest.Result, error) {
	var results []ingest.Result
	for i, pm := range batch {
		cause := parseErrs[i]
		if cause == nil {
			var res ingest.Result
			apply := func(tx *store.Tx) error {
				results, err := s.ingest.ApplyBatch(ctx, tx, s.mailbox, prepared[i:i+1])
				if err != nil {
					return err
				}
				res = results[0]
				return s.commitCheckpoints(ctx, tx, []pendingMessage{pm})
			}
			err := s.db.Write(ctx, apply)
			if errors.Is(err, store.ErrConflict) {
				// Stored concurrently by another process (after a lease
				// takeover)? Applied again, it is a duplicate; a conflict
				// again is this message's own failure.
				err = s.db.Write(ctx, apply)
			}
			switch {
			case err == nil:
				results = append(results, res)
				continue
			case errors.Is(err, store.ErrLeaseLost), s.ingest.Transient(ctx, err):
				return results, err
			}
			cause = err
		}
		f := ingest.Failed{Origin: store.OriginSync, Folder: pm.folder, UIDValidity: pm.uidValidity, UID: pm.uid,
			Stored: pm.stored, ReceivedAt: pm.received, Err: cause}
		_, err := s.ingest.Quarantine(ctx, s.mailbox, f, func(tx *store.Tx) error {
			return s.commitCheckpoints(ctx, tx, []pendingMessage{pm})
		})
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// commitCheckpoints moves each folder's cursor to its last message in the
// batch (never behind a cursor another writer moved further) and counts
// the messages for today's status.
func (s *syncStore) commitCheckpoints(ctx context.Context, tx *store.Tx, batch []pendingMessage) error {
	if err := s.fence(ctx, tx); err != nil {
		return err
	}
	last := map[string]Cursor{}
	f := store.Fetched{Count: len(batch)}
	for _, pm := range batch {
		last[pm.folder] = pm.cursor
		if f.From.IsZero() || pm.received.Before(f.From) {
			f.From = pm.received
		}
		if pm.received.After(f.To) {
			f.To = pm.received
		}
	}
	now := s.now().UTC()
	for folder, c := range last {
		if err := s.setCursor(ctx, tx, folder, c, now); err != nil {
			return err
		}
	}
	return tx.CountSyncedMessages(ctx, s.mailbox.ID, f, now)
}

func (s *syncStore) setCursor(ctx context.Context, tx *store.Tx, folder string, c Cursor, now time.Time) error {
	if s.ahead != nil {
		stored, err := tx.SyncCursor(ctx, s.mailbox.ID, folder)
		if err != nil {
			return err
		}
		if s.ahead(Cursor(stored), c) {
			return nil
		}
	}
	return tx.SetSyncCursor(ctx, s.mailbox.ID, folder, string(c), now)
}

// Advance commits what is pending, then moves the folder's cursor.
func (s *syncStore) Advance(ctx context.Context, folder string, c Cursor) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		return s.setCursor(ctx, tx, folder, c, s.now().UTC())
	})
	if errors.Is(err, store.ErrLeaseLost) && s.lost != nil {
		s.lost()
	}
	return err
}

// fence checks, in the committing transaction, that this process still
// holds the mailbox (see store.Tx.CheckLease).
func (s *syncStore) fence(ctx context.Context, tx *store.Tx) error {
	if s.owner == "" {
		return nil
	}
	return tx.CheckLease(ctx, s.mailbox.ID, s.owner)
}

// Skipped tells the admins which messages a catch-up left out, and why.
func (s *syncStore) Skipped(ctx context.Context, folder string, which []string, reason string) error {
	if len(which) == 0 {
		return nil
	}
	list := make([]string, 0, min(len(which), 20))
	for i, w := range which {
		if i == 20 {
			list = append(list, fmt.Sprintf("and %d more", len(which)-20))
			break
		}
		list = append(list, w)
	}
	msg := fmt.Sprintf("%s: %d messages in %s were not fetched: %s (%s). They are still in the mailbox; forward any that matter to the support address.",
		s.mailbox.Address, len(which), folder, reason, strings.Join(list, ", "))
	return s.db.Write(ctx, func(tx *store.Tx) error {
		return tx.AddNotice(ctx, &store.Notice{MailboxID: s.mailbox.ID, Kind: "sync_skipped", Message: msg, CreatedAt: s.now().UTC()})
	})
}
