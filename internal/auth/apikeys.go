package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// InvalidKeyError is a refused request for a new API key: Field is the
// setting at fault ("name", "expires_at") and Reason the sentence for the
// user.
type InvalidKeyError struct {
	Field, Reason string
}

func (e *InvalidKeyError) Error() string { return "api key " + e.Field + ": " + e.Reason }

// NewAPIKey is a request for a key.
type NewAPIKey struct {
	UserID    int64
	Name      string
	ExpiresAt time.Time // zero: never expires
	// Parent is the key the request was made with (the API), nil from the
	// command line. A key cannot outlive its parent, so a stolen key that
	// expires cannot mint one that does not.
	Parent *store.APIKey
}

// maxKeyName bounds a key's label.
const maxKeyName = 100

// MaxKeyLifetime bounds an expiry (a key that should last longer is one
// that never expires); it also keeps every expiry a time JSON can carry.
const MaxKeyLifetime = 10 * 366 * 24 * time.Hour

// IssueAPIKey creates a key and returns it; only its hash is kept, so it
// can be shown once. A request it refuses is an *InvalidKeyError.
func (s *Service) IssueAPIKey(ctx context.Context, req NewAPIKey) (string, store.APIKey, error) {
	now := s.now().UTC()
	if len(req.Name) > maxKeyName {
		return "", store.APIKey{}, &InvalidKeyError{"name", fmt.Sprintf("must be at most %d characters", maxKeyName)}
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return "", store.APIKey{}, &InvalidKeyError{"expires_at", "must be in the future"}
	}
	if req.ExpiresAt.After(now.Add(MaxKeyLifetime)) {
		return "", store.APIKey{}, &InvalidKeyError{"expires_at", "must be within 10 years; leave it out for a key that never expires"}
	}
	if p := req.Parent; p != nil && !p.ExpiresAt.IsZero() {
		if req.ExpiresAt.IsZero() || req.ExpiresAt.After(p.ExpiresAt) {
			return "", store.APIKey{}, &InvalidKeyError{"expires_at", fmt.Sprintf(
				"must be set and no later than the expiry of the key making this request (%s)", p.ExpiresAt.UTC().Format(time.RFC3339))}
		}
	}
	key := APIKeyPrefix + RandomToken(32)
	k := store.APIKey{UserID: req.UserID, Name: req.Name, Prefix: key[:len(APIKeyPrefix)+6], KeyHash: HashToken(key),
		CreatedAt: now, ExpiresAt: req.ExpiresAt.UTC()}
	if err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.CreateAPIKey(ctx, &k) }); err != nil {
		return "", store.APIKey{}, err
	}
	return key, k, nil
}

// APIKeys lists a user's keys that are not revoked, expired ones included.
func (s *Service) APIKeys(ctx context.Context, userID int64) ([]store.APIKey, error) {
	return s.db.APIKeysByUser(ctx, userID)
}

// RevokeAPIKey revokes key id and returns it. With owner non-zero only
// that user's key may be revoked: another's is store.ErrNotFound, as if it
// did not exist.
func (s *Service) RevokeAPIKey(ctx context.Context, id, owner int64) (store.APIKey, error) {
	var k store.APIKey
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if k, err = tx.APIKey(ctx, id); err != nil {
			return err
		}
		if owner != 0 && k.UserID != owner {
			return store.ErrNotFound
		}
		k.RevokedAt = s.now().UTC()
		return tx.RevokeAPIKey(ctx, id, k.RevokedAt)
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, err
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("revoke api key %d: %w", id, err)
	}
	return k, nil
}
