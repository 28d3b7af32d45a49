package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ActivitySend is an activity entry of sent mail: Count messages (replies,
// acknowledgements, notifications) the server accepted, joined while they
// keep coming.
const ActivitySend = "send"

// sendWindow joins sends into one activity entry while they keep coming
// (a held outbox released after a sign-in is one entry).
const sendWindow = 2 * time.Minute

// RecordSentActivity counts one sent message in the mailbox's activity:
// it adds to the newest entry when that is a send of the last sendWindow,
// else it records a new one. Call it in the transaction that marks the
// message sent.
func (tx *Tx) RecordSentActivity(ctx context.Context, mailboxID int64, now time.Time) error {
	res, err := tx.exec(ctx, `UPDATE mailbox_activity SET count = count + 1, created_at = ?
		WHERE id = (SELECT MAX(id) FROM mailbox_activity WHERE mailbox_id = ?) AND kind = ? AND created_at >= ?`,
		ms(now), mailboxID, ActivitySend, ms(now.Add(-sendWindow)))
	if err != nil {
		return fmt.Errorf("record a send of mailbox %d: %w", mailboxID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	return tx.RecordMailboxActivity(ctx, Activity{MailboxID: mailboxID, Kind: ActivitySend, Count: 1, CreatedAt: now})
}

// OutboxSummary is how a mailbox's sending is doing, for Admin -> Emails
// and the API.
type OutboxSummary struct {
	// Counts are the mailbox's outgoing messages by delivery state (every
	// state present, zero when none).
	Counts     map[string]int
	LastSentAt time.Time // zero: nothing sent yet
	// Problem is the newest outgoing message refused for one of the kinds
	// asked for (nil: none).
	Problem *OutboxProblem
}

// OutboxProblem is an outgoing message's refusal.
type OutboxProblem struct {
	MessageID int64
	TicketID  int64
	State     string // its delivery state now
	ErrorKind string // Delivery.ErrorKind
	LastError string // the server's words
	At        time.Time
}

// OutboxSummary summarizes a mailbox's outbox; the problem is the newest
// message whose error kind is one of kinds (the causes that concern every
// message of the mailbox, such as "auth_disabled").
func (c conn) OutboxSummary(ctx context.Context, mailboxID int64, kinds []string) (OutboxSummary, error) {
	out := OutboxSummary{Counts: map[string]int{DeliveryQueued: 0, DeliverySending: 0, DeliverySent: 0, DeliveryHeld: 0, DeliveryFailed: 0, DeliveryUnknown: 0}}
	rows, err := c.query(ctx, `SELECT state, COUNT(*), MAX(sent_at) FROM outbox WHERE mailbox_id = ? GROUP BY state`, mailboxID)
	if err != nil {
		return out, fmt.Errorf("summarize the outbox of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		var sent int64
		if err := rows.Scan(&state, &n, &sent); err != nil {
			return out, err
		}
		out.Counts[state] = n
		if state == DeliverySent {
			out.LastSentAt = fromMS(sent)
		}
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	if len(kinds) == 0 {
		return out, nil
	}
	args := []any{mailboxID}
	for _, k := range kinds {
		args = append(args, k)
	}
	var p OutboxProblem
	var at int64
	err = one(c.queryRow(ctx, `SELECT message_id, COALESCE(ticket_id, 0), state, error_kind, last_error, updated_at FROM outbox
		WHERE mailbox_id = ? AND error_kind IN (?`+strings.Repeat(", ?", len(kinds)-1)+`)
		ORDER BY updated_at DESC, message_id DESC LIMIT 1`, args...).Scan(&p.MessageID, &p.TicketID, &p.State, &p.ErrorKind, &p.LastError, &at))
	switch {
	case err == nil:
		p.At = fromMS(at)
		out.Problem = &p
	case !errors.Is(err, ErrNotFound):
		return out, fmt.Errorf("find the last sending problem of mailbox %d: %w", mailboxID, err)
	}
	return out, nil
}

// TicketsWithUndelivered returns which of the tickets have a reply that
// failed for good or whose outcome is unknown (an agent must act on it).
func (c conn) TicketsWithUndelivered(ctx context.Context, ticketIDs []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if len(ticketIDs) == 0 {
		return out, nil
	}
	args := []any{DeliveryFailed, DeliveryUnknown}
	for _, id := range ticketIDs {
		args = append(args, id)
	}
	rows, err := c.query(ctx, `SELECT DISTINCT ticket_id FROM outbox WHERE state IN (?, ?) AND ticket_id IN (?`+
		strings.Repeat(", ?", len(ticketIDs)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("find tickets with undelivered replies: %w", err)
	}
	ids, err := scanInt64s(rows)
	for _, id := range ids {
		out[id] = true
	}
	return out, err
}
