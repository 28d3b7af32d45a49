package store

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// SQLite copies its write-ahead log into the database file (a checkpoint,
// with an fsync of the file) when a commit makes the log pass
// wal_autocheckpoint pages, and that commit waits for it: one write in a
// few hundred stalled for milliseconds. A checkpointer does the copy on its
// own connection instead, soon after writes, while writers go on (PASSIVE:
// it never waits for them nor they for it). The writer keeps a larger
// threshold of its own as a safety net, should the checkpointer fall behind.
const (
	// checkpointEvery is the most often the checkpointer runs while
	// writes keep coming; it does not run while none come.
	checkpointEvery = 250 * time.Millisecond
	// writerAutoCheckpoint is the writer's own threshold, in pages (SQLite's
	// default is 1,000).
	writerAutoCheckpoint = 8000
)

type checkpointer struct {
	conn    *sql.DB
	log     *slog.Logger
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

func newCheckpointer(conn *sql.DB, log *slog.Logger) *checkpointer {
	c := &checkpointer{conn: conn, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// wrote tells the checkpointer that a transaction committed (it never
// blocks).
func (c *checkpointer) wrote() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	var last time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if wait := checkpointEvery - time.Since(last); wait > 0 {
			select {
			case <-c.stop:
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var busy, logPages, copied int
		err := c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
		cancel()
		if err != nil {
			c.log.Warn("checkpoint the database's write-ahead log (the writers do it themselves meanwhile)", "err", err)
		}
	}
}

// close stops the checkpointer and closes its connection (the last
// connection to close checkpoints the whole log). Like DB.Close, it may be
// called more than once.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.closing.Do(func() {
		close(c.stop)
		<-c.done
	})
	return c.conn.Close()
}
