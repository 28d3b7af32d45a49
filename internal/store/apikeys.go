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
}

// CreateAPIKey stores a new key's hash.
func (tx *Tx) CreateAPIKey(ctx context.Context, k *APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC()
	}
	id, err := tx.insert(ctx, `INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.UserID, k.Name, k.Prefix, k.KeyHash, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	k.ID = id
	return nil
}

// APIKeyByHash returns an unrevoked key and its user.
func (c conn) APIKeyByHash(ctx context.Context, hash string) (APIKey, User, error) {
	var k APIKey
	var created int64
	var used, revoked sql.NullInt64
	err := c.queryRow(ctx, `SELECT id, user_id, name, prefix, key_hash, created_at, last_used_at, revoked_at
		FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, hash).
		Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.KeyHash, &created, &used, &revoked)
	if err != nil {
		return APIKey{}, User{}, one(err)
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMS(created), nullMS(used), nullMS(revoked)
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

// RevokeAPIKey makes a key unusable.
func (tx *Tx) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(at), id)
	return err
}
