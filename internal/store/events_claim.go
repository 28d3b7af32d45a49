package store

import (
	"context"
	"fmt"
)

// ClaimEvent returns the event id if it is not yet dispatched, locked like
// ClaimEvents's (ErrNotFound: dispatched already, or on PostgreSQL held by
// another dispatcher). The dispatcher uses it to retry a failed batch one
// event at a time.
func (tx *Tx) ClaimEvent(ctx context.Context, id int64) (Event, error) {
	q := `SELECT ` + eventCols + ` FROM events WHERE id = ? AND dispatched_at = 0`
	if tx.d.name() == "postgres" {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	e, err := scanEvent(tx.queryRow(ctx, q, id))
	if err != nil {
		if err = one(err); err == ErrNotFound {
			return Event{}, err
		}
		return Event{}, fmt.Errorf("claim event %d: %w", id, err)
	}
	return e, nil
}
