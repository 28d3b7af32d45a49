package desk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// ReplyForm is what the reply composer of a ticket shows.
type ReplyForm struct {
	// To is prefilled with the requester; Cc with the thread's Cc (the
	// customer's latest email's To and Cc) minus our own mailbox addresses.
	To, Cc []string
	// Signature is the mailbox's signature, appended to the email (shown under the box).
	Signature string
	// CanSend: the mailbox has SMTP settings.
	CanSend bool
	// Held: the mailbox needs re-authentication; replies will be held.
	Held bool
	// AskTo: the requester has no address a reply can go to (an email
	// without a From, or with one that is not an address), so the agent
	// says whom to send it to (ReplyInput.To); To is empty.
	AskTo              bool
	MaxAttachmentBytes int64
	// Seen is the conversation's newest message (ReplyInput.Seen): the
	// form sends it back, and a reply written before a newer one is
	// refused until the agent has seen it.
	Seen int64
}

// ReplyForm returns the composer's prefilled values for a ticket.
func (d *Desk) ReplyForm(ctx context.Context, ticketID int64) (ReplyForm, error) {
	t, err := d.db.Ticket(ctx, ticketID)
	if err != nil {
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	mb, err := d.db.Mailbox(ctx, t.MailboxID)
	if err != nil {
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	f := ReplyForm{Signature: mb.Signature, MaxAttachmentBytes: MaxReplyAttachmentBytes}
	if t.RequesterAddress == "" || mailmsg.CheckAddress(t.RequesterAddress) != nil {
		f.AskTo = true
	} else {
		f.To = []string{mailmsg.Address{Name: t.RequesterName, Address: t.RequesterAddress}.Quoted()}
	}
	held, err := d.sendable(ctx, d.db, mb)
	var v *ValidationError
	switch {
	case errors.As(err, &v):
	case err != nil:
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	default:
		f.CanSend, f.Held = true, held
	}
	thread, err := d.db.TicketMessages(ctx, ticketID)
	if err != nil {
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	mbs, err := d.db.Mailboxes(ctx)
	if err != nil {
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	users, err := d.db.Users(ctx)
	if err != nil {
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	// Never offered: the requester (in To), our mailboxes, and our agents
	// (an agent who emailed the ticket is not copied on the customer's reply).
	skip := map[string]bool{mailmsg.NormalizeAddress(t.RequesterAddress): true}
	for _, m := range mbs {
		skip[m.Address] = true
	}
	for _, u := range users {
		skip[mailmsg.NormalizeAddress(u.Email)] = true
	}
	offer := func(a mailmsg.Address) {
		key := mailmsg.NormalizeAddress(a.Address)
		if key == "" || skip[key] || mailmsg.CheckAddress(a.Address) != nil {
			return
		}
		skip[key] = true
		f.Cc = append(f.Cc, mailmsg.Address{Name: a.Name, Address: a.Address}.Quoted()) // sent back as it is: readable again
	}
	// As reply-all does: whoever wrote the latest email (when not the
	// requester), then its To and Cc; then those the last reply copied,
	// so that people stay in the conversation when the latest email
	// dropped them.
	latestIn, lastOut := false, false
	// The newest exchange by the one rule Reply checks it with.
	switch latest, err := d.db.LatestExchange(ctx, ticketID); {
	case err == nil:
		f.Seen = latest.ID
	case !errors.Is(err, store.ErrNotFound):
		return ReplyForm{}, fmt.Errorf("reply form of ticket %d: %w", ticketID, err)
	}
	for i := len(thread) - 1; i >= 0 && !(latestIn && lastOut); i-- {
		m := thread[i]
		switch {
		case !latestIn && m.Direction == "in" && m.Kind == store.KindEmail:
			latestIn = true
			offer(mailmsg.Address{Name: m.FromName, Address: m.FromAddress})
			for _, field := range []string{m.To, m.Cc} {
				for _, a := range mailmsg.StoredAddresses(field) {
					offer(a)
				}
			}
		case !lastOut && m.Direction == "out" && m.Kind == store.KindReply && (m.Delivery == nil || !m.Delivery.Auto): // not an acknowledgement
			lastOut = true
			for _, a := range mailmsg.StoredAddresses(m.Cc) {
				offer(a)
			}
		}
	}
	return f, nil
}

// RetryReply queues a failed or unknown reply again (the agent chose to
// send it again) and records it on the ticket's timeline. A reply in any
// other state is a *ValidationError.
func (d *Desk) RetryReply(ctx context.Context, messageID int64, by store.User) error {
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		m, o, err := outgoing(ctx, tx, messageID)
		if err != nil {
			return err
		}
		if o.State != store.DeliveryFailed && o.State != store.DeliveryUnknown {
			return invalid("", "This reply is %s: only a failed reply, or one whose fate is unknown, can be sent again.", o.State)
		}
		now := d.now().UTC()
		if err := tx.Requeue(ctx, messageID, now); err != nil {
			return err
		}
		mb, err := tx.Mailbox(ctx, m.MailboxID)
		if err != nil {
			return err
		}
		held, err := d.sendable(ctx, tx, mb)
		if err != nil {
			return err
		}
		if held {
			if _, err := tx.HoldQueued(ctx, m.MailboxID, now); err != nil {
				return err
			}
		}
		if m.TicketID != 0 {
			ev := store.Note{TicketID: m.TicketID, Kind: store.NoteEvent, AuthorUserID: by.ID, CreatedAt: now,
				Body: fmt.Sprintf("%s chose to send the reply of %s (%q) again", by.Email, replyTime(m), m.Subject)}
			if err := tx.AddNote(ctx, &ev); err != nil {
				return err
			}
		}
		if d.enqueue != nil && !held {
			return d.enqueue.EnqueueSend(ctx, tx, m.MailboxID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("send reply %d again: %w", messageID, err)
	}
	return nil
}

// MarkReplySent records that a reply whose fate was unknown did reach the
// customer (the agent checked), and says so on the ticket's timeline.
func (d *Desk) MarkReplySent(ctx context.Context, messageID int64, by store.User) error {
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		m, o, err := outgoing(ctx, tx, messageID)
		if err != nil {
			return err
		}
		if o.State != store.DeliveryUnknown {
			return invalid("", "This reply is %s: only a reply whose fate is unknown can be marked as sent.", o.State)
		}
		now := d.now().UTC()
		if err := tx.MarkSent(ctx, messageID, now, false); err != nil {
			return err
		}
		if m.TicketID == 0 {
			return nil
		}
		ev := store.Note{TicketID: m.TicketID, Kind: store.NoteEvent, AuthorUserID: by.ID, CreatedAt: now,
			Body: fmt.Sprintf("%s marked the reply of %s (%q) as sent", by.Email, replyTime(m), m.Subject)}
		return tx.AddNote(ctx, &ev)
	})
	if err != nil {
		return fmt.Errorf("mark reply %d sent: %w", messageID, err)
	}
	return nil
}

// outgoing reads an outgoing message and its outbox row; any other
// message is store.ErrNotFound.
func outgoing(ctx context.Context, tx *store.Tx, messageID int64) (store.Message, store.OutboxItem, error) {
	m, err := tx.Message(ctx, messageID)
	if err != nil {
		return store.Message{}, store.OutboxItem{}, err
	}
	if m.Direction != "out" || m.Delivery == nil {
		return store.Message{}, store.OutboxItem{}, store.ErrNotFound
	}
	o, err := tx.OutboxItem(ctx, messageID)
	return m, o, err
}

// replyTime names a reply by when it was written, as the timeline shows it.
func replyTime(m store.Message) string {
	return m.ReceivedAt.UTC().Format(time.DateTime + " UTC")
}
