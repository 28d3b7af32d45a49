package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoSecretKey is the error of opening a sealed secret without a vault.
var ErrNoSecretKey = errors.New("no secret key to open the mailbox password")

// PasswordFunc returns a password mailbox's password.
type PasswordFunc func(ctx context.Context, mailboxID int64) (string, error)

// MailboxPasswords returns the one function through which mail sync reads
// a password mailbox's password: it opens the sealed password with v at
// each call, so the caller never unseals anything itself.
func MailboxPasswords(db *DB, v *Vault) PasswordFunc {
	return func(ctx context.Context, mailboxID int64) (string, error) {
		if v == nil {
			return "", ErrNoSecretKey
		}
		a, err := db.MailboxAuth(ctx, mailboxID)
		if err != nil {
			return "", fmt.Errorf("read the password of mailbox %d: %w", mailboxID, err)
		}
		pw, err := v.Open(a.PasswordSealed, MailboxSecret(mailboxID, "password"))
		if err != nil {
			return "", fmt.Errorf("open the password of mailbox %d: %w", mailboxID, err)
		}
		return string(pw), nil
	}
}
