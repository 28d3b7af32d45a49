package notification

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// fromName is the display name of every notification's sender.
const fromName = "Postdesk"

// email is one notification to write.
type email struct {
	to      store.User
	subject string
	intro   string
	items   []mailmsg.NoticeItem
	outro   string
}

// queue composes e and stores it as an outgoing notification of mailbox
// mb (no ticket), with its outbox row, and wakes mb's sender; all in tx.
func (m *Mailer) queue(ctx context.Context, tx *store.Tx, mb store.Mailbox, e email) error {
	now := m.now()
	n := mailmsg.Notice{From: mailmsg.OutAddress{Name: fromName, Address: mb.Address},
		To:      mailmsg.OutAddress{Name: e.to.Name, Address: e.to.Email},
		Subject: e.subject, MessageID: mailmsg.NewMessageID(mb.Address), Date: now,
		Intro: e.intro, Items: e.items, Outro: e.outro}
	raw, err := mailmsg.ComposeNotice(n)
	if err != nil {
		return fmt.Errorf("compose notification to user %d: %w", e.to.ID, err)
	}
	sum, size, err := tx.PutBlob(ctx, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := tx.Blobs().Sync(); err != nil {
		return err
	}
	to := mailmsg.NormalizeAddress(e.to.Email)
	msg := store.Message{MailboxID: mb.ID, Direction: "out", Kind: store.KindNotification,
		DedupeKey: store.DedupeKey(n.MessageID, sum), MessageID: n.MessageID,
		FromAddress: mb.Address, FromName: fromName, To: mailmsg.Address{Name: e.to.Name, Address: to}.String(),
		Subject: e.subject, SentAt: now, ReceivedAt: now, RawSHA256: sum, RawSize: size, NoAutoAnswer: true}
	a, err := tx.MailboxAuth(ctx, mb.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	held := a.HoldsReplies()
	if err := tx.QueueMessage(ctx, &msg, store.Outgoing{EnvelopeFrom: mb.Address, Recipients: []string{to}, Held: held}); err != nil {
		return err
	}
	if m.opt.Enqueuer != nil && !held {
		return m.opt.Enqueuer.EnqueueSend(ctx, tx, mb.ID)
	}
	return nil
}

// reachable reports whether a user can be sent a notification: active
// (not disabled, not an invitation still unanswered), with an address that can be written, and not one of the desk's own
// support addresses (a notification must never come back in as mail).
func reachable(u store.User, supportAddrs map[string]bool) bool {
	addr := mailmsg.NormalizeAddress(u.Email)
	return u.State() == store.UserActive && addr != "" && mailmsg.CheckAddress(strings.TrimSpace(u.Email)) == nil && !supportAddrs[addr]
}

// supportAddresses are every mailbox's address, normalized.
func supportAddresses(ctx context.Context, tx *store.Tx) (map[string]bool, error) {
	all, err := tx.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(all))
	for _, mb := range all {
		out[mailmsg.NormalizeAddress(mb.Address)] = true
	}
	return out, nil
}
