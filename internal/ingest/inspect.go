package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// errDryRun rolls back an inspection's transaction.
var errDryRun = errors.New("dry run")

// Inspect tells what ingesting raw into the mailbox would do, changing
// nothing: the message is parsed in memory (attachments are hashed, not
// stored) and applied in a transaction that is rolled back. A mailbox that
// does not exist yet is assumed new.
func (in *Ingester) Inspect(ctx context.Context, address string, raw io.Reader) (*Prepared, Result, error) {
	h := sha256.New()
	var size countWriter
	msg, forwards, err := mailmsg.ParseForwards(io.TeeReader(raw, io.MultiWriter(h, &size)), mailmsg.ParseOptions{})
	if err != nil {
		return nil, Result{}, fmt.Errorf("read message: %w", err)
	}
	p := &Prepared{Msg: msg, Forwards: forwards, RawSHA256: hex.EncodeToString(h.Sum(nil)), RawSize: int64(size), ReceivedAt: in.now().UTC()}
	p.DedupeKey = store.DedupeKey(msg.MessageID, p.RawSHA256)
	var res Result
	err = in.db.Write(ctx, func(tx *store.Tx) error {
		mb, err := tx.MailboxByAddress(ctx, address)
		if errors.Is(err, store.ErrNotFound) {
			if mb, err = tx.CreateMailbox(ctx, address, ""); err == nil {
				res.Decisions = append(res.Decisions, fmt.Sprintf("mailbox %s does not exist yet: assumed new and empty", mb.Address))
			}
		}
		if err != nil {
			return err
		}
		first := res.Decisions
		results, err := in.ApplyBatch(ctx, tx, mb, []*Prepared{p})
		if err != nil {
			return err
		}
		res = results[0]
		res.Decisions = append(first, res.Decisions...)
		return errDryRun
	})
	if !errors.Is(err, errDryRun) {
		return nil, Result{}, fmt.Errorf("inspect: %w", err)
	}
	if res.Class == "" {
		res.Class = "new"
	}
	return p, res, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
