package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Kinds of sign-in throttle.
const (
	ThrottleAccount = "account" // Subject is the lower-cased email typed
	ThrottleIP      = "ip"      // Subject is the client's IP address
)

// Throttle counts the failed sign-ins of one account or one client IP.
// The back-off it implies is the auth package's decision; the store only
// keeps the count, so every process sharing the database sees it.
type Throttle struct {
	Kind         string
	Subject      string
	Failures     int
	LastFailedAt time.Time
}

// LockThrottle returns the throttle of kind and subject (zero failures when
// there is none), locking its row until the transaction ends so that two
// processes counting at once cannot lose a failure.
func (tx *Tx) LockThrottle(ctx context.Context, kind, subject string) (Throttle, error) {
	// The row must exist to be locked on PostgreSQL.
	if _, err := tx.exec(ctx, `INSERT INTO signin_throttles (kind, subject, failures, last_failed_at)
		VALUES (?, ?, 0, 0) ON CONFLICT (kind, subject) DO NOTHING`, kind, subject); err != nil {
		return Throttle{}, fmt.Errorf("lock %s throttle: %w", kind, err)
	}
	t := Throttle{Kind: kind, Subject: subject}
	var last int64
	err := tx.queryRow(ctx, `SELECT failures, last_failed_at FROM signin_throttles WHERE kind = ? AND subject = ?`+tx.d.forUpdate(),
		kind, subject).Scan(&t.Failures, &last)
	if err != nil {
		return Throttle{}, fmt.Errorf("lock %s throttle: %w", kind, err)
	}
	if last != 0 {
		t.LastFailedAt = fromMS(last)
	}
	return t, nil
}

// Throttle returns the throttle of kind and subject, with zero failures
// when there is none.
func (c conn) Throttle(ctx context.Context, kind, subject string) (Throttle, error) {
	t := Throttle{Kind: kind, Subject: subject}
	var last int64
	err := c.queryRow(ctx, `SELECT failures, last_failed_at FROM signin_throttles WHERE kind = ? AND subject = ?`, kind, subject).
		Scan(&t.Failures, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Throttle{}, fmt.Errorf("read %s throttle: %w", kind, err)
	}
	if last != 0 {
		t.LastFailedAt = fromMS(last)
	}
	return t, nil
}

// PutThrottle stores a throttle; one with no failures is removed.
func (tx *Tx) PutThrottle(ctx context.Context, t Throttle) error {
	if t.Failures <= 0 {
		_, err := tx.DeleteThrottle(ctx, t.Kind, t.Subject)
		return err
	}
	_, err := tx.exec(ctx, `INSERT INTO signin_throttles (kind, subject, failures, last_failed_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, subject) DO UPDATE SET failures = excluded.failures, last_failed_at = excluded.last_failed_at`,
		t.Kind, t.Subject, t.Failures, ms(t.LastFailedAt))
	if err != nil {
		return fmt.Errorf("store %s throttle: %w", t.Kind, err)
	}
	return nil
}

// DeleteThrottle forgets the failures of an account or IP and reports
// whether there were any.
func (tx *Tx) DeleteThrottle(ctx context.Context, kind, subject string) (bool, error) {
	res, err := tx.exec(ctx, `DELETE FROM signin_throttles WHERE kind = ? AND subject = ?`, kind, subject)
	if err != nil {
		return false, fmt.Errorf("clear %s throttle: %w", kind, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Throttles lists every account and IP with failed sign-ins, the most
// recent first.
func (c conn) Throttles(ctx context.Context) ([]Throttle, error) {
	rows, err := c.query(ctx, `SELECT kind, subject, failures, last_failed_at FROM signin_throttles
		WHERE failures > 0 ORDER BY last_failed_at DESC, kind, subject`)
	if err != nil {
		return nil, fmt.Errorf("list sign-in throttles: %w", err)
	}
	defer rows.Close()
	var out []Throttle
	for rows.Next() {
		var t Throttle
		var last int64
		if err := rows.Scan(&t.Kind, &t.Subject, &t.Failures, &last); err != nil {
			return nil, fmt.Errorf("list sign-in throttles: %w", err)
		}
		t.LastFailedAt = fromMS(last)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteStaleThrottles removes throttles whose last failure is before
// cutoff (their back-off has long passed) and returns how many.
func (tx *Tx) DeleteStaleThrottles(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM signin_throttles WHERE last_failed_at < ?`, ms(cutoff))
	if err != nil {
		return 0, fmt.Errorf("remove stale sign-in throttles: %w", err)
	}
	return res.RowsAffected()
}
