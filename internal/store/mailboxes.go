package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Mailbox is a support address whose mail becomes tickets.
type Mailbox struct {
	ID        int64
	Address   string // lowercase
	Name      string
	Signature string // appended to replies sent from the mailbox; "" for none
	// AckEnabled: a new ticket's requester gets an acknowledgement, written
	// from AckTemplate ({{ticket}} and {{subject}} are filled in).
	AckEnabled  bool
	AckTemplate string
	CreatedAt   time.Time
	// RemovedAt is when an admin removed a mailbox that has tickets: its
	// row stays for them, and lists of mailboxes to manage skip it (zero:
	// not removed).
	RemovedAt time.Time
}

// Removed reports whether an admin removed the mailbox.
func (m Mailbox) Removed() bool { return !m.RemovedAt.IsZero() }

const mailboxCols = `id, address, name, signature, ack_enabled, ack_template, created_at, removed_at`

func scanMailbox(s interface{ Scan(...any) error }) (Mailbox, error) {
	var m Mailbox
	var created, removed int64
	err := s.Scan(&m.ID, &m.Address, &m.Name, &m.Signature, &m.AckEnabled, &m.AckTemplate, &created, &removed)
	m.CreatedAt, m.RemovedAt = fromMS(created), fromMS(removed)
	return m, err
}

// CreateMailbox adds a support address. A second one with the same address is ErrConflict.
func (tx *Tx) CreateMailbox(ctx context.Context, address, name string) (Mailbox, error) {
	m := Mailbox{Address: strings.ToLower(strings.TrimSpace(address)), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if m.Address == "" || !strings.Contains(m.Address, "@") {
		return Mailbox{}, fmt.Errorf("create mailbox: %q is not an email address", address)
	}
	id, err := tx.insert(ctx, `INSERT INTO mailboxes (address, name, created_at) VALUES (?, ?, ?)`, m.Address, m.Name, ms(m.CreatedAt))
	if err != nil {
		return Mailbox{}, fmt.Errorf("create mailbox %s: %w", m.Address, err)
	}
	m.ID = id
	return m, nil
}

// Mailbox returns one mailbox by id.
func (c conn) Mailbox(ctx context.Context, id int64) (Mailbox, error) {
	m, err := scanMailbox(c.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`, id))
	return m, one(err)
}

// MailboxByAddress returns the mailbox with that address (any case).
func (c conn) MailboxByAddress(ctx context.Context, address string) (Mailbox, error) {
	m, err := scanMailbox(c.queryRow(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE address = ?`, strings.ToLower(strings.TrimSpace(address))))
	return m, one(err)
}

// Mailboxes lists every mailbox by address.
func (c conn) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	rows, err := c.query(ctx, `SELECT `+mailboxCols+` FROM mailboxes ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	defer rows.Close()
	var out []Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetMailboxSignature changes a mailbox's signature; ErrNotFound when there is no such mailbox.
func (tx *Tx) SetMailboxSignature(ctx context.Context, id int64, signature string) error {
	return tx.updateMailbox(ctx, id, "set signature of", `UPDATE mailboxes SET signature = ? WHERE id = ?`, signature, id)
}

// SetMailboxAck turns a mailbox's acknowledgements of new tickets on or
// off and sets their template; ErrNotFound when there is no such mailbox.
func (tx *Tx) SetMailboxAck(ctx context.Context, id int64, enabled bool, template string) error {
	return tx.updateMailbox(ctx, id, "set acknowledgement of", `UPDATE mailboxes SET ack_enabled = ?, ack_template = ? WHERE id = ?`, enabled, template, id)
}

// RestoreMailbox brings back a removed mailbox (its address is added
// again) under name.
func (tx *Tx) RestoreMailbox(ctx context.Context, id int64, name string) error {
	return tx.updateMailbox(ctx, id, "restore", `UPDATE mailboxes SET removed_at = 0, name = ? WHERE id = ?`, name, id)
}

func (tx *Tx) updateMailbox(ctx context.Context, id int64, what, q string, args ...any) error {
	res, err := tx.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s mailbox %d: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("%s mailbox %d: %w", what, id, cmpErr(err, ErrNotFound))
	}
	return nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// RenameMailbox changes a mailbox's display name; ErrNotFound when there is no such mailbox.
func (tx *Tx) RenameMailbox(ctx context.Context, id int64, name string) error {
	res, err := tx.exec(ctx, `UPDATE mailboxes SET name = ? WHERE id = ?`, name, id)
	if err != nil {
		return fmt.Errorf("rename mailbox %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rename mailbox %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("rename mailbox %d: %w", id, ErrNotFound)
	}
	return nil
}
