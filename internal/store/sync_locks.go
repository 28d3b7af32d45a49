package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrLeaseLost is returned by a sync commit (CheckLease) when another
// process holds the mailbox's lease.
var ErrLeaseLost = errors.New("another process holds the mailbox's sync lease")

// ErrLocksLost is returned by SyncLocks when its connection failed: every
// advisory lock it held is gone, or will be as soon as the server notices.
// The caller stops every sync the locks covered, then calls Reopen.
var ErrLocksLost = errors.New("the sync lock connection was lost")

// SyncLockClass is the first key of mail sync's advisory locks ("PDS1");
// the second is the mailbox id (pg_locks: classid and objid, objsubid 2).
const SyncLockClass = 0x50445331

// SessionLocks reports whether the database has session advisory locks
// (PostgreSQL): mail sync then holds its mailboxes with SyncLocks instead
// of timed leases.
func (db *DB) SessionLocks() bool { return db.d().name() == "postgres" }

// SyncLocks holds one process's mail sync locks: a PostgreSQL session
// advisory lock per mailbox it syncs, all on one dedicated connection, so
// a process with 5,000 mailboxes uses one connection for them, and when it
// dies (SIGKILL, host lost) the server drops its connection and every lock
// with it at once. The process's heartbeat names that connection's backend,
// so the others count it alive exactly while its locks can be held.
//
// A method that fails on the connection returns ErrLocksLost; the holder
// must stop every sync first and then Reopen (the locks are gone).
type SyncLocks struct {
	db   *DB
	mu   sync.Mutex
	conn *sql.Conn
	held map[int64]bool
}

// lockStatementTimeout bounds each statement on the lock connection: one
// that hangs is a lost connection.
const lockStatementTimeout = 5 * time.Second

// OpenSyncLocks takes a dedicated connection from the pool for the
// process's sync locks (PostgreSQL only).
func (db *DB) OpenSyncLocks(ctx context.Context) (*SyncLocks, error) {
	if !db.SessionLocks() {
		return nil, fmt.Errorf("sync locks: %s has no session advisory locks", db.Dialect())
	}
	l := &SyncLocks{db: db, held: map[int64]bool{}}
	if err := l.open(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *SyncLocks) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, lockStatementTimeout)
	defer cancel()
	c, err := l.db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open the sync lock connection: %w", err)
	}
	// The server notices a lost host within seconds (keepalives and
	// tcp_user_timeout), not after the kernel's two hours: its locks are
	// then free for the other processes.
	_, err = c.ExecContext(ctx, `SELECT set_config('tcp_keepalives_idle', '2', false), set_config('tcp_keepalives_interval', '1', false),
		set_config('tcp_keepalives_count', '3', false), set_config('tcp_user_timeout', '5000', false)`)
	if err != nil {
		c.Close()
		return fmt.Errorf("configure the sync lock connection: %w", err)
	}
	l.conn = c
	return nil
}

// lost closes a failed connection (returning it to the pool broken: the
// pool discards it) and forgets the locks.
func (l *SyncLocks) lost(err error) error {
	l.discard()
	return fmt.Errorf("%w: %w", ErrLocksLost, err)
}

// discard ends the lock session and drops the connection from the pool:
// it never goes back to the pool with locks (or its settings) on it.
func (l *SyncLocks) discard() {
	if l.conn != nil {
		_ = l.conn.Raw(func(dc any) error {
			if c, ok := dc.(interface{ Close() error }); ok {
				c.Close() // ends the server session: its locks go with it
			}
			return driver.ErrBadConn // database/sql discards the connection
		})
		l.conn.Close()
		l.conn = nil
	}
	clear(l.held)
}

// Heartbeat records owner as alive on the lock connection (its backend pid
// and start time), removes processes not seen since since, and returns how
// many syncers are alive: seen since since and with their lock connection
// still open on the server.
func (l *SyncLocks) Heartbeat(ctx context.Context, owner string, now, since time.Time) (live int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return 0, fmt.Errorf("%w: not reopened", ErrLocksLost)
	}
	ctx, cancel := context.WithTimeout(ctx, lockStatementTimeout)
	defer cancel()
	_, err = l.conn.ExecContext(ctx, `INSERT INTO sync_processes (owner, seen_at, backend_pid, backend_start)
		SELECT $1, $2, pid, (extract(epoch FROM backend_start) * 1000)::bigint FROM pg_stat_activity WHERE pid = pg_backend_pid()
		ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at, backend_pid = excluded.backend_pid,
		backend_start = excluded.backend_start`, owner, ms(now))
	if err != nil {
		return 0, l.lost(fmt.Errorf("record sync heartbeat: %w", err))
	}
	if _, err := l.conn.ExecContext(ctx, `DELETE FROM sync_processes WHERE seen_at < $1`, ms(since)); err != nil {
		return 0, l.lost(fmt.Errorf("remove stale sync heartbeats: %w", err))
	}
	err = l.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_processes p JOIN pg_stat_activity a
		ON a.pid = p.backend_pid AND (extract(epoch FROM a.backend_start) * 1000)::bigint = p.backend_start`).Scan(&live)
	if err != nil {
		return 0, l.lost(fmt.Errorf("count live syncers: %w", err))
	}
	return live, nil
}

// TryLock takes, without waiting, the locks of at most max of the
// mailboxes ids (in their order; ids already held are skipped) and returns
// the ones it took. One statement, whatever the number.
func (l *SyncLocks) TryLock(ctx context.Context, ids []int64, max int) ([]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil, fmt.Errorf("%w: not reopened", ErrLocksLost)
	}
	var want []int64
	for _, id := range ids {
		if !l.held[id] {
			want = append(want, id)
		}
	}
	if len(want) == 0 || max <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lockStatementTimeout)
	defer cancel()
	// No ORDER BY: the LIMIT stops the scan, so no lock is taken beyond max.
	rows, err := l.conn.QueryContext(ctx, `SELECT id FROM unnest($1::bigint[]) AS t(id)
		WHERE pg_try_advisory_lock($2, id::int) LIMIT $3`, want, SyncLockClass, max)
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "53200" {
			// Locks taken before the failure stay with the session: it
			// is discarded all the same, and the operator must act.
			err = fmt.Errorf("%w (the lock table is full: raise PostgreSQL's max_locks_per_transaction, see docs/scaling.md)", err)
		}
		return nil, l.lost(fmt.Errorf("take sync locks: %w", err))
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, l.lost(err)
		}
		l.held[id] = true
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		return nil, l.lost(fmt.Errorf("take sync locks: %w", err))
	}
	return got, nil
}

// Unlock gives up the locks of the mailboxes (those held; others are
// ignored).
func (l *SyncLocks) Unlock(ctx context.Context, ids ...int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var mine []int64
	for _, id := range ids {
		if l.held[id] {
			mine = append(mine, id)
			delete(l.held, id)
		}
	}
	if len(mine) == 0 || l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lockStatementTimeout)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1, id::int) FROM unnest($2::bigint[]) AS t(id)`, SyncLockClass, mine)
	if err != nil {
		return l.lost(fmt.Errorf("release sync locks: %w", err))
	}
	return nil
}

// Held reports whether the mailbox's lock is held (as far as this process
// knows: the connection may have died since its last statement).
func (l *SyncLocks) Held(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[id]
}

// Reopen replaces a lost connection with a new one holding no lock. Call
// it only once every sync the old locks covered has stopped.
func (l *SyncLocks) Reopen(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.discard()
	return l.open(ctx)
}

// Close releases every lock by ending the lock session.
func (l *SyncLocks) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.discard()
	return nil
}
