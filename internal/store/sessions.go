package store

import (
	"context"
	"fmt"
	"time"
)

// Session is a signed-in browser. Only the hash of its cookie token is stored.
type Session struct {
	ID         int64
	TokenHash  string
	UserID     int64
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	UserAgent  string
	IP         string
}

// CreateSession stores a new session.
func (tx *Tx) CreateSession(ctx context.Context, s *Session) error {
	id, err := tx.insert(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, ip)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.TokenHash, s.UserID, s.CSRFToken, ms(s.CreatedAt), ms(s.LastSeenAt), ms(s.ExpiresAt), s.UserAgent, s.IP)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	s.ID = id
	return nil
}

// SessionByTokenHash returns an unexpired session and its user.
func (c conn) SessionByTokenHash(ctx context.Context, hash string, now time.Time) (Session, User, error) {
	var s Session
	var created, seen, expires int64
	err := c.queryRow(ctx, `SELECT id, token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, ip
		FROM sessions WHERE token_hash = ? AND expires_at > ?`, hash, ms(now)).
		Scan(&s.ID, &s.TokenHash, &s.UserID, &s.CSRFToken, &created, &seen, &expires, &s.UserAgent, &s.IP)
	if err != nil {
		return Session{}, User{}, one(err)
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromMS(created), fromMS(seen), fromMS(expires)
	u, err := c.User(ctx, s.UserID)
	if err != nil {
		return Session{}, User{}, err
	}
	return s, u, nil
}

// ExtendSession records activity and a new expiry.
func (tx *Tx) ExtendSession(ctx context.Context, id int64, seen, expires time.Time) error {
	_, err := tx.exec(ctx, `UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?`, ms(seen), ms(expires), id)
	return err
}

// DeleteSession signs a session out.
func (tx *Tx) DeleteSession(ctx context.Context, id int64) error {
	_, err := tx.exec(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	return err
}

// DeleteExpiredSessions removes sessions that expired before now.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SessionByID returns an unexpired session and its user by the session's
// id (for links signed with the session's secret, which a browser follows
// without cookies, such as images inside a sandboxed frame).
func (c conn) SessionByID(ctx context.Context, id int64, now time.Time) (Session, User, error) {
	var hash string
	err := c.queryRow(ctx, `SELECT token_hash FROM sessions WHERE id = ? AND expires_at > ?`, id, ms(now)).Scan(&hash)
	if err != nil {
		return Session{}, User{}, one(err)
	}
	return c.SessionByTokenHash(ctx, hash, now)
}
