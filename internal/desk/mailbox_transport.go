package desk

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	if _, ok := a.providers(spec.Auth); !ok {
		return TransportChange{}, invalid("send_transport", "Microsoft Graph is only for mailboxes that sign in with Microsoft 365")
	}
	up, err := a.UpdateMailbox(ctx, id, spec)
	if err != nil {
		return TransportChange{}, err
	}
	return TransportChange{Mailbox: up.Mailbox, NeedsSignIn: up.NeedsSignIn, Scopes: up.Scopes, Requeued: up.Requeued}, nil
}

// transportChanged runs in UpdateMailbox's transaction once an OAuth
// mailbox's new settings are saved: it tells whether the sign-in covers
// the scopes the transports need, and when sending just moved to Graph,
// queues again the replies SMTP refused because SMTP AUTH is off (they
// never left, so each goes out once), held while a sign-in is due.
func (a *Admin) transportChanged(ctx context.Context, tx *store.Tx, up *Updated, p oauth.Provider, srv store.MailboxServer, prevSend string, now time.Time) error {
	au, err := tx.MailboxAuth(ctx, srv.MailboxID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	shared := au.Account != "" && au.Account != au.Address
	up.Scopes = oauth.SignInScopes(p, srv, shared)
	up.NeedsSignIn = au.Kind != store.AuthOAuth || !oauth.Covers(p, au.Granted(), up.Scopes)
	if up.NeedsSignIn && au.RefreshTokenSealed != "" && !up.SignInForgotten && up.Notice == "" {
		up.Notice = "The new transport needs permissions the mailbox's sign-in was not granted: Reauthenticate it (Admin -> Emails) to grant them; until then its replies wait."
	}
	if !srv.SendsWithGraph() || prevSend == store.TransportGraph {
		return nil
	}
	n, err := tx.RequeueFailedKind(ctx, srv.MailboxID, "auth_disabled", now)
	if err != nil || n == 0 {
		return err
	}
	up.Requeued = n
	if err := tx.RecordMailboxActivity(ctx, store.Activity{MailboxID: srv.MailboxID, Kind: store.ActivityAuth, CreatedAt: now,
		Message: fmt.Sprintf("Sends through Microsoft Graph now: %d replies SMTP refused are sent again", n)}); err != nil {
		return err
	}
	if au.HoldsReplies() || up.NeedsSignIn {
		_, err := tx.HoldQueued(ctx, srv.MailboxID, now)
		return err
	}
	if a.Outbox != nil {
		return a.Outbox.EnqueueSend(ctx, tx, srv.MailboxID)
	}
	return nil
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
