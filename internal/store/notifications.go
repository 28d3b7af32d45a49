package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KindNotification is an email to an agent or admin about the desk (a new
// ticket, a customer's answer, an assignment, a mailbox notice). It is an
// outgoing message with no ticket: it never shows in a conversation and is
// never sent to a customer.
const KindNotification = "notification"

// Notice email states (Notice.Email.State, Reminder.State).
const (
	EmailPending    = ""            // not decided yet
	EmailQueued     = "emailed"     // queued to Count admins through MailboxID
	EmailNoMailbox  = "no_mailbox"  // no healthy mailbox could send it: shown in the app only
	EmailNoAdmin    = "no_admin"    // no active admin to send it to
	EmailNotEmailed = "not_emailed" // a kind nobody is emailed about
	EmailBefore     = "before"      // recorded before notices were emailed
	EmailCovered    = "covered"     // a reminder that a later one or the first warning already said
	EmailRepeat     = "repeat"      // an unread notice of the same mailbox and kind was already emailed
)

// NoticeEmail is what became of a notice's (or a reminder's) email.
type NoticeEmail struct {
	State     string
	MailboxID int64 // the mailbox that sent it (0: none)
	Count     int   // how many admins it was queued to
}

// ErrTaken is returned when another process took the rows a change was
// about meanwhile (a batch of notifications, a notice's email): the caller
// rolls back and leaves them to it.
var ErrTaken = errors.New("taken by another process")

// PendingNotification is one event an agent will hear of in their next
// notification email.
type PendingNotification struct {
	ID          int64
	UserID      int64
	EventID     int64
	Kind        string // the event's kind
	TicketID    int64
	MailboxID   int64
	MessageID   int64 // the message it is about (a reply not delivered); 0: none
	ActorUserID int64
	CreatedAt   time.Time
	// DueAt is when the user's batch is sent: the first pending row of a
	// user sets it (created + the batching window); later rows join it.
	DueAt time.Time
}

// AddPendingNotification records that p.UserID will hear of an event. The
// row joins the user's batch when one is waiting (its DueAt), else starts
// one due window later. An event already recorded for the user changes
// nothing; added reports whether the row is new.
func (tx *Tx) AddPendingNotification(ctx context.Context, p *PendingNotification, window time.Duration) (added bool, err error) {
	var due int64
	if err := tx.queryRow(ctx, `SELECT COALESCE(MIN(due_at), 0) FROM notification_pending WHERE user_id = ?`, p.UserID).Scan(&due); err != nil {
		return false, fmt.Errorf("find the notification batch of user %d: %w", p.UserID, err)
	}
	p.DueAt = fromMS(due)
	if due == 0 {
		p.DueAt = p.CreatedAt.Add(window)
	}
	res, err := tx.exec(ctx, `INSERT INTO notification_pending (user_id, event_id, kind, ticket_id, mailbox_id, message_id, actor_user_id, created_at, due_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, event_id) DO NOTHING`,
		p.UserID, p.EventID, p.Kind, nullID(p.TicketID), nullID(p.MailboxID), p.MessageID, p.ActorUserID, ms(p.CreatedAt), ms(p.DueAt))
	if err != nil {
		return false, fmt.Errorf("record a notification for user %d: %w", p.UserID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const pendingCols = `id, user_id, event_id, kind, COALESCE(ticket_id, 0), COALESCE(mailbox_id, 0), message_id, actor_user_id, created_at, due_at`

// DueNotificationUsers lists the users whose notification batch is due at
// now, by id.
func (c conn) DueNotificationUsers(ctx context.Context, now time.Time) ([]int64, error) {
	rows, err := c.query(ctx, `SELECT DISTINCT user_id FROM notification_pending WHERE due_at <= ? ORDER BY user_id`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list due notifications: %w", err)
	}
	return scanInt64s(rows)
}

// NextNotificationDue is when the next batch is due (zero: none waits).
func (c conn) NextNotificationDue(ctx context.Context) (time.Time, error) {
	var due int64
	if err := c.queryRow(ctx, `SELECT COALESCE(MIN(due_at), 0) FROM notification_pending`).Scan(&due); err != nil {
		return time.Time{}, fmt.Errorf("find the next notification batch: %w", err)
	}
	return fromMS(due), nil
}

// PendingNotifications lists a user's waiting notifications, oldest first.
func (c conn) PendingNotifications(ctx context.Context, userID int64) ([]PendingNotification, error) {
	rows, err := c.query(ctx, `SELECT `+pendingCols+` FROM notification_pending WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []PendingNotification
	for rows.Next() {
		var p PendingNotification
		var created, due int64
		if err := rows.Scan(&p.ID, &p.UserID, &p.EventID, &p.Kind, &p.TicketID, &p.MailboxID, &p.MessageID, &p.ActorUserID, &created, &due); err != nil {
			return nil, err
		}
		p.CreatedAt, p.DueAt = fromMS(created), fromMS(due)
		out = append(out, p)
	}
	return out, rows.Err()
}

// TakeNotifications removes and returns a user's batch when it is due at
// now (nil when none is). It fails with ErrTaken when another transaction
// took rows of it meanwhile: roll back, it is being sent.
func (tx *Tx) TakeNotifications(ctx context.Context, userID int64, now time.Time) ([]PendingNotification, error) {
	all, err := tx.PendingNotifications(ctx, userID)
	if err != nil {
		return nil, err
	}
	var batch []PendingNotification
	for _, p := range all {
		if !p.DueAt.After(now) {
			batch = append(batch, p)
		}
	}
	if len(batch) == 0 {
		return nil, nil
	}
	args := make([]any, len(batch))
	for i, p := range batch {
		args[i] = p.ID
	}
	res, err := tx.exec(ctx, `DELETE FROM notification_pending WHERE id IN (?`+strings.Repeat(", ?", len(batch)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("take the notifications of user %d: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if int(n) != len(batch) {
		return nil, fmt.Errorf("take the notifications of user %d: %w", userID, ErrTaken)
	}
	return batch, nil
}

// NoticesToEmail lists the notices whose email is not decided yet, oldest
// first, at most limit.
func (c conn) NoticesToEmail(ctx context.Context, limit int) ([]Notice, error) {
	rows, err := c.query(ctx, `SELECT id, COALESCE(mailbox_id, 0), kind, message, created_at FROM notices
		WHERE email_state = ? ORDER BY id LIMIT ?`, EmailPending, limit)
	if err != nil {
		return nil, fmt.Errorf("list notices to email: %w", err)
	}
	defer rows.Close()
	var out []Notice
	for rows.Next() {
		var n Notice
		var created int64
		if err := rows.Scan(&n.ID, &n.MailboxID, &n.Kind, &n.Message, &created); err != nil {
			return nil, err
		}
		n.CreatedAt = fromMS(created)
		out = append(out, n)
	}
	return out, rows.Err()
}

// DecideNoticeEmail records what became of a notice's email, once: it
// fails with ErrTaken when it was already decided (by another process).
// Call it in the transaction that queues the emails.
func (tx *Tx) DecideNoticeEmail(ctx context.Context, noticeID int64, e NoticeEmail) error {
	if e.State == EmailPending {
		return fmt.Errorf("decide the email of notice %d: no state", noticeID)
	}
	res, err := tx.exec(ctx, `UPDATE notices SET email_state = ?, email_mailbox_id = ?, email_count = ? WHERE id = ? AND email_state = ?`,
		e.State, e.MailboxID, e.Count, noticeID, EmailPending)
	if err != nil {
		return fmt.Errorf("decide the email of notice %d: %w", noticeID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("decide the email of notice %d: %w", noticeID, ErrTaken)
	}
	return nil
}

// NoticeRestored is the kind of the notice oauth records when a mailbox
// works again after needing reauthentication or refusing the application.
const NoticeRestored = "restored"

// NoticeAlreadyEmailed reports whether an earlier notice of n's mailbox
// and kind, created since since and still unread, was already emailed with
// no "restored" notice of the mailbox after it: the admins have heard of
// this very problem (two parts of Postdesk noticed one refusal, or a
// sending fault was noticed again at the next try).
func (c conn) NoticeAlreadyEmailed(ctx context.Context, n Notice, since time.Time) (bool, error) {
	var count int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM notices e WHERE COALESCE(e.mailbox_id, 0) = ? AND e.kind = ? AND e.id < ?
		AND e.read_at IS NULL AND e.email_state = ? AND e.created_at >= ?
		AND NOT EXISTS (SELECT 1 FROM notices r WHERE r.mailbox_id = e.mailbox_id AND r.kind = ? AND r.id > e.id AND r.id < ?)`,
		n.MailboxID, n.Kind, n.ID, EmailQueued, ms(since), NoticeRestored, n.ID).Scan(&count)
	if err != nil {
		return false, fmt.Errorf("look for an emailed notice like %d: %w", n.ID, err)
	}
	return count > 0, nil
}

// Reminder is an email to the admins before a mailbox's authorization
// runs out (LeadDays before DueAt).
type Reminder struct {
	MailboxID int64
	DueAt     time.Time
	LeadDays  int
	Email     NoticeEmail
	CreatedAt time.Time
}

// AddReminder records a reminder, once per mailbox, deadline and lead: it
// reports false (and writes nothing) when that reminder was already
// recorded. Call it in the transaction that queues its emails.
func (tx *Tx) AddReminder(ctx context.Context, r Reminder) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO notice_reminders (mailbox_id, due_at, lead_days, email_state, email_mailbox_id, email_count, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox_id, due_at, lead_days) DO NOTHING`,
		r.MailboxID, ms(r.DueAt), r.LeadDays, r.Email.State, r.Email.MailboxID, r.Email.Count, ms(r.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("record a reminder for mailbox %d: %w", r.MailboxID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// HasReminder reports whether a mailbox's reminder for a deadline and
// lead was recorded.
func (c conn) HasReminder(ctx context.Context, mailboxID int64, due time.Time, leadDays int) (bool, error) {
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM notice_reminders WHERE mailbox_id = ? AND due_at = ? AND lead_days = ?`,
		mailboxID, ms(due), leadDays).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for a reminder of mailbox %d: %w", mailboxID, err)
	}
	return n > 0, nil
}

// Reminders lists a mailbox's reminders, oldest first.
func (c conn) Reminders(ctx context.Context, mailboxID int64) ([]Reminder, error) {
	rows, err := c.query(ctx, `SELECT mailbox_id, due_at, lead_days, email_state, email_mailbox_id, email_count, created_at
		FROM notice_reminders WHERE mailbox_id = ? ORDER BY created_at, lead_days DESC`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("list reminders of mailbox %d: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []Reminder
	for rows.Next() {
		var r Reminder
		var due, created int64
		if err := rows.Scan(&r.MailboxID, &due, &r.LeadDays, &r.Email.State, &r.Email.MailboxID, &r.Email.Count, &created); err != nil {
			return nil, err
		}
		r.DueAt, r.CreatedAt = fromMS(due), fromMS(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// LatestNotice returns a mailbox's newest notice of a kind.
func (c conn) LatestNotice(ctx context.Context, mailboxID int64, kind string) (Notice, error) {
	var n Notice
	var created int64
	err := c.queryRow(ctx, `SELECT id, COALESCE(mailbox_id, 0), kind, message, created_at, email_state, email_mailbox_id, email_count
		FROM notices WHERE mailbox_id = ? AND kind = ? ORDER BY id DESC LIMIT 1`, mailboxID, kind).
		Scan(&n.ID, &n.MailboxID, &n.Kind, &n.Message, &created, &n.Email.State, &n.Email.MailboxID, &n.Email.Count)
	n.CreatedAt = fromMS(created)
	return n, one(err)
}

// NotificationsSentTo lists the notification emails queued to address
// (any mailbox), oldest first: the record of what an agent or admin was
// sent.
func (c conn) NotificationsSentTo(ctx context.Context, address string) ([]OutboxItem, error) {
	rows, err := c.query(ctx, `SELECT `+outboxCols+outboxFrom+` WHERE o.recipients = ? AND m.kind = ? ORDER BY o.message_id`,
		strings.ToLower(strings.TrimSpace(address)), KindNotification)
	if err != nil {
		return nil, fmt.Errorf("list notifications to %s: %w", address, err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
