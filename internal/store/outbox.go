package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KindAck is an acknowledgement sent automatically for a new ticket.
const KindAck = "ack"

// Released is the error kind of a message released after a sign-in,
// queued: see ReleaseHeld.
const Released = "released"

// NewerCustomerEmail returns the first customer email on a ticket stored
// after message afterID (ErrNotFound when none): one a reply written
// before it has not answered. Email from our own addresses (an agent
// writing from their mail client, a support address) is nobody's answer.
func (c conn) NewerCustomerEmail(ctx context.Context, ticketID, afterID int64) (Message, error) {
	m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE ticket_id = ? AND id > ? AND direction = 'in' AND kind = ?
		AND from_address NOT IN (SELECT email FROM users) AND from_address NOT IN (SELECT address FROM mailboxes)
		ORDER BY id LIMIT 1`, ticketID, afterID, KindEmail))
	return m, one(err)
}

// Delivery states.
const (
	DeliveryQueued  = "queued"  // waiting to be sent (also between retries: NextAttemptAt)
	DeliverySending = "sending" // an attempt is in progress (recorded BEFORE dialling)
	DeliverySent    = "sent"    // the server accepted it
	DeliveryHeld    = "held"    // the mailbox needs re-authentication; sent in order after Reauthenticate
	DeliveryFailed  = "failed"  // refused for good; LastError has the server's words
	DeliveryUnknown = "unknown" // the worker stopped between sending and recording; could not be checked
)

// Delivery is how an outgoing message is doing.
type Delivery struct {
	State    string
	Attempts int
	// LastError is the server's words, one line ("" when none).
	LastError string
	// ErrorKind is "auth_disabled", "auth_failed", "send_as_denied",
	// "recipient_unknown", "throttled", "temporary", "permanent", "config",
	// "outcome_unknown" or "".
	ErrorKind     string
	NextAttemptAt time.Time // zero when not waiting to retry
	SentAt        time.Time // zero until sent
	Auto          bool      // an acknowledgement, not an agent's reply
}

// OutboxItem is one outgoing message's outbox row, with what the sender
// needs from its message row.
type OutboxItem struct {
	ID        int64 // the messages row
	MailboxID int64
	TicketID  int64
	Delivery
	EnvelopeFrom string
	Recipients   []string
	// MessageID is the message's Message-ID (without <>), RawSHA256 and
	// RawSize its source as sent.
	MessageID        string
	RawSHA256        string
	RawSize          int64
	AttemptStartedAt time.Time
	AttemptOwner     string
	CopyPending      bool // a copy is still to be appended to the Sent folder
	CopyAttempts     int  // drains that could not append the copy
	// QueuedAt is when the message was last queued: written, released
	// after a sign-in, or queued again (an agent's Send again). Temporary
	// failures are retried for a while after it.
	QueuedAt time.Time
	// AnsweredThrough is the newest message of the ticket its author had
	// seen when they chose Send again (0: none since it was written).
	AnsweredThrough int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// What names the message for logs: "acknowledgement" (Auto),
// "notification" (to an agent, on no ticket) or "reply".
func (o OutboxItem) What() string {
	switch {
	case o.Auto:
		return "acknowledgement"
	case o.TicketID == 0:
		return "notification"
	}
	return "reply"
}

// Outgoing is what QueueMessage stores for a message to send.
type Outgoing struct {
	EnvelopeFrom string
	Recipients   []string
	// Held: the mailbox needs re-authentication; the row waits (held)
	// until ReleaseHeld.
	Held bool
	Auto bool
}

const outboxCols = `o.message_id, o.mailbox_id, COALESCE(o.ticket_id, 0), o.state, o.attempts, o.last_error, o.error_kind,
	o.next_attempt_at, o.sent_at, o.auto, o.envelope_from, o.recipients, m.message_id, m.raw_sha256, m.raw_size,
	o.attempt_started_at, o.attempt_owner, o.copy_pending, o.copy_attempts, o.queued_at, o.answered_through, o.created_at, o.updated_at`

const outboxFrom = ` FROM outbox o JOIN messages m ON m.id = o.message_id`

func scanOutbox(s interface{ Scan(...any) error }) (OutboxItem, error) {
	var o OutboxItem
	var next, sent, started, queued, created, updated int64
	var rcpts string
	err := s.Scan(&o.ID, &o.MailboxID, &o.TicketID, &o.State, &o.Attempts, &o.LastError, &o.ErrorKind,
		&next, &sent, &o.Auto, &o.EnvelopeFrom, &rcpts, &o.MessageID, &o.RawSHA256, &o.RawSize,
		&started, &o.AttemptOwner, &o.CopyPending, &o.CopyAttempts, &queued, &o.AnsweredThrough, &created, &updated)
	o.NextAttemptAt, o.SentAt, o.AttemptStartedAt = fromMS(next), fromMS(sent), fromMS(started)
	o.QueuedAt, o.CreatedAt, o.UpdatedAt = fromMS(queued), fromMS(created), fromMS(updated)
	o.Recipients = strings.Fields(rcpts)
	return o, err
}

// QueueMessage stores an outgoing message (direction "out", its raw source
// already a blob) and its outbox row, queued or held, in tx.
func (tx *Tx) QueueMessage(ctx context.Context, m *Message, out Outgoing) error {
	if m.Direction != "out" {
		return fmt.Errorf("queue message: direction %q is not out", m.Direction)
	}
	if len(out.Recipients) == 0 || out.EnvelopeFrom == "" {
		return fmt.Errorf("queue message: no sender or recipients")
	}
	if m.RawSHA256 == "" {
		return fmt.Errorf("queue message: no raw source")
	}
	if err := tx.InsertMessage(ctx, m); err != nil {
		return err
	}
	state := DeliveryQueued
	if out.Held {
		state = DeliveryHeld
	}
	now := ms(m.ReceivedAt)
	rcpts := make([]string, len(out.Recipients))
	for i, r := range out.Recipients {
		rcpts[i] = strings.ToLower(strings.TrimSpace(r))
	}
	_, err := tx.exec(ctx, `INSERT INTO outbox (message_id, mailbox_id, ticket_id, state, envelope_from, recipients, auto, queued_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.MailboxID, nullID(m.TicketID), state, out.EnvelopeFrom, strings.Join(rcpts, "\n"), out.Auto, now, now, now)
	if err != nil {
		return fmt.Errorf("queue message %d: %w", m.ID, err)
	}
	m.Delivery = &Delivery{State: state, Auto: out.Auto}
	return nil
}

// OutboxItem returns one outgoing message's outbox row.
func (c conn) OutboxItem(ctx context.Context, messageID int64) (OutboxItem, error) {
	o, err := scanOutbox(c.queryRow(ctx, `SELECT `+outboxCols+outboxFrom+` WHERE o.message_id = ?`, messageID))
	return o, one(err)
}

// OutboxItems lists a mailbox's outbox rows in one state, oldest first
// (the order they are sent in), at most limit (0: 1000).
func (c conn) OutboxItems(ctx context.Context, mailboxID int64, state string, limit int) ([]OutboxItem, error) {
	if limit <= 0 {
		limit = 1000
	}
	return c.outboxList(ctx, "list "+state+" outbox", `o.mailbox_id = ? AND o.state = ? ORDER BY o.message_id LIMIT ?`, mailboxID, state, limit)
}

// outboxList reads the outbox rows a where clause (on o, with its order
// and limit) selects; what names them in an error.
func (c conn) outboxList(ctx context.Context, what, where string, args ...any) ([]OutboxItem, error) {
	rows, err := c.query(ctx, `SELECT `+outboxCols+outboxFrom+` WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// NextQueued returns a mailbox's oldest queued message, due or not (a
// reply waiting to be retried keeps the ones after it waiting: order is
// kept); ErrNotFound when none is queued.
func (c conn) NextQueued(ctx context.Context, mailboxID int64) (OutboxItem, error) {
	o, err := scanOutbox(c.queryRow(ctx, `SELECT `+outboxCols+outboxFrom+` WHERE o.mailbox_id = ? AND o.state = ?
		ORDER BY o.message_id LIMIT 1`, mailboxID, DeliveryQueued))
	return o, one(err)
}

// DueOutboxMailboxes lists the mailboxes with work for a sender at now: a
// queued message that is due, a copy to append that is due, or a message
// left sending whose sender's lease has lapsed.
func (c conn) DueOutboxMailboxes(ctx context.Context, now time.Time) ([]int64, error) {
	// One SELECT per kind of work, each on its own index.
	rows, err := c.query(ctx, `SELECT mailbox_id FROM outbox WHERE state = ? AND next_attempt_at <= ?
		UNION SELECT mailbox_id FROM outbox WHERE copy_pending AND copy_retry_at <= ?
		UNION SELECT o.mailbox_id FROM outbox o LEFT JOIN outbox_leases l ON l.mailbox_id = o.mailbox_id
			WHERE o.state = ? AND (l.owner IS NULL OR l.expires_at <= ?)
		ORDER BY mailbox_id`, DeliveryQueued, ms(now), ms(now), DeliverySending, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list mailboxes with mail to send: %w", err)
	}
	return scanInt64s(rows)
}

// HasOutboxWork reports whether a mailbox has a queued message due at now
// or a copy to append due at now (a sender checks it after releasing its
// lease, so a message queued meanwhile is not left waiting for the sweep).
func (c conn) HasOutboxWork(ctx context.Context, mailboxID int64, now time.Time) (bool, error) {
	var queued, copies int
	err := c.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE mailbox_id = ? AND state = ? AND next_attempt_at <= ? LIMIT 1) q),
		(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE mailbox_id = ? AND copy_pending AND copy_retry_at <= ? LIMIT 1) c)`,
		mailboxID, DeliveryQueued, ms(now), mailboxID, ms(now)).Scan(&queued, &copies)
	if err != nil {
		return false, fmt.Errorf("look for outbox work of mailbox %d: %w", mailboxID, err)
	}
	return queued+copies > 0, nil
}

// OutboxCounts counts outbox rows by state (every state present, zero when none).
func (c conn) OutboxCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{DeliveryQueued: 0, DeliverySending: 0, DeliverySent: 0, DeliveryHeld: 0, DeliveryFailed: 0, DeliveryUnknown: 0}
	rows, err := c.query(ctx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// AcksSentTo counts the acknowledgements queued for address (any mailbox)
// since since.
func (c conn) AcksSentTo(ctx context.Context, address string, since time.Time) (int, error) {
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE recipients = ? AND created_at >= ? AND auto = ?`,
		strings.ToLower(strings.TrimSpace(address)), ms(since), true).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count acknowledgements to %s: %w", address, err)
	}
	return n, nil
}

// AcksSentFrom counts the acknowledgements a mailbox queued since since.
func (c conn) AcksSentFrom(ctx context.Context, mailboxID int64, since time.Time) (int, error) {
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE mailbox_id = ? AND created_at >= ? AND auto`, mailboxID, ms(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count acknowledgements of mailbox %d: %w", mailboxID, err)
	}
	return n, nil
}

// deliveries returns the outbox rows of the messages a where clause on
// outbox (alias o) selects, by message id.
func (c conn) deliveries(ctx context.Context, where string, args ...any) (map[int64]*Delivery, error) {
	rows, err := c.query(ctx, `SELECT o.message_id, o.state, o.attempts, o.last_error, o.error_kind, o.next_attempt_at, o.sent_at, o.auto
		FROM outbox o WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	out := map[int64]*Delivery{}
	for rows.Next() {
		var id, next, sent int64
		d := &Delivery{}
		if err := rows.Scan(&id, &d.State, &d.Attempts, &d.LastError, &d.ErrorKind, &next, &sent, &d.Auto); err != nil {
			return nil, err
		}
		d.NextAttemptAt, d.SentAt = fromMS(next), fromMS(sent)
		out[id] = d
	}
	return out, rows.Err()
}

// ClaimOutbox takes or renews the right to send a mailbox's outbox until
// until (compare-and-swap: it succeeds when nobody holds the lease, it has
// lapsed by now, or owner holds it). The sender renews it before every
// message; a sender that died is replaced once its lease lapses.
func (tx *Tx) ClaimOutbox(ctx context.Context, mailboxID int64, owner string, now, until time.Time) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO outbox_leases (mailbox_id, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (mailbox_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE outbox_leases.owner = excluded.owner OR outbox_leases.expires_at <= ?`,
		mailboxID, owner, ms(until), ms(now))
	if err != nil {
		return false, fmt.Errorf("claim the outbox of mailbox %d: %w", mailboxID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseOutbox gives up owner's lease on a mailbox's outbox, if it holds it.
func (tx *Tx) ReleaseOutbox(ctx context.Context, mailboxID int64, owner string) error {
	_, err := tx.exec(ctx, `DELETE FROM outbox_leases WHERE mailbox_id = ? AND owner = ?`, mailboxID, owner)
	if err != nil {
		return fmt.Errorf("release the outbox of mailbox %d: %w", mailboxID, err)
	}
	return nil
}

// BeginAttempt records an attempt to send a queued message before the
// sender dials: state sending, attempts + 1, the start and the owner. It
// does so only while owner holds the mailbox's live lease (so a sender
// whose lease lapsed and was taken over never sends), and reports whether
// it did.
func (tx *Tx) BeginAttempt(ctx context.Context, messageID int64, owner string, now time.Time) (bool, error) {
	res, err := tx.exec(ctx, `UPDATE outbox SET state = ?, attempts = attempts + 1, attempt_started_at = ?, attempt_owner = ?,
		next_attempt_at = 0, updated_at = ?
		WHERE message_id = ? AND state = ? AND EXISTS (SELECT 1 FROM outbox_leases l
			WHERE l.mailbox_id = outbox.mailbox_id AND l.owner = ? AND l.expires_at > ?)`,
		DeliverySending, ms(now), owner, ms(now), messageID, DeliveryQueued, owner, ms(now))
	if err != nil {
		return false, fmt.Errorf("record the attempt to send message %d: %w", messageID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MarkSent records that the server accepted a message being sent (or, for
// an unknown one, that it did arrive); copy asks for a copy in the Sent
// folder.
func (tx *Tx) MarkSent(ctx context.Context, messageID int64, at time.Time, copy bool) error {
	return tx.setDelivery(ctx, messageID, "record sent", `state = ?, sent_at = ?, copy_pending = ?, last_error = '', error_kind = '', next_attempt_at = 0`,
		[]string{DeliverySending, DeliveryUnknown}, at, DeliverySent, ms(at), copy)
}

// MarkRetry puts a message being sent back in the queue until next, with
// the temporary failure's kind and words.
func (tx *Tx) MarkRetry(ctx context.Context, messageID int64, kind, lastError string, next, at time.Time) error {
	return tx.setDelivery(ctx, messageID, "record retry of", `state = ?, error_kind = ?, last_error = ?, next_attempt_at = ?`,
		[]string{DeliverySending}, at, DeliveryQueued, kind, oneLine(lastError), ms(next))
}

// MarkFailed records that a message was refused for good (or can never be
// sent, kind "config"), with the server's words.
func (tx *Tx) MarkFailed(ctx context.Context, messageID int64, kind, lastError string, at time.Time) error {
	if err := tx.setDelivery(ctx, messageID, "record failure of", `state = ?, error_kind = ?, last_error = ?, next_attempt_at = 0`,
		[]string{DeliverySending, DeliveryQueued, DeliveryHeld}, at, DeliveryFailed, kind, oneLine(lastError)); err != nil {
		return err
	}
	return tx.replyNotSent(ctx, messageID, DeliveryFailed, kind, at)
}

// MarkUnknown records that a message's last attempt has no known outcome:
// it is not sent again until an agent chooses.
func (tx *Tx) MarkUnknown(ctx context.Context, messageID int64, lastError string, at time.Time) error {
	if err := tx.setDelivery(ctx, messageID, "record unknown outcome of", `state = ?, error_kind = 'outcome_unknown', last_error = ?, next_attempt_at = 0`,
		[]string{DeliverySending}, at, DeliveryUnknown, oneLine(lastError)); err != nil {
		return err
	}
	return tx.replyNotSent(ctx, messageID, DeliveryUnknown, "outcome_unknown", at)
}

// replyNotSent records EventTicketReplyFailed when the message is an
// agent's reply (not an acknowledgement or a notification), so its
// author hears that the customer may not have it; a reply that failed
// for good opens its pending or solved ticket again.
func (tx *Tx) replyNotSent(ctx context.Context, messageID int64, state, kind string, at time.Time) error {
	var ticketID, mailboxID, author int64
	err := one(tx.queryRow(ctx, `SELECT COALESCE(m.ticket_id, 0), m.mailbox_id, COALESCE(m.author_user_id, 0) FROM messages m
		JOIN outbox o ON o.message_id = m.id WHERE m.id = ? AND m.kind = ? AND NOT o.auto`, messageID, KindReply).Scan(&ticketID, &mailboxID, &author))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("record that reply %d was not sent: %w", messageID, err)
	case ticketID == 0:
		return nil
	}
	if err := tx.AddEvent(ctx, &Event{Kind: EventTicketReplyFailed, TicketID: ticketID, MailboxID: mailboxID, MessageID: messageID,
		UserID: author, Data: map[string]any{"state": state, "error_kind": kind}, CreatedAt: at}); err != nil {
		return err
	}
	if state != DeliveryFailed {
		return nil // it may have arrived
	}
	// The customer has no answer: a pending or solved ticket waits on us.
	prev, err := tx.SetTicketStatus(ctx, ticketID, StatusOpen, at)
	if err != nil || prev == StatusOpen {
		return err
	}
	return tx.AddNote(ctx, &Note{TicketID: ticketID, Kind: NoteEvent, CreatedAt: at,
		Body: fmt.Sprintf("Status changed from %s to %s by Postdesk: a reply was not delivered", prev, StatusOpen)})
}

// BouncedWords open the LastError of a bounced message; the bounced
// addresses and the report's reasons follow.
const BouncedWords = "returned undelivered by the recipient's mail system: "

// MarkBounced records that a message the server had accepted (or whose
// outcome was unknown) came back
// undelivered to every recipient (a delivery report, RFC 3464): failed,
// error kind "bounced", with the report's words.
func (tx *Tx) MarkBounced(ctx context.Context, messageID int64, lastError string, at time.Time) error {
	if err := tx.setDelivery(ctx, messageID, "record bounce of", `state = ?, error_kind = 'bounced', last_error = ?, next_attempt_at = 0`,
		[]string{DeliverySent, DeliveryUnknown}, at, DeliveryFailed, oneLine(lastError)); err != nil {
		return err
	}
	return tx.replyNotSent(ctx, messageID, DeliveryFailed, "bounced", at)
}

// Requeue queues a failed or unknown message again (an agent chose to
// send it again, having seen its ticket as it is now: AnsweredThrough);
// its error is cleared, its attempts kept.
func (tx *Tx) Requeue(ctx context.Context, messageID int64, at time.Time) error {
	return tx.setDelivery(ctx, messageID, "queue again", `state = ?, error_kind = '', last_error = '', next_attempt_at = 0, queued_at = ?,
		answered_through = (SELECT COALESCE(MAX(m.id), 0) FROM messages m WHERE m.ticket_id = outbox.ticket_id)`,
		[]string{DeliveryFailed, DeliveryUnknown}, at, DeliveryQueued, ms(at))
}

// RequeueFailedKind queues again, due at once and in their order, a
// mailbox's failed messages whose failure was kind (e.g. "auth_disabled":
// refused before any of them left, so sending them again sends each once),
// and reports how many.
func (tx *Tx) RequeueFailedKind(ctx context.Context, mailboxID int64, kind string, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE outbox SET state = ?, error_kind = '', last_error = '', next_attempt_at = 0, queued_at = ?, updated_at = ?
		WHERE mailbox_id = ? AND state = ? AND error_kind = ?`, DeliveryQueued, ms(at), ms(at), mailboxID, DeliveryFailed, kind)
	if err != nil {
		return 0, fmt.Errorf("queue again the %s replies of mailbox %d: %w", kind, mailboxID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ErrWrongState is returned when an outbox row is not in a state the
// change applies to (a reply already sent cannot be retried).
var ErrWrongState = fmt.Errorf("delivery is not in a state this change applies to")

// setDelivery updates a row that is in one of from; set's placeholders
// take args after the first (the new state is args[0]).
func (tx *Tx) setDelivery(ctx context.Context, messageID int64, what, set string, from []string, at time.Time, args ...any) error {
	q := `UPDATE outbox SET ` + set + `, updated_at = ? WHERE message_id = ? AND state IN (?` + strings.Repeat(", ?", len(from)-1) + `)`
	all := append(append([]any{}, args...), ms(at), messageID)
	for _, f := range from {
		all = append(all, f)
	}
	res, err := tx.exec(ctx, q, all...)
	if err != nil {
		return fmt.Errorf("%s message %d: %w", what, messageID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s message %d: %w", what, messageID, err)
	} else if n == 0 {
		var state string
		if err := one(tx.queryRow(ctx, `SELECT state FROM outbox WHERE message_id = ?`, messageID).Scan(&state)); err != nil {
			return fmt.Errorf("%s message %d: %w", what, messageID, err)
		}
		return fmt.Errorf("%s message %d (%s): %w", what, messageID, state, ErrWrongState)
	}
	return nil
}

// HoldQueued holds a mailbox's queued messages (it needs
// re-authentication) and reports how many.
func (tx *Tx) HoldQueued(ctx context.Context, mailboxID int64, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE outbox SET state = ?, next_attempt_at = 0, updated_at = ? WHERE mailbox_id = ? AND state = ?`,
		DeliveryHeld, ms(at), mailboxID, DeliveryQueued)
	if err != nil {
		return 0, fmt.Errorf("hold the outbox of mailbox %d: %w", mailboxID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ReleaseHeld queues a mailbox's held messages again, due at once, in
// their original order (they are sent by message id), and reports how
// many. Call it in the transaction that records a successful sign-in.
// They are marked Released (error kind "released"): the sender lets the
// mailbox's mail sync catch up first, and sends no reply the customer has
// written after.
func (tx *Tx) ReleaseHeld(ctx context.Context, mailboxID int64, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE outbox SET state = ?, next_attempt_at = 0, error_kind = ?, last_error = '', queued_at = ?, updated_at = ?
		WHERE mailbox_id = ? AND state = ?`, DeliveryQueued, Released, ms(at), ms(at), mailboxID, DeliveryHeld)
	if err != nil {
		return 0, fmt.Errorf("release the outbox of mailbox %d: %w", mailboxID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// OutboxMailboxes lists the mailboxes that have outbox rows in state.
func (c conn) OutboxMailboxes(ctx context.Context, state string) ([]int64, error) {
	rows, err := c.query(ctx, `SELECT DISTINCT mailbox_id FROM outbox WHERE state = ? ORDER BY mailbox_id`, state)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes with %s mail: %w", state, err)
	}
	return scanInt64s(rows)
}
