package ingest

import (
	"cmp"
	"context"

	"github.com/postdesk/postdesk/internal/store"
)

// addEvent records, in tx, the event a written message is worth to the
// consumers (webhooks, notifications, the ticket list's refresh):
//
//   - a new ticket (from a customer's email, or recovered from an agent's
//     forward) is ticket.created; bulk or list mail too, with "bulk": true
//     in its data, so each consumer decides (notifications skip it);
//   - a customer's email joining an existing ticket (or a forwarded
//     original recovered onto one) is ticket.customer_replied.
//
// Duplicates, automatic replies, bounces, loops, ignored mail and mail from
// our own addresses (an agent's or a support address's) tell nothing.
func addEvent(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision, res Result) error {
	// A new ticket's mailbox may not be the one that fetched it (an email
	// addressed To another of ours): the event names the ticket's.
	e := store.Event{MailboxID: cmp.Or(d.Owner, mb.ID), TicketID: res.TicketID, MessageID: res.MessageID, CreatedAt: p.ReceivedAt}
	bulk := p.Msg != nil && p.Msg.Bulk
	switch res.Outcome {
	case NewTicket:
		e.Kind, e.Data = store.EventTicketCreated, map[string]any{"bulk": bulk}
	case Recovered:
		e.Kind, e.Data = store.EventTicketCreated, map[string]any{"bulk": false, "recovered": true}
	case Joined:
		if d.FromUs {
			return nil
		}
		e.Kind, e.Data = store.EventTicketCustomerReplied, map[string]any{"bulk": bulk}
	case RecoveredJoined:
		e.Kind, e.Data = store.EventTicketCustomerReplied, map[string]any{"bulk": false, "recovered": true}
	default:
		return nil
	}
	if d.Forward != nil {
		e.ActorUserID = d.Forward.Agent.ID
		if d.Existing != nil {
			return nil // the original was here already: nothing new
		}
	}
	if e.TicketID == 0 {
		return nil
	}
	return tx.AddEvent(ctx, &e)
}
