package store

import (
	"context"
	"fmt"
	"time"
)

// Invitation is a single-use link that lets a user set their own password.
// Only the hash of the link's token is stored.
type Invitation struct {
	TokenHash string
	UserID    int64
	CreatedBy int64 // the admin who made it, 0: the command line
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateInvitation stores inv, replacing the user's earlier invitations
// (an older link stops working when a new one is made).
func (tx *Tx) CreateInvitation(ctx context.Context, inv Invitation) error {
	if _, err := tx.exec(ctx, `DELETE FROM user_invitations WHERE user_id = ?`, inv.UserID); err != nil {
		return fmt.Errorf("replace invitations of user %d: %w", inv.UserID, err)
	}
	_, err := tx.exec(ctx, `INSERT INTO user_invitations (token_hash, user_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		inv.TokenHash, inv.UserID, inv.CreatedBy, ms(inv.CreatedAt), ms(inv.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create invitation for user %d: %w", inv.UserID, err)
	}
	return nil
}

// InvitationByHash returns an unexpired invitation and its user; an
// unknown, used or expired one is ErrNotFound.
func (c conn) InvitationByHash(ctx context.Context, hash string, now time.Time) (Invitation, User, error) {
	var inv Invitation
	var created, expires int64
	err := c.queryRow(ctx, `SELECT token_hash, user_id, created_by, created_at, expires_at FROM user_invitations
		WHERE token_hash = ? AND expires_at > ?`, hash, ms(now)).
		Scan(&inv.TokenHash, &inv.UserID, &inv.CreatedBy, &created, &expires)
	if err != nil {
		return Invitation{}, User{}, one(err)
	}
	inv.CreatedAt, inv.ExpiresAt = fromMS(created), fromMS(expires)
	u, err := c.User(ctx, inv.UserID)
	if err != nil {
		return Invitation{}, User{}, err
	}
	return inv, u, nil
}

// PendingInvitation returns a user's unexpired invitation, if any
// (ErrNotFound when none).
func (c conn) PendingInvitation(ctx context.Context, userID int64, now time.Time) (Invitation, error) {
	var inv Invitation
	var created, expires int64
	err := c.queryRow(ctx, `SELECT token_hash, user_id, created_by, created_at, expires_at FROM user_invitations
		WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1`, userID, ms(now)).
		Scan(&inv.TokenHash, &inv.UserID, &inv.CreatedBy, &created, &expires)
	if err != nil {
		return Invitation{}, one(err)
	}
	inv.CreatedAt, inv.ExpiresAt = fromMS(created), fromMS(expires)
	return inv, nil
}

// UseInvitation consumes an unexpired invitation and returns it: a second
// use, like an unknown or expired token, is ErrNotFound.
func (tx *Tx) UseInvitation(ctx context.Context, hash string, now time.Time) (Invitation, error) {
	inv, _, err := tx.InvitationByHash(ctx, hash, now)
	if err != nil {
		return Invitation{}, err
	}
	res, err := tx.exec(ctx, `DELETE FROM user_invitations WHERE token_hash = ?`, hash)
	if err != nil {
		return Invitation{}, fmt.Errorf("use invitation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Invitation{}, ErrNotFound
	}
	return inv, nil
}

// DeleteInvitations removes every invitation of a user (their password
// was set another way, or they were disabled).
func (tx *Tx) DeleteInvitations(ctx context.Context, userID int64) error {
	_, err := tx.exec(ctx, `DELETE FROM user_invitations WHERE user_id = ?`, userID)
	return err
}
