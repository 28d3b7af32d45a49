package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// User roles.
const (
	RoleAdmin = "admin"
	RoleAgent = "agent"
)

// User is an agent or admin who signs in to Postdesk.
type User struct {
	ID           int64
	Email        string
	Name         string
	Role         string
	PasswordHash string
	CreatedAt    time.Time
	DisabledAt   time.Time
}

const userCols = `id, email, name, role, password_hash, created_at, disabled_at`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	err := s.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &created, &disabled)
	u.CreatedAt, u.DisabledAt = fromMS(created), nullMS(disabled)
	return u, err
}

// CreateUser adds a user; the email must be new (else ErrConflict).
func (tx *Tx) CreateUser(ctx context.Context, u User) (User, error) {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Role != RoleAdmin && u.Role != RoleAgent {
		return User{}, fmt.Errorf("create user: role must be admin or agent, not %q", u.Role)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	id, err := tx.insert(ctx, `INSERT INTO users (email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.Email, u.Name, u.Role, u.PasswordHash, ms(u.CreatedAt))
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", u.Email, err)
	}
	u.ID = id
	return u, nil
}

// SetPasswordHash replaces a user's password hash.
func (tx *Tx) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	_, err := tx.exec(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	return err
}

// User returns one user by id.
func (c conn) User(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(c.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, one(err)
}

// UserByEmail returns the user with that email (any case).
func (c conn) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(c.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, strings.ToLower(strings.TrimSpace(email))))
	return u, one(err)
}

// Users lists every user by email.
func (c conn) Users(ctx context.Context) ([]User, error) {
	rows, err := c.query(ctx, `SELECT `+userCols+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
