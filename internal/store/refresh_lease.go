package store

import (
	"context"
	"fmt"
	"time"
)

// RefreshClaim is the outcome of ClaimRefresh.
type RefreshClaim struct {
	// Claimed reports whether the caller now holds the mailbox's refresh
	// lease; if not, Owner holds it until Until.
	Claimed bool
	Owner   string
	Until   time.Time
}

// ClaimRefresh claims the refresh lease of a mailbox's authorization for
// owner until until, unless another owner holds one that has not lapsed by
// now (compare-and-swap: of two processes claiming at once, one wins). A
// mailbox without an authorization row is ErrNotFound.
func (tx *Tx) ClaimRefresh(ctx context.Context, mailboxID int64, owner string, now, until time.Time) (RefreshClaim, error) {
	res, err := tx.exec(ctx, `UPDATE mailbox_auth SET refresh_owner = ?, refresh_until = ?
		WHERE mailbox_id = ? AND (refresh_owner = '' OR refresh_owner = ? OR refresh_until <= ?)`,
		owner, ms(until), mailboxID, owner, ms(now))
	if err != nil {
		return RefreshClaim{}, fmt.Errorf("claim the refresh of mailbox %d: %w", mailboxID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return RefreshClaim{}, err
	} else if n == 1 {
		return RefreshClaim{Claimed: true, Owner: owner, Until: until}, nil
	}
	var c RefreshClaim
	var u int64
	err = tx.queryRow(ctx, `SELECT refresh_owner, refresh_until FROM mailbox_auth WHERE mailbox_id = ?`, mailboxID).Scan(&c.Owner, &u)
	c.Until = fromMS(u)
	return c, one(err)
}

// ReleaseRefresh gives up owner's refresh lease of a mailbox, if it still
// holds it.
func (tx *Tx) ReleaseRefresh(ctx context.Context, mailboxID int64, owner string) error {
	_, err := tx.exec(ctx, `UPDATE mailbox_auth SET refresh_owner = '', refresh_until = 0
		WHERE mailbox_id = ? AND refresh_owner = ?`, mailboxID, owner)
	if err != nil {
		return fmt.Errorf("release the refresh of mailbox %d: %w", mailboxID, err)
	}
	return nil
}
