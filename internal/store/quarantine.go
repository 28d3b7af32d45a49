package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Quarantine states.
const (
	QuarantineOpen     = "open"     // never retried
	QuarantineRetried  = "retried"  // retried, and it failed again
	QuarantineResolved = "resolved" // stored at a retry
)

// Quarantine origins.
const (
	OriginSync   = "sync"
	OriginImport = "import"
)

// NoticeQuarantined is the kind of the one notice per mailbox that counts
// its quarantined messages.
const NoticeQuarantined = "quarantined"

// Quarantined is a message that could not be stored: its raw source stays
// in the blob store and the row says why, so the checkpoint can move past
// it and an admin can retry it.
type Quarantined struct {
	ID          int64
	MailboxID   int64
	Origin      string // OriginSync or OriginImport
	Folder      string // sync: the folder, UIDVALIDITY and UID it came from
	UIDValidity uint32
	UID         uint32
	SourceName  string // import: the file (file#n in an mbox)
	RawSHA256   string
	RawSize     int64
	Error       string
	State       string
	Attempts    int
	ReceivedAt  time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ResolvedAt  time.Time
	MessageID   int64 // the stored message, once resolved
}

// Open reports whether the message still waits for a retry.
func (q Quarantined) Open() bool { return q.State != QuarantineResolved }

// maxErrorBytes bounds a stored error text.
const maxErrorBytes = 2000

// CleanErrorText makes an error text (or a file or folder name) storable in
// both databases: valid UTF-8, no NUL or other control characters but
// newline and tab, and at most 2,000 bytes.
func CleanErrorText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > maxErrorBytes {
		cut := maxErrorBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

const quarantineCols = `id, mailbox_id, origin, folder, uid_validity, uid, source_name, raw_sha256, raw_size, error,
	state, attempts, received_at, created_at, updated_at, resolved_at, message_id`

func scanQuarantined(s interface{ Scan(...any) error }) (Quarantined, error) {
	var q Quarantined
	var uv, uid, received, created, updated, resolved int64
	err := s.Scan(&q.ID, &q.MailboxID, &q.Origin, &q.Folder, &uv, &uid, &q.SourceName, &q.RawSHA256, &q.RawSize, &q.Error,
		&q.State, &q.Attempts, &received, &created, &updated, &resolved, &q.MessageID)
	q.UIDValidity, q.UID = uint32(uv), uint32(uid)
	q.ReceivedAt, q.CreatedAt, q.UpdatedAt, q.ResolvedAt = fromMS(received), fromMS(created), fromMS(updated), fromMS(resolved)
	return q, err
}

// Quarantine records a message that could not be stored. When the mailbox
// already has an open quarantine row for the same source (the same message
// imported or fetched again), that row takes the new error and attempt
// instead of a second row. q.ID is set. A new row (not a repeat) adds a
// message.quarantined event: {"quarantine_id", "origin"} (the message has
// no stored messages row, so the event's MessageID is 0).
func (tx *Tx) Quarantine(ctx context.Context, q *Quarantined) error {
	// Whatever the message did to its own write must not stop this one.
	q.Error, q.SourceName, q.Folder = CleanErrorText(q.Error), CleanErrorText(q.SourceName), CleanErrorText(q.Folder)
	if q.State == "" {
		q.State = QuarantineOpen
	}
	if q.UpdatedAt.IsZero() {
		q.UpdatedAt = q.CreatedAt
	}
	var id int64
	err := one(tx.queryRow(ctx, `SELECT id FROM quarantine WHERE mailbox_id = ? AND raw_sha256 = ? AND state <> ? ORDER BY id LIMIT 1`,
		q.MailboxID, q.RawSHA256, QuarantineResolved).Scan(&id))
	switch {
	case err == nil:
		if _, err := tx.exec(ctx, `UPDATE quarantine SET error = ?, attempts = attempts + 1, updated_at = ?, folder = ?, uid_validity = ?, uid = ?,
			source_name = ? WHERE id = ?`, q.Error, ms(q.UpdatedAt), q.Folder, int64(q.UIDValidity), int64(q.UID), q.SourceName, id); err != nil {
			return fmt.Errorf("update quarantined message %d: %w", id, err)
		}
		q.ID = id
		return nil
	case err != ErrNotFound:
		return fmt.Errorf("find quarantined message: %w", err)
	}
	if q.Attempts == 0 {
		q.Attempts = 1
	}
	q.ID, err = tx.insert(ctx, `INSERT INTO quarantine (mailbox_id, origin, folder, uid_validity, uid, source_name, raw_sha256, raw_size,
		error, state, attempts, received_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		q.MailboxID, q.Origin, q.Folder, int64(q.UIDValidity), int64(q.UID), q.SourceName, q.RawSHA256, q.RawSize,
		q.Error, q.State, q.Attempts, ms(q.ReceivedAt), ms(q.CreatedAt), ms(q.UpdatedAt))
	if err != nil {
		return fmt.Errorf("quarantine message: %w", err)
	}
	if err := tx.keepBlob(ctx, q.RawSHA256); err != nil {
		return fmt.Errorf("quarantine message: %w", err)
	}
	return tx.AddEvent(ctx, &Event{Kind: EventMessageQuarantined, MailboxID: q.MailboxID, CreatedAt: q.CreatedAt,
		Data: map[string]any{"quarantine_id": q.ID, "origin": q.Origin}})
}

// RetryFailed records that a retry of a quarantined message failed again.
func (tx *Tx) RetryFailed(ctx context.Context, id int64, errText string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE quarantine SET state = ?, error = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND state <> ?`,
		QuarantineRetried, CleanErrorText(errText), ms(at), id, QuarantineResolved)
	if err != nil {
		return fmt.Errorf("record retry of quarantined message %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ResolveQuarantined records that a quarantined message is stored now, as
// message messageID. It is ErrNotFound when the row does not exist or is
// already resolved.
func (tx *Tx) ResolveQuarantined(ctx context.Context, id, messageID int64, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE quarantine SET state = ?, message_id = ?, attempts = attempts + 1, resolved_at = ?, updated_at = ?
		WHERE id = ? AND state <> ?`, QuarantineResolved, messageID, ms(at), ms(at), id, QuarantineResolved)
	if err != nil {
		return fmt.Errorf("resolve quarantined message %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// QuarantinedMessage returns one quarantine row.
func (c conn) QuarantinedMessage(ctx context.Context, id int64) (Quarantined, error) {
	q, err := scanQuarantined(c.queryRow(ctx, `SELECT `+quarantineCols+` FROM quarantine WHERE id = ?`, id))
	return q, one(err)
}

// QuarantineFilter selects quarantine rows; the zero value is every open
// row of every mailbox.
type QuarantineFilter struct {
	MailboxID int64
	// All includes resolved rows.
	All   bool
	Limit int // 0: 100
}

// QuarantinedMessages lists quarantine rows, newest first.
func (c conn) QuarantinedMessages(ctx context.Context, f QuarantineFilter) ([]Quarantined, error) {
	q := `SELECT ` + quarantineCols + ` FROM quarantine WHERE 1 = 1`
	var args []any
	if f.MailboxID != 0 {
		q += ` AND mailbox_id = ?`
		args = append(args, f.MailboxID)
	}
	if !f.All {
		q += ` AND state <> ?`
		args = append(args, QuarantineResolved)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := c.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list quarantined messages: %w", err)
	}
	defer rows.Close()
	var out []Quarantined
	for rows.Next() {
		row, err := scanQuarantined(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// CountQuarantined counts a mailbox's open quarantine rows.
func (c conn) CountQuarantined(ctx context.Context, mailboxID int64) (int, error) {
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM quarantine WHERE mailbox_id = ? AND state <> ?`, mailboxID, QuarantineResolved).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count quarantined messages: %w", err)
	}
	return n, nil
}

// PutUnreadNotice makes n the mailbox's one unread notice of its kind: an
// unread notice of that kind and mailbox takes n's message and time, else
// n is added. n.ID is set.
func (tx *Tx) PutUnreadNotice(ctx context.Context, n *Notice) error {
	var id int64
	err := one(tx.queryRow(ctx, `SELECT id FROM notices WHERE mailbox_id = ? AND kind = ? AND read_at IS NULL ORDER BY id DESC LIMIT 1`,
		n.MailboxID, n.Kind).Scan(&id))
	if err == ErrNotFound {
		return tx.AddNotice(ctx, n)
	}
	if err != nil {
		return fmt.Errorf("find notice: %w", err)
	}
	if _, err := tx.exec(ctx, `UPDATE notices SET message = ?, created_at = ? WHERE id = ?`, n.Message, ms(n.CreatedAt), id); err != nil {
		return fmt.Errorf("update notice %d: %w", id, err)
	}
	n.ID = id
	return nil
}

// ReadNotices marks a mailbox's unread notices of a kind read.
func (tx *Tx) ReadNotices(ctx context.Context, mailboxID int64, kind string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE notices SET read_at = ? WHERE mailbox_id = ? AND kind = ? AND read_at IS NULL`, ms(at), mailboxID, kind)
	if err != nil {
		return fmt.Errorf("mark notices read: %w", err)
	}
	return nil
}
