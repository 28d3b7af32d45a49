package notification

import (
	"context"
	"errors"
	"slices"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// healthyMailboxes lists, by id, the mailboxes that can send mail now:
//   - not removed, with SMTP settings;
//   - signing in works: a password mailbox whose password was not
//     refused, or an OAuth mailbox that is connected and neither refused
//     (needs reauthentication) nor refusing the application (client
//     secret), with an OAuth provider configured in this process;
//   - no standing refusal of sending itself (SMTP AUTH disabled, Send As
//     denied, settings that do not work): the newest such refusal is
//     older than the last message it sent.
func (m *Mailer) healthyMailboxes(ctx context.Context, tx *store.Tx) ([]store.Mailbox, error) {
	all, err := tx.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b store.Mailbox) int { return int(a.ID - b.ID) })
	var out []store.Mailbox
	for _, mb := range all {
		ok, err := m.canSend(ctx, tx, mb)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, mb)
		}
	}
	return out, nil
}

// anyMailboxSends reports whether some mailbox has sending settings, so
// that it can send once it works (signed in again, its server back).
func anyMailboxSends(ctx context.Context, tx *store.Tx) (bool, error) {
	all, err := tx.Mailboxes(ctx)
	if err != nil {
		return false, err
	}
	for _, mb := range all {
		if mb.Removed() {
			continue
		}
		srv, err := tx.MailboxServer(ctx, mb.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if srv.SMTPHost != "" && srv.SMTPPort != 0 || srv.SendsWithGraph() {
			return true, nil
		}
	}
	return false, nil
}

func (m *Mailer) canSend(ctx context.Context, tx *store.Tx, mb store.Mailbox) (bool, error) {
	if mb.Removed() {
		return false, nil
	}
	srv, err := tx.MailboxServer(ctx, mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if srv.SMTPHost == "" || srv.SMTPPort == 0 {
		return false, nil
	}
	a, err := tx.MailboxAuth(ctx, mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !a.Usability(m.opt.OAuth != nil).OK() {
		return false, nil
	}
	sum, err := tx.OutboxSummary(ctx, mb.ID, desk.MailboxWideKinds)
	if err != nil {
		return false, err
	}
	if p := sum.Problem; p != nil && p.State != store.DeliverySent && !p.At.Before(sum.LastSentAt) {
		return false, nil
	}
	return true, nil
}

// pickSender chooses the mailbox that sends, deterministically: the first
// of prefer that is healthy, else the healthy mailbox with the lowest id
// other than avoid; avoid itself only when lastResort allows it (a notice
// about a mailbox that still works, such as an expiring one) and no other
// is healthy. ok is false when none can send.
func pickSender(healthy []store.Mailbox, prefer []int64, avoid int64, lastResort bool) (store.Mailbox, bool) {
	for _, id := range prefer {
		if id == 0 || (id == avoid && avoid != 0) {
			continue
		}
		if i := slices.IndexFunc(healthy, func(mb store.Mailbox) bool { return mb.ID == id }); i >= 0 {
			return healthy[i], true
		}
	}
	for _, mb := range healthy {
		if mb.ID != avoid || avoid == 0 {
			return mb, true
		}
	}
	if lastResort {
		for _, mb := range healthy {
			if mb.ID == avoid {
				return mb, true
			}
		}
	}
	return store.Mailbox{}, false
}
