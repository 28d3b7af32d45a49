package desk

import (
	"context"
	"errors"
	"fmt"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// TransportChange is what SetTransports did.
type TransportChange struct {
	Mailbox store.Mailbox
	// NeedsSignIn: the new transports need permissions the mailbox's
	// sign-in was not granted (Graph's Mail.ReadWrite or Mail.Send):
	// Reauthenticate asks for them. Until then the mailbox keeps its
	// tokens, and what they cannot do fails with a reason.
	NeedsSignIn bool
	// Scopes are the permissions the mailbox's sign-in asks for now.
	Scopes []string
	// Requeued counts the replies SMTP refused with "SMTP AUTH disabled"
	// (535 5.7.139) that were queued again to go out through Graph.
	Requeued int
}

// SetTransports chooses how a Microsoft 365 mailbox fetches ("imap" or
// "graph") and sends ("smtp" or "graph"); "" keeps the current choice.
// Only the transports change (UpdateMailbox's validation applies), so the
// mailbox's tokens are kept: a new sign-in is asked for only when the
// scopes change (TransportChange.NeedsSignIn). Held replies are released
// when the mailbox can send now: the caller wakes the outbox. A missing
// mailbox is store.ErrNotFound; a refused choice a *ValidationError.
func (a *Admin) SetTransports(ctx context.Context, id int64, fetch, send string) (TransportChange, error) {
	spec, err := a.Spec(ctx, id)
	if err != nil {
		return TransportChange{}, err
	}
	if fetch != "" {
		spec.FetchTransport = fetch
	}
	if send != "" {
		spec.SendTransport = send
	}
	p, ok := a.providers(spec.Auth)
	if !ok {
		return TransportChange{}, invalid("send_transport", "Microsoft Graph is only for mailboxes that sign in with Microsoft 365")
	}
	up, err := a.UpdateMailbox(ctx, id, spec)
	if err != nil {
		return TransportChange{}, err
	}
	out := TransportChange{Mailbox: up.Mailbox}
	srv, err := a.db.MailboxServer(ctx, id)
	if err != nil {
		return out, fmt.Errorf("read server settings of mailbox %d: %w", id, err)
	}
	au, err := a.db.MailboxAuth(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return out, fmt.Errorf("read sign-in of mailbox %d: %w", id, err)
	}
	shared := au.Account != "" && au.Account != au.Address
	out.Scopes = oauth.SignInScopes(p, srv, shared)
	out.NeedsSignIn = au.Kind != store.AuthOAuth || !oauth.Covers(p, au.Granted(), out.Scopes)
	if !srv.SendsWithGraph() {
		return out, nil
	}
	// Replies SMTP refused because SMTP AUTH is off never left: they go
	// out through Graph now, once each (held with the rest of the outbox
	// while the mailbox needs a sign-in).
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		now := a.now().UTC()
		n, err := tx.RequeueFailedKind(ctx, id, "auth_disabled", now)
		if err != nil || n == 0 {
			return err
		}
		out.Requeued = n
		if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: id, Kind: store.ActivityAuth, CreatedAt: now,
			Message: fmt.Sprintf("Sends through Microsoft Graph now: %d replies SMTP refused are sent again", n)}); err != nil {
			return err
		}
		if au.HoldsReplies() || out.NeedsSignIn {
			_, err := tx.HoldQueued(ctx, id, now)
			return err
		}
		if a.Outbox != nil {
			return a.Outbox.EnqueueSend(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("queue again the refused replies of mailbox %d: %w", id, err)
	}
	return out, nil
}

// TransportWords says in plain words how a mailbox fetches and sends.
func TransportWords(srv store.MailboxServer) string {
	fetch, send := "IMAP", "SMTP"
	if srv.FetchesWithGraph() {
		fetch = "Microsoft Graph"
	}
	if srv.SendsWithGraph() {
		send = "Microsoft Graph"
	}
	return "Fetches mail over " + fetch + ", sends replies through " + send + "."
}
