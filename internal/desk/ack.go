package desk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// DefaultAckTemplate is the acknowledgement a mailbox sends when its
// template is empty.
const DefaultAckTemplate = "Hello,\n\nThank you for your email \"{{subject}}\". We have received it as ticket #{{ticket}} and will answer as soon as we can. " +
	"Reply to this email to add anything.\n"

// MaxAckTemplateBytes bounds an acknowledgement's template.
const MaxAckTemplateBytes = 8 << 10

// MaxAcksPerHour is how many acknowledgements one address gets in an hour
// at most (from every mailbox together): two helpdesks acknowledging each
// other, or a sender in a loop, stop there.
const MaxAcksPerHour = 3

// MaxAcksPerMailboxHour is how many acknowledgements one mailbox sends in
// an hour at most. Anyone can write to a support address, and each email
// could make it mail someone: a flood of forged emails stops here, and
// the new tickets are simply not acknowledged.
const MaxAcksPerMailboxHour = 100

// SetAcknowledgement turns a mailbox's acknowledgements of new tickets on
// or off and sets their template ({{ticket}} and {{subject}} are filled
// in; "" uses DefaultAckTemplate).
func (a *Admin) SetAcknowledgement(ctx context.Context, mailboxID int64, enabled bool, template string) (store.Mailbox, error) {
	spec := MailboxSpec{AckEnabled: enabled, AckTemplate: template}
	if err := checkAck(&spec); err != nil {
		return store.Mailbox{}, err
	}
	template = spec.AckTemplate
	var mb store.Mailbox
	err := a.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetMailboxAck(ctx, mailboxID, enabled, template); err != nil {
			return err
		}
		var err error
		mb, err = tx.Mailbox(ctx, mailboxID)
		return err
	})
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("set acknowledgement of mailbox %d: %w", mailboxID, err)
	}
	return mb, nil
}

// AckText fills a template for a ticket.
func AckText(template string, ticketID int64, subject string) string {
	if strings.TrimSpace(template) == "" {
		template = DefaultAckTemplate
	}
	return strings.NewReplacer("{{ticket}}", strconv.FormatInt(ticketID, 10), "{{subject}}", subject).Replace(template)
}

// Acknowledge queues, in tx, the acknowledgement of a ticket that msg just
// opened, when its mailbox sends them: ingest calls it for a new ticket
// from a customer (never for automatic, bounced, bulk or list mail, nor for
// mail from our own addresses: ingest decides those). It sends nothing to
// an address that already got MaxAcksPerHour in the last hour, nor from a
// mailbox that sent MaxAcksPerMailboxHour or cannot send; it reports
// whether it queued one.
func (d *Desk) Acknowledge(ctx context.Context, tx *store.Tx, ticketID int64, msg store.Message) (bool, error) {
	if on, err := tx.TicketMailboxAcks(ctx, ticketID); err != nil || !on {
		return false, err
	}
	t, err := tx.Ticket(ctx, ticketID)
	if err != nil {
		return false, err
	}
	mb, err := tx.Mailbox(ctx, t.MailboxID)
	if err != nil || !mb.AckEnabled {
		return false, err
	}
	to := mailmsg.NormalizeAddress(t.RequesterAddress)
	if to == "" || mailmsg.CheckAddress(to) != nil {
		return false, nil
	}
	now := d.now().UTC().Truncate(time.Millisecond)
	n, err := tx.AcksSentTo(ctx, to, now.Add(-time.Hour))
	if err != nil || n >= MaxAcksPerHour {
		return false, err
	}
	if n, err = tx.AcksSentFrom(ctx, mb.ID, now.Add(-time.Hour)); err != nil || n >= MaxAcksPerMailboxHour {
		return false, err
	}
	held, err := d.sendable(ctx, tx, mb)
	if errors.Is(err, ErrInvalid) {
		return false, nil // no SMTP settings: nothing to send with
	}
	if err != nil {
		return false, err
	}
	r := mailmsg.Reply{From: mailmsg.OutAddress{Name: mb.Name, Address: mb.Address},
		To:      []mailmsg.OutAddress{{Name: t.RequesterName, Address: to}},
		Subject: t.Subject, TicketID: t.ID, MessageID: mailmsg.NewMessageID(mb.Address),
		InReplyTo: msg.MessageID, References: msg.References,
		Text: AckText(mb.AckTemplate, t.ID, t.Subject), Signature: mb.Signature, Date: now}
	if _, err := d.queue(ctx, tx, r, t, queueAs{held: held, auto: true}); err != nil {
		return false, err
	}
	return true, nil
}
