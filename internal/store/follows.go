package store

import (
	"context"
	"fmt"
	"slices"
)

// MailboxFollowers returns the users who follow a mailbox (hear of its new
// tickets), by id, leaving out disabled users. Whether each wants the email
// now is their Notify.NewTicket, the caller's check.
func (c conn) MailboxFollowers(ctx context.Context, mailboxID int64) ([]User, error) {
	rows, err := c.query(ctx, `SELECT `+userColsOf("u")+` FROM users u
		JOIN user_mailbox_follows f ON f.user_id = u.id
		WHERE f.mailbox_id = ? AND u.disabled_at IS NULL ORDER BY u.id`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("list followers of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list followers of mailbox %d: %w", mailboxID, err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// FollowedMailboxes returns the ids of the mailboxes a user follows, in
// ascending order.
func (c conn) FollowedMailboxes(ctx context.Context, userID int64) ([]int64, error) {
	rows, err := c.query(ctx, `SELECT mailbox_id FROM user_mailbox_follows WHERE user_id = ? ORDER BY mailbox_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes followed by user %d: %w", userID, err)
	}
	return scanInt64s(rows)
}

// SetFollowedMailboxes makes ids the exact set of mailboxes a user follows
// (duplicates ignored; empty: none). An unknown mailbox or user fails
// with the database's foreign-key error.
func (tx *Tx) SetFollowedMailboxes(ctx context.Context, userID int64, ids []int64) error {
	if _, err := tx.exec(ctx, `DELETE FROM user_mailbox_follows WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("set mailboxes followed by user %d: %w", userID, err)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.exec(ctx, `INSERT INTO user_mailbox_follows (user_id, mailbox_id) VALUES (?, ?)`, userID, id); err != nil {
			return fmt.Errorf("follow mailbox %d for user %d: %w", id, userID, err)
		}
	}
	return nil
}
