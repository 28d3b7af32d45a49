package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/search"
)

// Ticket statuses.
const (
	StatusOpen    = "open"
	StatusPending = "pending"
	StatusSolved  = "solved"
)

// ValidStatus reports whether s is a ticket status.
func ValidStatus(s string) bool {
	return s == StatusOpen || s == StatusPending || s == StatusSolved
}

// Ticket is a conversation with one requester through one mailbox.
type Ticket struct {
	ID               int64
	MailboxID        int64
	MailboxAddress   string
	Subject          string
	RequesterAddress string
	RequesterName    string
	Status           string
	Bulk             bool
	MessageCount     int
	CreatedAt        time.Time
	UpdatedAt        time.Time // last activity
	// AssigneeUserID is the agent who owns the ticket, 0: nobody. Its
	// name and email are read with the ticket.
	AssigneeUserID int64
	AssigneeName   string
	AssigneeEmail  string
}

const ticketCols = `t.id, t.mailbox_id, m.address, t.subject, t.requester_address, t.requester_name,
	t.status, t.bulk, t.message_count, t.created_at, t.updated_at,
	COALESCE(t.assignee_user_id, 0), COALESCE(au.name, ''), COALESCE(au.email, '')`

const ticketFrom = ` FROM tickets t JOIN mailboxes m ON m.id = t.mailbox_id LEFT JOIN users au ON au.id = t.assignee_user_id`

func scanTicket(s interface{ Scan(...any) error }) (Ticket, error) {
	var t Ticket
	var created, updated int64
	err := s.Scan(&t.ID, &t.MailboxID, &t.MailboxAddress, &t.Subject, &t.RequesterAddress, &t.RequesterName,
		&t.Status, &t.Bulk, &t.MessageCount, &created, &updated, &t.AssigneeUserID, &t.AssigneeName, &t.AssigneeEmail)
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return t, err
}

// CreateTicket inserts a ticket and returns its id. Status defaults to open.
func (tx *Tx) CreateTicket(ctx context.Context, t Ticket) (int64, error) {
	if t.Status == "" {
		t.Status = StatusOpen
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	id, err := tx.insert(ctx, `INSERT INTO tickets (mailbox_id, subject, requester_address, requester_name, status, bulk, message_count, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.MailboxID, t.Subject, t.RequesterAddress, t.RequesterName, t.Status, t.Bulk, t.MessageCount, ms(t.CreatedAt), ms(t.UpdatedAt))
	if err != nil {
		return 0, fmt.Errorf("create ticket: %w", err)
	}
	return id, tx.indexNewTicket(ctx, id, t)
}

// RecordCustomerMessage counts a new message from the requester on a ticket:
// it moves last activity forward and reopens a pending or solved ticket.
// It reports the status the ticket had, so the caller can record a reopen.
func (tx *Tx) RecordCustomerMessage(ctx context.Context, ticketID int64, at time.Time) (previous string, err error) {
	// Status is left alone here, so RETURNING (which gives the row as
	// updated) gives the status before; the row stays locked for the second
	// update on PostgreSQL.
	err = one(tx.queryRow(ctx, `UPDATE tickets SET message_count = message_count + 1,
		updated_at = CASE WHEN updated_at > ? THEN updated_at ELSE ? END WHERE id = ? RETURNING status`,
		ms(at), ms(at), ticketID).Scan(&previous))
	if err != nil {
		return "", fmt.Errorf("update ticket %d: %w", ticketID, err)
	}
	if previous == StatusOpen {
		return previous, nil
	}
	if _, err := tx.exec(ctx, `UPDATE tickets SET status = ? WHERE id = ?`, StatusOpen, ticketID); err != nil {
		return "", fmt.Errorf("reopen ticket %d: %w", ticketID, err)
	}
	return previous, nil
}

// LockTicket takes the ticket's row lock until the transaction ends
// (PostgreSQL; SQLite's single writer needs none), as every writer of a
// ticket does before its other writes: a second transaction that locks it
// waits until the first has committed, then sees what it wrote.
func (tx *Tx) LockTicket(ctx context.Context, ticketID int64) error {
	lock := tx.d.forNoKeyUpdate()
	if lock == "" {
		return nil
	}
	if _, err := tx.exec(ctx, `SELECT id FROM tickets WHERE id = ?`+lock, ticketID); err != nil {
		return fmt.Errorf("lock ticket %d: %w", ticketID, err)
	}
	return nil
}

// TouchTicket moves a ticket's last activity forward without reopening it.
func (tx *Tx) TouchTicket(ctx context.Context, ticketID int64, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE tickets SET updated_at = CASE WHEN updated_at > ? THEN updated_at ELSE ? END WHERE id = ?`,
		ms(at), ms(at), ticketID)
	if err != nil {
		return fmt.Errorf("touch ticket %d: %w", ticketID, err)
	}
	return nil
}

// SetTicketStatus changes a ticket's status and moves its last activity
// to at; it reports the previous status. Setting the status it has
// changes nothing.
func (tx *Tx) SetTicketStatus(ctx context.Context, ticketID int64, status string, at time.Time) (previous string, err error) {
	if !ValidStatus(status) {
		return "", fmt.Errorf("set ticket status: %q is not a status (open, pending, solved)", status)
	}
	// Read under the row's lock, so a customer's answer that reopens the
	// ticket meanwhile (PostgreSQL) cannot make previous stale.
	if err := one(tx.queryRow(ctx, `SELECT status FROM tickets WHERE id = ?`+tx.d.forNoKeyUpdate(), ticketID).Scan(&previous)); err != nil {
		return "", fmt.Errorf("set ticket %d status: %w", ticketID, err)
	}
	if previous == status {
		return previous, nil
	}
	if _, err := tx.exec(ctx, `UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?`, status, ms(at), ticketID); err != nil {
		return "", fmt.Errorf("set ticket %d status: %w", ticketID, err)
	}
	return previous, nil
}

// Ticket returns one ticket.
func (c conn) Ticket(ctx context.Context, id int64) (Ticket, error) {
	t, err := scanTicket(c.queryRow(ctx, `SELECT `+ticketCols+ticketFrom+` WHERE t.id = ?`, id))
	return t, one(err)
}

// TicketMailboxAcks says whether the mailbox of a ticket acknowledges new
// tickets (one light read: most do not, and ingest asks for every new
// ticket).
func (c conn) TicketMailboxAcks(ctx context.Context, ticketID int64) (bool, error) {
	var on bool
	err := one(c.queryRow(ctx, `SELECT m.ack_enabled FROM tickets t JOIN mailboxes m ON m.id = t.mailbox_id WHERE t.id = ?`, ticketID).Scan(&on))
	return on, err
}

// TicketFilter selects tickets for lists. Zero values select everything.
type TicketFilter struct {
	Status    string
	MailboxID int64
	// Assignee narrows to one agent's tickets (a user id), or with
	// Unassigned to those nobody owns; 0 selects any.
	Assignee int64
	// Search is a parsed search (search.Parse): its terms, filters and
	// ticket number. With terms, the list is ranked (best match first,
	// then newest activity); without, newest activity first.
	Search search.Query
	// Me is the user searching: whose tickets assignee:me means.
	Me     int64
	Limit  int // default 50, at most 500
	Offset int
}

// ticketSQL is the FROM and WHERE of a ticket list (tickets t, mailboxes
// m unless unranked for a count, and h, the search hits, when the filter
// searches text) with their arguments in order, and what to order by
// before last activity.
type ticketSQL struct {
	from, where string
	args        []any
	rank        string // "h.score, " or ""
}

func (c conn) ticketQuery(f TicketFilter, ranked bool) ticketSQL {
	q := ticketSQL{from: ticketFrom}
	if !ranked && len(f.Search.Mailboxes) == 0 {
		q.from = ` FROM tickets t` // a count needs no mailbox
	}
	must, mustNot := splitTerms(f.Search.Terms)
	if len(must) > 0 {
		hits, args := c.d.searchHits(must, mustNot, ranked)
		if f.Search.TicketID != 0 {
			// The ticket of that number first, then those that contain it.
			hits = `SELECT id, MIN(score) AS score FROM (SELECT CAST(? AS BIGINT) AS id, -1e30 AS score UNION ALL ` + hits + `) x GROUP BY id`
			args = append([]any{f.Search.TicketID}, args...)
		}
		q.from += ` JOIN (` + hits + `) h ON h.id = t.id`
		q.args = append(q.args, args...)
		if ranked {
			q.rank = "h.score, "
		}
	}
	var where []string
	if len(must) == 0 && len(mustNot) > 0 {
		ids, args := c.d.searchAnyIDs(mustNot)
		where = append(where, "t.id NOT IN ("+ids+")")
		q.args = append(q.args, args...)
	}
	if f.Status != "" {
		where = append(where, "t.status = ?")
		q.args = append(q.args, f.Status)
	}
	if f.MailboxID != 0 {
		where = append(where, "t.mailbox_id = ?")
		q.args = append(q.args, f.MailboxID)
	}
	switch {
	case f.Assignee == Unassigned:
		where = append(where, "t.assignee_user_id IS NULL")
	case f.Assignee > 0:
		where = append(where, "t.assignee_user_id = ?")
		q.args = append(q.args, f.Assignee)
	}
	switch a := f.Search.Assignee; {
	case a == search.AssigneeNone:
		where = append(where, "t.assignee_user_id IS NULL")
	case a == search.AssigneeMe:
		where = append(where, "t.assignee_user_id = ?")
		q.args = append(q.args, f.Me)
	case a != "":
		where = append(where, "t.assignee_user_id IN (SELECT id FROM users WHERE LOWER(email) = ?)")
		q.args = append(q.args, a)
	}
	if len(f.Search.Statuses) > 0 {
		where = append(where, "t.status IN (?"+strings.Repeat(", ?", len(f.Search.Statuses)-1)+")")
		for _, s := range f.Search.Statuses {
			q.args = append(q.args, s)
		}
	}
	if len(f.Search.Mailboxes) > 0 {
		// An address is exact; a part of one matches anywhere in it.
		var or []string
		for _, mb := range f.Search.Mailboxes {
			pattern := escapeLike(mb)
			if !strings.Contains(mb, "@") {
				pattern = "%" + pattern + "%"
			}
			or = append(or, "m.address "+c.d.likeOp()+" ? ESCAPE '\\'")
			q.args = append(q.args, pattern)
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	if len(where) > 0 {
		q.where = " WHERE " + strings.Join(where, " AND ")
	}
	return q
}

// Tickets lists tickets: the best match first when the filter searches
// text, then by last activity, newest first.
func (c conn) Tickets(ctx context.Context, f TicketFilter) ([]Ticket, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	q := c.ticketQuery(f, true)
	rows, err := c.query(ctx, `SELECT `+ticketCols+q.from+q.where+` ORDER BY `+q.rank+`t.updated_at DESC, t.id DESC LIMIT ? OFFSET ?`,
		append(q.args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	out := []Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("list tickets: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CountTickets counts the tickets a filter selects (ignoring Limit and Offset).
func (c conn) CountTickets(ctx context.Context, f TicketFilter) (int, error) {
	q := c.ticketQuery(f, false)
	var n int
	if err := c.queryRow(ctx, `SELECT COUNT(*)`+q.from+q.where, q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	return n, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// CountTicketsByStatus counts the tickets a filter selects per status,
// ignoring the filter's Status (and Limit and Offset): the numbers on the
// status tabs of a list. Every status is in the map, zero when none.
func (c conn) CountTicketsByStatus(ctx context.Context, f TicketFilter) (map[string]int, error) {
	f.Status = ""
	q := c.ticketQuery(f, false)
	rows, err := c.query(ctx, `SELECT t.status, COUNT(*)`+q.from+q.where+` GROUP BY t.status`, q.args...)
	if err != nil {
		return nil, fmt.Errorf("count tickets by status: %w", err)
	}
	defer rows.Close()
	out := map[string]int{StatusOpen: 0, StatusPending: 0, StatusSolved: 0}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count tickets by status: %w", err)
		}
		out[status] = n
	}
	return out, rows.Err()
}

// messageLockClass is the first key of the transaction advisory locks
// LockMessageKey takes ("PDM1"); the second is a hash of the key.
const messageLockClass = 0x50444d31

// LockMessageKey makes concurrent transactions that store the same email
// (by its dedupe key) in different mailboxes take turns, until this one
// ends: on PostgreSQL, two mailboxes committing their copies of one email
// at once each saw no other copy (READ COMMITTED), and each made a ticket.
// The turn's later statements see what the other committed. SQLite has
// one writer at a time already.
func (tx *Tx) LockMessageKey(ctx context.Context, key string) error {
	if tx.d.name() != "postgres" {
		return nil
	}
	if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?, hashtext(?))`, messageLockClass, key); err != nil {
		return fmt.Errorf("wait for other mailboxes storing the same email: %w", err)
	}
	return nil
}
