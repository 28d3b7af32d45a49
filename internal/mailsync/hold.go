package mailsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// holder is how this process holds the mailboxes it syncs: timed leases
// (SQLite, one host) or PostgreSQL session advisory locks on one dedicated
// connection. Both keep a lease row per mailbox naming its holder, which
// every commit checks (store.Tx.CheckLease).
type holder interface {
	// beat records this process as alive and returns how many syncers
	// are. An error wrapping store.ErrLocksLost means every mailbox this
	// process held may be another's now: stop them all, then reset.
	beat(ctx context.Context, now time.Time) (live int, err error)
	// renew keeps the held mailboxes and returns those lost meanwhile.
	renew(ctx context.Context, held []int64, now time.Time) (lost []int64, err error)
	// acquire takes at most n of ids (in order) and returns those taken.
	acquire(ctx context.Context, ids []int64, n int, now time.Time) ([]int64, error)
	// release gives a mailbox up once its session has ended.
	release(ctx context.Context, id int64)
	// reset starts again, holding nothing, after store.ErrLocksLost.
	reset(ctx context.Context) error
	// close gives everything up (shutdown).
	close(ctx context.Context)
}

// leaseHolder holds mailboxes with timed leases: a process that dies
// stops renewing, and another takes over once the lease has expired.
type leaseHolder struct {
	db    *store.DB
	owner string
	ttl   time.Duration
}

func (h *leaseHolder) beat(ctx context.Context, now time.Time) (live int, err error) {
	err = h.db.Write(ctx, func(tx *store.Tx) error {
		live, err = tx.Heartbeat(ctx, h.owner, now, now.Add(-h.ttl))
		return err
	})
	return live, err
}

// renew extends every lease of this process in one statement, then lists
// them: a held mailbox missing from the list expired and was taken over.
func (h *leaseHolder) renew(ctx context.Context, held []int64, now time.Time) ([]int64, error) {
	still, err := renewLeases(ctx, h.db, h.owner, now.Add(h.ttl))
	if err != nil {
		return nil, err
	}
	return missing(held, still), nil
}

// renewLeases extends every lease owner holds to expires, in one
// statement, and lists the mailboxes it still holds.
func renewLeases(ctx context.Context, db *store.DB, owner string, expires time.Time) ([]int64, error) {
	var still []int64
	err := db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.RenewLeases(ctx, owner, expires); err != nil {
			return err
		}
		var err error
		still, err = tx.LeasedBy(ctx, owner)
		return err
	})
	return still, err
}

func (h *leaseHolder) acquire(ctx context.Context, ids []int64, n int, now time.Time) ([]int64, error) {
	var got []int64
	err := h.db.Write(ctx, func(tx *store.Tx) error {
		got = got[:0]
		for _, id := range ids {
			if len(got) >= n {
				break
			}
			ok, err := tx.AcquireLease(ctx, id, h.owner, now, now.Add(h.ttl))
			if err != nil {
				return err
			}
			if ok {
				got = append(got, id)
			}
		}
		return nil
	})
	return got, err
}

func (h *leaseHolder) release(ctx context.Context, id int64) {
	_ = h.db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseLease(ctx, id, h.owner) })
}

func (h *leaseHolder) reset(context.Context) error { return nil }

func (h *leaseHolder) close(ctx context.Context) {
	_ = h.db.Write(ctx, func(tx *store.Tx) error { return tx.RemoveHeartbeat(ctx, h.owner) })
}

// lockHolder holds mailboxes with PostgreSQL session advisory locks, all
// on one connection (store.SyncLocks): when this process dies its
// connection closes and the locks go with it, so the others take its
// mailboxes over at their next round. The lease rows only fence commits
// (claimed right after the lock is taken) and show the holder; their
// expiry is renewed in one statement, for display.
type lockHolder struct {
	db    *store.DB
	locks *store.SyncLocks
	owner string
	ttl   time.Duration
}

func (h *lockHolder) beat(ctx context.Context, now time.Time) (int, error) {
	if h.locks == nil {
		return 0, fmt.Errorf("%w: not opened yet", store.ErrLocksLost) // the first round opens it (reset)
	}
	return h.locks.Heartbeat(ctx, h.owner, now, now.Add(-h.ttl))
}

func (h *lockHolder) renew(ctx context.Context, held []int64, now time.Time) ([]int64, error) {
	still, err := renewLeases(ctx, h.db, h.owner, now.Add(h.ttl))
	if err != nil {
		return nil, err
	}
	var lost []int64
	for _, id := range missing(held, still) {
		if h.locks == nil || !h.locks.Held(id) {
			lost = append(lost, id) // cannot happen while the connection lives
		}
	}
	return lost, nil
}

func (h *lockHolder) acquire(ctx context.Context, ids []int64, n int, now time.Time) ([]int64, error) {
	if h.locks == nil {
		return nil, nil
	}
	got, err := h.locks.TryLock(ctx, ids, n)
	if err != nil || len(got) == 0 {
		return nil, err
	}
	err = h.db.Write(ctx, func(tx *store.Tx) error { return tx.ClaimLeases(ctx, got, h.owner, now.Add(h.ttl)) })
	if err != nil {
		return nil, errors.Join(fmt.Errorf("claim the leases of %d mailboxes: %w", len(got), err), h.locks.Unlock(ctx, got...))
	}
	return got, nil
}

// release removes the lease row first, then unlocks: the next holder
// claims the row anyway, but a row never outlives its lock by choice.
func (h *lockHolder) release(ctx context.Context, id int64) {
	_ = h.db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseLease(ctx, id, h.owner) })
	if h.locks != nil {
		_ = h.locks.Unlock(ctx, id)
	}
}

// reset opens the lock connection (first round) or replaces a lost one.
func (h *lockHolder) reset(ctx context.Context) error {
	if h.locks == nil {
		locks, err := h.db.OpenSyncLocks(ctx)
		if err != nil {
			return err
		}
		h.locks = locks
		return nil
	}
	return h.locks.Reopen(ctx)
}

func (h *lockHolder) close(ctx context.Context) {
	_ = h.db.Write(ctx, func(tx *store.Tx) error { return tx.RemoveHeartbeat(ctx, h.owner) })
	if h.locks != nil {
		_ = h.locks.Close()
	}
}

// missing returns the ids of held that are not in still.
func missing(held, still []int64) []int64 {
	in := make(map[int64]bool, len(still))
	for _, id := range still {
		in[id] = true
	}
	var out []int64
	for _, id := range held {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}
