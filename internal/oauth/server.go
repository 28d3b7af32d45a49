package oauth

import (
	"context"
	"fmt"

	"github.com/postdesk/postdesk/internal/store"
)

// FreshToken asks the provider for a new access token, for a retry after
// the mail server refused the one TokenFor gave. If the provider refuses
// (revoked, expired), the mailbox's state records why, with its reason.
func (s *Service) FreshToken(ctx context.Context, mailboxID int64) (string, error) {
	return s.refreshShared(ctx, mailboxID, refreshAlways, ResourceMail)
}

// FreshTokenFunc is FreshToken bound to a mailbox, the shape imapsync takes.
func (s *Service) FreshTokenFunc(mailboxID int64) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return s.FreshToken(ctx, mailboxID) }
}

// ServerRefused records that the mailbox's mail server refused a fresh
// access token: the mailbox needs re-authentication (fetching stops), and
// the admins are told once.
func (s *Service) ServerRefused(ctx context.Context, mailboxID int64, detail string) error {
	reason := "The mail server refused Postdesk's access token, even a fresh one: sign in again with Reauthenticate."
	if detail != "" {
		reason += " (" + detail + ")"
	}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		return tx.SetAuthState(ctx, mailboxID, store.AuthNeedsReauth, "server_refused", reason, s.utcNow())
	})
	if err != nil {
		return fmt.Errorf("record refused token of mailbox %d: %w", mailboxID, err)
	}
	_, err = s.Evaluate(ctx, mailboxID)
	return err
}
