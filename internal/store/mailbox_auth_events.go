package store

import (
	"context"
	"fmt"
	"time"
)

// Every write of a mailbox's authorization state (SetAuthState,
// ForgetMailboxTokens, PutMailboxAuth, SetMailboxPassword) reads the state
// it replaces first (locking the row on PostgreSQL, so two writers cannot
// both see the old state) and, when the state really changes, adds a
// mailbox.auth_state_changed event in the same transaction:
// {"state": new, "previous": old, "error_code": code}. A mailbox without an
// authorization row counts as "ok" before.

// lockAuthState returns a mailbox's authorization state ("" when it has no
// authorization row), locking the row until tx ends on PostgreSQL.
func (tx *Tx) lockAuthState(ctx context.Context, mailboxID int64) (AuthState, error) {
	var s AuthState
	err := tx.queryRow(ctx, `SELECT auth_state FROM mailbox_auth WHERE mailbox_id = ?`+tx.d.forUpdate(), mailboxID).Scan(&s)
	if err = one(err); err == ErrNotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read authorization state of mailbox %d: %w", mailboxID, err)
	}
	return s, nil
}

// authStateChanged tells a change of a mailbox's authorization state.
func (tx *Tx) authStateChanged(ctx context.Context, mailboxID int64, prev, state AuthState, code string, at time.Time) error {
	if prev == "" {
		prev = AuthOK
	}
	if prev == state {
		return nil
	}
	data := map[string]any{"state": string(state), "previous": string(prev)}
	if code != "" {
		data["error_code"] = code
	}
	return tx.AddEvent(ctx, &Event{Kind: EventMailboxAuthStateChange, MailboxID: mailboxID, Data: data, CreatedAt: at})
}
