package ingest

import (
	"context"
	"slices"

	"github.com/postdesk/postdesk/internal/store"
)

// ApplyBatch is the one place where prepared messages become ticket
// changes: mail sync, import, retry and the demo all come through here. It
// applies ps in order in the caller's transaction (which may also move a
// checkpoint or resolve a quarantine row), reading our own addresses once
// for the batch. Once tx commits, and only then, each message is counted in
// /metrics (postdesk_messages_ingested_total{outcome},
// postdesk_tickets_created_total) and logged on one line with its mailbox,
// outcome and ticket (never its body).
//
// It returns store.ErrConflict (wrapped) if a concurrent writer stored one
// of the messages first; the transaction must then be rolled back, and
// applying that message again in a new transaction finds it a duplicate.
func (in *Ingester) ApplyBatch(ctx context.Context, tx *store.Tx, mb store.Mailbox, ps []*Prepared) ([]Result, error) {
	own, err := in.ownAddresses(ctx, tx)
	if err != nil {
		return nil, err
	}
	if len(ps) >= bulkBatch {
		tx.BulkLoad()
	}
	// Each mailbox an email is addressed to commits its copy in a batch
	// of its own; copyInOtherMailbox takes a lock per email. Taken here,
	// all at once and in one order, two batches holding the same emails in
	// another order never wait for each other crosswise (PostgreSQL broke
	// such a deadlock after a second by failing one batch, fetched again).
	var keys []string
	for _, p := range ps {
		if p.Msg != nil && p.Msg.MessageID != "" && namesOtherMailbox(p.Msg, mb, own) {
			keys = append(keys, store.DedupeKey(p.Msg.MessageID, ""))
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if err := tx.LockMessageKey(ctx, k); err != nil {
			return nil, err
		}
	}
	if len(ps) > 1 {
		// Each email's duplicate check, one statement for the batch,
		// once the locks are held (on PostgreSQL another writer may
		// commit one of the emails while this batch waits for them).
		keys := make([]string, 0, len(ps))
		for _, p := range ps {
			if p.DedupeKey != "" {
				keys = append(keys, p.DedupeKey)
			}
		}
		if err := tx.PrefetchDedupeKeys(ctx, mb.ID, keys); err != nil {
			return nil, err
		}
	}
	results := make([]Result, 0, len(ps))
	for _, p := range ps {
		res, err := in.apply(ctx, tx, mb, p, own)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	tx.AfterCommit(func() {
		for _, res := range results {
			in.applied(mb, res)
		}
	})
	return results, nil
}

// bulkBatch is the size from which a batch is part of a bulk load (a
// mailbox's backlog, an import): on SQLite, the search documents of the
// tickets it creates or grows are built once the load pauses rather than
// at its commit (store.Tx.BulkLoad). New mail arrives a message or a few
// at a time, and is searchable at once.
const bulkBatch = 16

// applied counts and logs one committed message.
func (in *Ingester) applied(mb store.Mailbox, res Result) {
	in.metrics.observe(res)
	in.log.Info("ingested message", "mailbox_id", mb.ID, "outcome", res.Outcome, "ticket_id", res.TicketID,
		"message_id", res.MessageID, "reason", res.Reason)
}
