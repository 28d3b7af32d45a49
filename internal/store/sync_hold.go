package store

import (
	"context"
	"fmt"
	"time"
)

// SyncCandidate is a mailbox mail sync may run: enabled server settings,
// with what decides whether it is usable now. One query lists them all, so
// a sync round costs the same few statements at 5 or 5,000 mailboxes.
type SyncCandidate struct {
	MailboxID int64
	// SettingsAt is the server settings' version (a running session
	// restarts when it changes).
	SettingsAt time.Time
	Kind       AuthKind
	Connected  bool // an OAuth mailbox has a refresh token
	State      AuthState
}

// Usability decides whether the mailbox may be fetched now, by the same
// rule as MailboxAuth.Usability.
func (c SyncCandidate) Usability(oauth bool) Usability {
	return usability(c.Kind, c.Connected, c.State, oauth)
}

// SyncCandidates lists the mailboxes with enabled server settings, by id.
func (c conn) SyncCandidates(ctx context.Context) ([]SyncCandidate, error) {
	rows, err := c.query(ctx, `SELECT s.mailbox_id, s.updated_at, COALESCE(a.kind, 'none'),
		COALESCE(a.refresh_token_sealed, '') <> '', COALESCE(a.auth_state, 'ok')
		FROM mailbox_servers s LEFT JOIN mailbox_auth a ON a.mailbox_id = s.mailbox_id
		WHERE s.enabled = ? ORDER BY s.mailbox_id`, true)
	if err != nil {
		return nil, fmt.Errorf("list synced mailboxes: %w", err)
	}
	defer rows.Close()
	var out []SyncCandidate
	for rows.Next() {
		var m SyncCandidate
		var updated int64
		if err := rows.Scan(&m.MailboxID, &updated, &m.Kind, &m.Connected, &m.State); err != nil {
			return nil, err
		}
		m.SettingsAt = fromMS(updated)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ClaimLeases records owner as the holder of the mailboxes' leases,
// whoever held them before. Call it only for mailboxes whose advisory lock
// owner holds (SyncLocks): the lock decides, the row fences (CheckLease).
func (tx *Tx) ClaimLeases(ctx context.Context, mailboxIDs []int64, owner string, expires time.Time) error {
	for _, id := range mailboxIDs {
		_, err := tx.exec(ctx, `INSERT INTO sync_leases (mailbox_id, owner, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (mailbox_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
			id, owner, ms(expires))
		if err != nil {
			return fmt.Errorf("claim lease on mailbox %d: %w", id, err)
		}
	}
	return nil
}

// RenewLeases extends every lease owner holds to expires, in one statement
// whatever their number, and returns how many it renewed.
func (tx *Tx) RenewLeases(ctx context.Context, owner string, expires time.Time) (int64, error) {
	res, err := tx.exec(ctx, `UPDATE sync_leases SET expires_at = ? WHERE owner = ?`, ms(expires), owner)
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	return res.RowsAffected()
}

// LeasedBy lists the mailboxes whose lease owner holds.
func (c conn) LeasedBy(ctx context.Context, owner string) ([]int64, error) {
	rows, err := c.query(ctx, `SELECT mailbox_id FROM sync_leases WHERE owner = ?`, owner)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return scanInt64s(rows)
}

// CheckLease is the fence of every sync commit: it returns ErrLeaseLost
// unless owner holds the mailbox's lease row. On PostgreSQL the row stays
// share-locked until the transaction ends, so a process taking the mailbox
// over (ClaimLeases) waits for this commit, and once it has claimed the
// row no commit of the former holder passes: a process that lost its lock
// connection cannot commit for a mailbox another process syncs.
func (tx *Tx) CheckLease(ctx context.Context, mailboxID int64, owner string) error {
	var holder string
	err := one(tx.queryRow(ctx, `SELECT owner FROM sync_leases WHERE mailbox_id = ?`+tx.d.forShare(), mailboxID).Scan(&holder))
	if err == ErrNotFound || (err == nil && holder != owner) {
		return fmt.Errorf("mailbox %d: %w", mailboxID, ErrLeaseLost)
	}
	return err
}
