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
	CreatedAt time.Time
}

const mailboxCols = `id, address, name, created_at`

func scanMailbox(s interface{ Scan(...any) error }) (Mailbox, error) {
	var m Mailbox
	var created int64
	err := s.Scan(&m.ID, &m.Address, &m.Name, &created)
	m.CreatedAt = fromMS(created)
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
