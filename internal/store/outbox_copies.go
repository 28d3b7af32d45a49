package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Copies of sent mail for the Sent folder. A message sent from a mailbox
// whose server does not keep submitted mail (save_sent) waits with
// copy_pending until the sender appends it over IMAP. A drain that cannot
// append a copy counts a try on it and makes the mailbox's copies wait
// (copy_retry_at); after a few tries the copy is given up. The mail itself
// is never sent again for a copy.

// PendingCopies lists up to limit sent messages of a mailbox whose copy is
// still to be appended and is due at now, with ids above after, oldest
// first: a drain pages through them by the last id it read.
func (c conn) PendingCopies(ctx context.Context, mailboxID, after int64, now time.Time, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 100
	}
	return c.outboxList(ctx, "list copies for the Sent folder", `o.mailbox_id = ? AND o.copy_pending AND o.message_id > ?
		AND o.copy_retry_at <= ? ORDER BY o.message_id LIMIT ?`, mailboxID, after, ms(now), limit)
}

// MarkCopied records that sent messages' copies were appended to the
// Sent folder (or will not be).
func (tx *Tx) MarkCopied(ctx context.Context, messageIDs ...int64) error {
	for len(messageIDs) > 0 {
		n := min(len(messageIDs), 500)
		args := []any{false}
		for _, id := range messageIDs[:n] {
			args = append(args, id)
		}
		_, err := tx.exec(ctx, `UPDATE outbox SET copy_pending = ? WHERE message_id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return fmt.Errorf("record copies of %d sent messages: %w", n, err)
		}
		messageIDs = messageIDs[n:]
	}
	return nil
}

// CopyFailed records a drain that could not append copies to the Sent
// folder: the copy of messageID (or, when messageID is 0, every copy of
// the mailbox due at now) counts one more try, and is given up once it
// has had maxTries; every copy of the mailbox due at now and still
// pending then waits until retryAt. It returns how many copies were given
// up.
func (tx *Tx) CopyFailed(ctx context.Context, mailboxID, messageID int64, now, retryAt time.Time, maxTries int) (gaveUp int, err error) {
	which := `mailbox_id = ? AND copy_pending AND copy_retry_at <= ?`
	args := []any{mailboxID, ms(now)}
	if messageID != 0 {
		which += ` AND message_id = ?`
		args = append(args, messageID)
	}
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE `+which+` AND copy_attempts + 1 >= ?`,
		append(args, maxTries)...).Scan(&gaveUp); err != nil {
		return 0, fmt.Errorf("count copies given up for mailbox %d: %w", mailboxID, err)
	}
	if _, err := tx.exec(ctx, `UPDATE outbox SET copy_attempts = copy_attempts + 1, copy_pending = (copy_attempts + 1 < ?) WHERE `+which,
		append([]any{maxTries}, args...)...); err != nil {
		return 0, fmt.Errorf("record failed copies for mailbox %d: %w", mailboxID, err)
	}
	if _, err := tx.exec(ctx, `UPDATE outbox SET copy_retry_at = ? WHERE mailbox_id = ? AND copy_pending AND copy_retry_at <= ?`,
		ms(retryAt), mailboxID, ms(now)); err != nil {
		return 0, fmt.Errorf("postpone copies for mailbox %d: %w", mailboxID, err)
	}
	return gaveUp, nil
}
