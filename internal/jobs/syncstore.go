package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

// syncBatch is how many fetched messages commit in one transaction (with
// their checkpoint). Larger batches amortise the commit; the checkpoint
// still never passes a message that is not committed.
const syncBatch = 64

// syncStore is imapsync's view of one mailbox in the database: messages go
// through ingest, and each batch commits with its checkpoint move.
type syncStore struct {
	db      *store.DB
	ingest  *ingest.Ingester
	mailbox store.Mailbox
	now     func() time.Time
	pending []pendingMessage
	onBatch func(results []ingest.Result)
}

type pendingMessage struct {
	p      *ingest.Prepared
	folder string
	cp     store.Checkpoint
}

var _ imapsync.Flusher = (*syncStore)(nil)

func (s *syncStore) Checkpoint(ctx context.Context, folder string) (imapsync.Checkpoint, error) {
	cp, err := s.db.Checkpoint(ctx, s.mailbox.ID, folder)
	return imapsync.Checkpoint{Folder: folder, UIDValidity: cp.UIDValidity, LastUID: cp.LastUID}, err
}

// Handle stores the raw message as blobs and parses it (no database write),
// then queues it for the next commit.
func (s *syncStore) Handle(ctx context.Context, m *imapsync.Message) error {
	p, err := s.ingest.Prepare(ctx, m.Body)
	if err != nil {
		return fmt.Errorf("uid %d: %w", m.UID, err)
	}
	if !m.InternalDate.IsZero() {
		p.ReceivedAt = m.InternalDate.UTC()
		if now := s.now().UTC(); p.ReceivedAt.After(now) {
			p.ReceivedAt = now
		}
	}
	if m.Truncated {
		p.Msg.Problems = append(p.Msg.Problems, fmt.Sprintf("the message is %.1f MB, over the size limit: only its headers were fetched; open it in the mailbox (%s, UID %d)",
			float64(m.Size)/(1<<20), m.Folder, m.UID))
		if p.Msg.Text == "" {
			p.Msg.Text = "(This message was too large to fetch; only its headers were kept.)"
		}
	}
	s.pending = append(s.pending, pendingMessage{p: p, folder: m.Folder,
		cp: store.Checkpoint{MailboxID: s.mailbox.ID, Folder: m.Folder, UIDValidity: m.UIDValidity, LastUID: m.UID}})
	if len(s.pending) >= syncBatch {
		return s.Flush(ctx)
	}
	return nil
}

// Flush commits the queued messages and their checkpoint in one
// transaction. If another writer stored one of them first (another process
// after a lease takeover), the batch is retried one message per
// transaction, and a conflict is a duplicate.
func (s *syncStore) Flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	batch := s.pending
	var results []ingest.Result
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		results = results[:0]
		for _, pm := range batch {
			res, err := s.ingest.Apply(ctx, tx, s.mailbox, pm.p)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return s.commitCheckpoints(ctx, tx, batch)
	})
	if errors.Is(err, store.ErrConflict) {
		results, err = s.flushOneByOne(ctx, batch)
	}
	if err != nil {
		return fmt.Errorf("commit %d fetched messages: %w", len(batch), err)
	}
	s.pending = s.pending[:0]
	if s.onBatch != nil {
		s.onBatch(results)
	}
	return nil
}

func (s *syncStore) flushOneByOne(ctx context.Context, batch []pendingMessage) ([]ingest.Result, error) {
	var results []ingest.Result
	for _, pm := range batch {
		var res ingest.Result
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			var err error
			if res, err = s.ingest.Apply(ctx, tx, s.mailbox, pm.p); err != nil {
				return err
			}
			return s.commitCheckpoints(ctx, tx, []pendingMessage{pm})
		})
		if errors.Is(err, store.ErrConflict) {
			res = ingest.Result{Outcome: ingest.Duplicate, Reason: "stored concurrently by another process"}
			err = s.db.Write(ctx, func(tx *store.Tx) error { return s.commitCheckpoints(ctx, tx, []pendingMessage{pm}) })
		}
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// commitCheckpoints moves each folder's checkpoint to its last message in
// the batch and counts the messages for today's status.
func (s *syncStore) commitCheckpoints(ctx context.Context, tx *store.Tx, batch []pendingMessage) error {
	last := map[string]store.Checkpoint{}
	for _, pm := range batch {
		last[pm.folder] = pm.cp
	}
	now := s.now().UTC()
	for _, cp := range last {
		if err := tx.SetCheckpoint(ctx, cp, now); err != nil {
			return err
		}
	}
	return tx.CountSyncedMessages(ctx, s.mailbox.ID, len(batch), now)
}

func (s *syncStore) Reset(ctx context.Context, folder string, uidValidity uint32) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *store.Tx) error {
		return tx.ResetCheckpoint(ctx, s.mailbox.ID, folder, uidValidity, s.now().UTC())
	})
}

func (s *syncStore) Advance(ctx context.Context, cp imapsync.Checkpoint) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *store.Tx) error {
		return tx.SetCheckpoint(ctx, store.Checkpoint{MailboxID: s.mailbox.ID, Folder: cp.Folder, UIDValidity: cp.UIDValidity, LastUID: cp.LastUID}, s.now().UTC())
	})
}

// Skipped tells the admins which messages a catch-up left out, and why.
func (s *syncStore) Skipped(ctx context.Context, folder string, uids []uint32, reason string) error {
	if len(uids) == 0 {
		return nil
	}
	list := make([]string, 0, min(len(uids), 20))
	for i, u := range uids {
		if i == 20 {
			list = append(list, fmt.Sprintf("and %d more", len(uids)-20))
			break
		}
		list = append(list, fmt.Sprint(u))
	}
	msg := fmt.Sprintf("%s: %d messages in %s were not fetched: %s (UIDs %s). They are still in the mailbox; forward any that matter to the support address.",
		s.mailbox.Address, len(uids), folder, reason, strings.Join(list, ", "))
	return s.db.Write(ctx, func(tx *store.Tx) error {
		return tx.AddNotice(ctx, &store.Notice{MailboxID: s.mailbox.ID, Kind: "sync_skipped", Message: msg, CreatedAt: s.now().UTC()})
	})
}
