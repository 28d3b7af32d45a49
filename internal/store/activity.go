package store

import (
	"context"
	"fmt"
	"time"
)

// Activity kinds: what happened to a mailbox, as its card lists it.
const (
	ActivityFetch   = "fetch"    // messages fetched (Count)
	ActivityCatchUp = "catch_up" // a catch-up after a pause: Count messages that arrived between From and To
	ActivityRefresh = "refresh"  // the access token was refreshed
	ActivityError   = "error"    // fetching or a refresh failed (Message)
	ActivityAuth    = "auth"     // connected, reauthenticated, settings changed, paused, resumed
)

// MaxActivity is how many activity rows a mailbox keeps; older ones are
// deleted as new ones come.
const MaxActivity = 200

// Activity is one event in a mailbox's recent activity.
type Activity struct {
	ID        int64
	MailboxID int64
	Kind      string
	Message   string // for people, without the time: "fetched 3 messages"
	Count     int
	From, To  time.Time // the arrival times a catch-up covered
	CreatedAt time.Time
}

// RecordMailboxActivity adds an event to a mailbox's recent activity and
// keeps the newest MaxActivity.
func (tx *Tx) RecordMailboxActivity(ctx context.Context, a Activity) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	_, err := tx.exec(ctx, `INSERT INTO mailbox_activity (mailbox_id, kind, message, count, from_at, to_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.MailboxID, a.Kind, a.Message, a.Count, ms(a.From), ms(a.To), ms(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("record activity of mailbox %d: %w", a.MailboxID, err)
	}
	_, err = tx.exec(ctx, `DELETE FROM mailbox_activity WHERE mailbox_id = ? AND id <= (
		SELECT id FROM mailbox_activity WHERE mailbox_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, a.MailboxID, a.MailboxID, MaxActivity)
	if err != nil {
		return fmt.Errorf("trim activity of mailbox %d: %w", a.MailboxID, err)
	}
	return nil
}

// RecordMailboxActivity is Tx.RecordMailboxActivity in a transaction of its own.
func (db *DB) RecordMailboxActivity(ctx context.Context, a Activity) error {
	return db.Write(ctx, func(tx *Tx) error { return tx.RecordMailboxActivity(ctx, a) })
}

// MailboxActivity lists a mailbox's newest events first, at most limit.
func (c conn) MailboxActivity(ctx context.Context, mailboxID int64, limit int) ([]Activity, error) {
	rows, err := c.query(ctx, `SELECT id, mailbox_id, kind, message, count, from_at, to_at, created_at FROM mailbox_activity
		WHERE mailbox_id = ? ORDER BY id DESC LIMIT ?`, mailboxID, limit)
	if err != nil {
		return nil, fmt.Errorf("list activity of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		var a Activity
		var from, to, created int64
		if err := rows.Scan(&a.ID, &a.MailboxID, &a.Kind, &a.Message, &a.Count, &from, &to, &created); err != nil {
			return nil, err
		}
		a.From, a.To, a.CreatedAt = fromMS(from), fromMS(to), fromMS(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// fetchWindow joins the batches of one fetch into one activity entry.
const fetchWindow = 2 * time.Minute

// catchUpAge is how old the oldest message of a fetch must be for the
// fetch to count as a catch-up (mail that waited while the mailbox was
// paused, broken or not fetched).
const catchUpAge = 10 * time.Minute

// recordFetch adds a fetched batch to the mailbox's newest activity entry
// when it is a fetch or catch-up of the last fetchWindow, widening the
// arrival range it covers; else it records a new entry.
func (tx *Tx) recordFetch(ctx context.Context, mailboxID int64, f Fetched, now time.Time) error {
	kind := ActivityFetch
	if !f.From.IsZero() && now.Sub(f.From) > catchUpAge {
		kind = ActivityCatchUp
	}
	from, to := ms(f.From), ms(f.To)
	res, err := tx.exec(ctx, `UPDATE mailbox_activity SET count = count + ?, created_at = ?,
		kind = CASE WHEN CAST(? AS TEXT) = 'catch_up' THEN 'catch_up' ELSE kind END,
		from_at = CASE WHEN CAST(? AS BIGINT) > 0 AND (from_at = 0 OR CAST(? AS BIGINT) < from_at) THEN CAST(? AS BIGINT) ELSE from_at END,
		to_at = CASE WHEN CAST(? AS BIGINT) > to_at THEN CAST(? AS BIGINT) ELSE to_at END
		WHERE id = (SELECT MAX(id) FROM mailbox_activity WHERE mailbox_id = ?) AND kind IN (?, ?) AND created_at >= ?`,
		f.Count, ms(now), kind, from, from, from, to, to, mailboxID, ActivityFetch, ActivityCatchUp, ms(now.Add(-fetchWindow)))
	if err != nil {
		return fmt.Errorf("record fetch of mailbox %d: %w", mailboxID, err)
	}
	if k, err := res.RowsAffected(); err == nil && k > 0 {
		return nil
	}
	return tx.RecordMailboxActivity(ctx, Activity{MailboxID: mailboxID, Kind: kind, Count: f.Count, From: f.From, To: f.To, CreatedAt: now})
}
