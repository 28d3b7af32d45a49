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
// stored) and Decide runs in a transaction that is rolled back. A mailbox
// that does not exist yet is assumed new (its first reason says so).
func (in *Ingester) Inspect(ctx context.Context, address string, raw io.Reader) (*Prepared, Decision, error) {
	h := sha256.New()
	var size countWriter
	msg, forwards, err := mailmsg.ParseForwards(io.TeeReader(raw, io.MultiWriter(h, &size)), mailmsg.ParseOptions{})
	if err != nil {
		return nil, Decision{}, fmt.Errorf("read message: %w", err)
	}
	p := &Prepared{Msg: msg, Forwards: forwards, RawSHA256: hex.EncodeToString(h.Sum(nil)), RawSize: int64(size), ReceivedAt: in.now().UTC()}
	p.DedupeKey = store.DedupeKey(msg.MessageID, p.RawSHA256)
	var d Decision
	err = in.db.Write(ctx, func(tx *store.Tx) error {
		var first []string
		mb, err := tx.MailboxByAddress(ctx, address)
		if errors.Is(err, store.ErrNotFound) {
			if mb, err = tx.CreateMailbox(ctx, address, ""); err == nil {
				first = append(first, fmt.Sprintf("mailbox %s does not exist yet: assumed new and empty", mb.Address))
			}
		}
		if err != nil {
			return err
		}
		if d, err = in.Decide(ctx, tx, mb, p); err != nil {
			return err
		}
		d.Reasons = append(first, d.Reasons...)
		return errDryRun
	})
	if !errors.Is(err, errDryRun) {
		return nil, Decision{}, fmt.Errorf("inspect: %w", err)
	}
	if d.Class == "" {
		d.Class = "new"
	}
	return p, d, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
