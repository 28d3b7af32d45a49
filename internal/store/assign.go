package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Unassigned as TicketFilter.Assignee selects the tickets nobody owns.
const Unassigned int64 = -1

// SetTicketAssignee gives a ticket to a user (0: nobody) and reports who
// had it before (0: nobody). It locks the ticket's row first (PostgreSQL),
// so two concurrent changes each see the other's result as "previous". It
// does not check the user: desk does. Setting the assignee it already has
// changes nothing.
func (tx *Tx) SetTicketAssignee(ctx context.Context, ticketID, userID int64, at time.Time) (previous int64, err error) {
	var prev sql.NullInt64
	if err := one(tx.queryRow(ctx, `SELECT assignee_user_id FROM tickets WHERE id = ?`+tx.d.forUpdate(), ticketID).Scan(&prev)); err != nil {
		return 0, fmt.Errorf("assign ticket %d: %w", ticketID, err)
	}
	if prev.Int64 == userID {
		return userID, nil
	}
	if _, err := tx.exec(ctx, `UPDATE tickets SET assignee_user_id = ? WHERE id = ?`, nullID(userID), ticketID); err != nil {
		return 0, fmt.Errorf("assign ticket %d: %w", ticketID, err)
	}
	return prev.Int64, tx.TouchTicket(ctx, ticketID, at)
}

// ClaimTicket gives a ticket that nobody owns to a user and reports
// whether it did: a ticket someone already owns keeps its assignee, even
// when that changed after the caller read the ticket (one conditional
// UPDATE). It does not move last activity.
func (tx *Tx) ClaimTicket(ctx context.Context, ticketID, userID int64) (claimed bool, err error) {
	if userID <= 0 {
		return false, fmt.Errorf("claim ticket %d: no user", ticketID)
	}
	res, err := tx.exec(ctx, `UPDATE tickets SET assignee_user_id = ? WHERE id = ? AND assignee_user_id IS NULL`, userID, ticketID)
	if err != nil {
		return false, fmt.Errorf("claim ticket %d: %w", ticketID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim ticket %d: %w", ticketID, err)
	}
	return n == 1, nil
}

// ViewCounts are the numbers on the view tabs of the ticket list.
type ViewCounts struct {
	Mine       int // assigned to the user asking
	Unassigned int
	All        int
}

// CountTicketViews counts the tickets a filter selects in each view for
// user userID, ignoring the filter's Assignee (and Limit and Offset); the
// status, mailbox and search still narrow every count.
func (c conn) CountTicketViews(ctx context.Context, f TicketFilter, userID int64) (ViewCounts, error) {
	f.Assignee = 0
	q := c.ticketQuery(f, false)
	var v ViewCounts
	err := c.queryRow(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN t.assignee_user_id = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.assignee_user_id IS NULL THEN 1 ELSE 0 END), 0)`+q.from+q.where,
		append([]any{userID}, q.args...)...).Scan(&v.All, &v.Mine, &v.Unassigned)
	if err != nil {
		return ViewCounts{}, fmt.Errorf("count ticket views: %w", err)
	}
	return v, nil
}

// AssignableUsers lists the users a ticket can be given to (those not
// disabled), by name then email.
func (c conn) AssignableUsers(ctx context.Context) ([]User, error) {
	rows, err := c.query(ctx, `SELECT `+userCols+` FROM users WHERE disabled_at IS NULL ORDER BY LOWER(CASE WHEN name = '' THEN email ELSE name END), email`)
	if err != nil {
		return nil, fmt.Errorf("list assignable users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list assignable users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
