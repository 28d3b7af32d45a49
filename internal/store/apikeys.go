package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// APIKey is a credential for the JSON API. Only the hash of the key is stored.
type APIKey struct {
	ID         int64
	UserID     int64
	Name       string
	Prefix     string // the first characters of the key, to recognise it in lists
	KeyHash    string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
}

const apiKeyCols = `id, user_id, name, prefix, key_hash, created_at, last_used_at, revoked_at, expires_at`

func scanAPIKey(s interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var created int64
	var used, revoked, expires sql.NullInt64
	err := s.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.KeyHash, &created, &used, &revoked, &expires)
	k.CreatedAt, k.LastUsedAt, k.RevokedAt, k.ExpiresAt = fromMS(created), nullMS(used), nullMS(revoked), nullMS(expires)
	return k, err
}

// Expired reports whether the key has an expiry at or before now.
func (k APIKey) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// CreateAPIKey stores a new key's hash.
func (tx *Tx) CreateAPIKey(ctx context.Context, k *APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC()
	}
	var expires sql.NullInt64
	if !k.ExpiresAt.IsZero() {
		expires = sql.NullInt64{Int64: ms(k.ExpiresAt), Valid: true}
	}
	id, err := tx.insert(ctx, `INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.UserID, k.Name, k.Prefix, k.KeyHash, ms(k.CreatedAt), expires)
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	k.ID = id
	return nil
}

// APIKeyByHash returns an unrevoked key and its user. Whether it has
// expired is the caller's check (APIKey.Expired), against its own clock.
func (c conn) APIKeyByHash(ctx context.Context, hash string) (APIKey, User, error) {
	k, err := scanAPIKey(c.queryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, hash))
	if err != nil {
		return APIKey{}, User{}, one(err)
	}
	u, err := c.User(ctx, k.UserID)
	if err != nil {
		return APIKey{}, User{}, err
	}
	return k, u, nil
}

// TouchAPIKey records that a key was used.
func (tx *Tx) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, ms(at), id)
	return err
}

// APIKey returns one key by id, revoked or not.
func (c conn) APIKey(ctx context.Context, id int64) (APIKey, error) {
	k, err := scanAPIKey(c.queryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE id = ?`, id))
	return k, one(err)
}

// APIKeysByUser lists a user's keys that are not revoked, oldest first
// (expired ones included, so their owner sees why they stopped working).
func (c conn) APIKeysByUser(ctx context.Context, userID int64) ([]APIKey, error) {
	rows, err := c.query(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE user_id = ? AND revoked_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey makes a key unusable. A key already revoked, or with no
// such id, is ErrNotFound.
func (tx *Tx) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(at), id)
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
