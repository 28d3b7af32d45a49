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
	ID    int64
	Email string
	Name  string
	Role  string
	// PasswordHash is "" while the user has no password yet (invited, or
	// reset by an administrator with an invitation link).
	PasswordHash string
	CreatedAt    time.Time
	DisabledAt   time.Time // zero: not disabled
	// TimeZone is the IANA name the pages show times in; "" is UTC.
	TimeZone     string
	LastSignInAt time.Time // zero: never signed in
	Notify       NotifyChoices
}

// NotifyChoices are the emails a user wants to hear of.
type NotifyChoices struct {
	NewTicket     bool // a new ticket in a mailbox the user follows
	CustomerReply bool // a customer's answer on a ticket assigned to the user
	Assigned      bool // a ticket assigned to the user
}

// User states, as Admin -> Users shows them.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
	UserInvited  = "invited" // no password yet
)

// State is the user's state: disabled wins over invited.
func (u User) State() string {
	switch {
	case !u.DisabledAt.IsZero():
		return UserDisabled
	case u.PasswordHash == "":
		return UserInvited
	}
	return UserActive
}

var userColList = []string{"id", "email", "name", "role", "password_hash", "created_at", "disabled_at",
	"time_zone", "last_sign_in_at", "notify_new_ticket", "notify_customer_reply", "notify_assigned"}

var userCols = strings.Join(userColList, ", ")

// userColsOf is userCols qualified by a table alias.
func userColsOf(alias string) string {
	return alias + "." + strings.Join(userColList, ", "+alias+".")
}

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	var disabled, signIn sql.NullInt64
	err := s.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &created, &disabled,
		&u.TimeZone, &signIn, &u.Notify.NewTicket, &u.Notify.CustomerReply, &u.Notify.Assigned)
	u.CreatedAt, u.DisabledAt, u.LastSignInAt = fromMS(created), nullMS(disabled), nullMS(signIn)
	return u, err
}

// DefaultNotify is a new user's choices (the schema's defaults): hear of
// answers on and assignments of one's own tickets, not of every new ticket.
var DefaultNotify = NotifyChoices{CustomerReply: true, Assigned: true}

// CreateUser adds a user with DefaultNotify (u.Notify is ignored: see
// SetNotifyChoices) and without a sign-in yet; the email must be new (else ErrConflict).
func (tx *Tx) CreateUser(ctx context.Context, u User) (User, error) {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Role != RoleAdmin && u.Role != RoleAgent {
		return User{}, fmt.Errorf("create user: role must be admin or agent, not %q", u.Role)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	id, err := tx.insert(ctx, `INSERT INTO users (email, name, role, password_hash, created_at, time_zone) VALUES (?, ?, ?, ?, ?, ?)`,
		u.Email, u.Name, u.Role, u.PasswordHash, ms(u.CreatedAt), u.TimeZone)
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", u.Email, err)
	}
	u.ID, u.Notify, u.LastSignInAt = id, DefaultNotify, time.Time{}
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

// SetUserName changes a user's display name.
func (tx *Tx) SetUserName(ctx context.Context, userID int64, name string) error {
	return tx.updateUser(ctx, userID, "set name of", `UPDATE users SET name = ? WHERE id = ?`, name, userID)
}

// SetUserRole changes a user's role (RoleAdmin or RoleAgent).
func (tx *Tx) SetUserRole(ctx context.Context, userID int64, role string) error {
	if role != RoleAdmin && role != RoleAgent {
		return fmt.Errorf("set role of user %d: role must be admin or agent, not %q", userID, role)
	}
	return tx.updateUser(ctx, userID, "set role of", `UPDATE users SET role = ? WHERE id = ?`, role, userID)
}

// SetUserDisabled disables a user from at, or enables them when at is zero.
// It does not end their sessions: see DeleteUserSessions.
func (tx *Tx) SetUserDisabled(ctx context.Context, userID int64, at time.Time) error {
	var v sql.NullInt64
	if !at.IsZero() {
		v = sql.NullInt64{Int64: ms(at), Valid: true}
	}
	return tx.updateUser(ctx, userID, "disable or enable", `UPDATE users SET disabled_at = ? WHERE id = ?`, v, userID)
}

// SetUserTimeZone sets the IANA time zone a user's pages show times in
// ("" for UTC). The caller validates the name.
func (tx *Tx) SetUserTimeZone(ctx context.Context, userID int64, zone string) error {
	return tx.updateUser(ctx, userID, "set time zone of", `UPDATE users SET time_zone = ? WHERE id = ?`, zone, userID)
}

// SetNotifyChoices sets which emails a user hears of.
func (tx *Tx) SetNotifyChoices(ctx context.Context, userID int64, n NotifyChoices) error {
	return tx.updateUser(ctx, userID, "set notification choices of",
		`UPDATE users SET notify_new_ticket = ?, notify_customer_reply = ?, notify_assigned = ? WHERE id = ?`,
		n.NewTicket, n.CustomerReply, n.Assigned, userID)
}

// RecordSignIn notes the time of a user's sign-in.
func (tx *Tx) RecordSignIn(ctx context.Context, userID int64, at time.Time) error {
	return tx.updateUser(ctx, userID, "record sign-in of", `UPDATE users SET last_sign_in_at = ? WHERE id = ?`, ms(at), userID)
}

// updateUser runs one UPDATE of a user row; no such user is ErrNotFound.
func (tx *Tx) updateUser(ctx context.Context, userID int64, what, q string, args ...any) error {
	res, err := tx.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s user %d: %w", what, userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ActiveAdminIDs returns the ids of the admins who can sign in (not
// disabled, with a password). On PostgreSQL their rows stay locked until
// the transaction ends, so two admins demoting each other at once cannot
// leave none (SQLite runs one writer at a time).
func (tx *Tx) ActiveAdminIDs(ctx context.Context) ([]int64, error) {
	rows, err := tx.query(ctx, `SELECT id FROM users WHERE role = ? AND disabled_at IS NULL AND password_hash <> '' ORDER BY id`+
		tx.d.forUpdate(), RoleAdmin)
	if err != nil {
		return nil, fmt.Errorf("list active admins: %w", err)
	}
	return scanInt64s(rows)
}

// DeleteUserSessions signs a user out everywhere except the session
// keepID (0: everywhere) and returns how many sessions ended.
func (tx *Tx) DeleteUserSessions(ctx context.Context, userID, keepID int64) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, keepID)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return res.RowsAffected()
}
