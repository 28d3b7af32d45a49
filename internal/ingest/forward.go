package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Forward recovery: a customer's email that an agent (a user of Postdesk)
// or a support address forwards to the support address is filed as if it
// had arrived directly: a ticket from the original customer, dated when
// the customer sent it. Rules:
//
//   - only forwards from our own agents or support addresses are recovered;
//     a forward from anyone else is that person's own email (anyone could
//     forge an "original");
//   - the original is the first sender, from the outside in, who is not one
//     of ours (mailmsg.PickCustomer);
//   - it must be at most the recovery window old; older, undated or
//     addressless originals become an ordinary ticket from the forwarder
//     with a note saying why;
//   - an original Postdesk already has (same Message-ID, or same sender,
//     subject and date within a minute) creates nothing: the forward is
//     recorded on that ticket as a note;
//   - an original that replies to a ticket joins it.
//
// The forward itself is stored (kind forward, raw source kept, not shown as
// a message), so replaying it is a duplicate like any other message.

// writeForward writes a recovered forward: the forward itself (kind
// forward, not shown as a message) and, unless the original is already
// here, the original as the customer's message on its ticket.
func (in *Ingester) writeForward(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision, m *store.Message, res Result) (Result, error) {
	f := d.Forward
	orig := f.Original
	m.Kind = store.KindForward
	if d.Existing != nil {
		m.TicketID = d.Existing.TicketID
		if err := tx.InsertMessage(ctx, m); err != nil {
			return Result{}, err
		}
		body := fmt.Sprintf("%s forwarded this customer's email again (%s); it is already here, so nothing new was created.", f.Sender, f.How)
		if note := firstNote(p.Forwards); note != "" {
			body += "\n\n" + note
		}
		if err := tx.AddNote(ctx, &store.Note{TicketID: d.Existing.TicketID, Kind: store.NoteInternal, AuthorUserID: f.Agent.ID, Body: body, CreatedAt: p.ReceivedAt}); err != nil {
			return Result{}, err
		}
		res.TicketID, res.MessageID, res.Kind = d.Existing.TicketID, m.ID, m.Kind
		return res, nil
	}
	ticketID := d.TicketID
	if d.Outcome == RecoveredJoined {
		if err := recordCustomerMessage(ctx, tx, ticketID, orig.Date, in.now().UTC(), f.Agent.ID, emailFrom(f.Customer)+" recovered from a forward by "+f.Sender); err != nil {
			return Result{}, err
		}
	} else {
		var err error
		ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: ticketSubject(orig.Subject),
			RequesterAddress: d.Requester.Address, RequesterName: d.Requester.Name, Status: store.StatusOpen, MessageCount: 1,
			CreatedAt: orig.Date.UTC(), UpdatedAt: orig.Date.UTC()})
		if err != nil {
			return Result{}, err
		}
	}
	m.TicketID = ticketID
	if err := tx.InsertMessage(ctx, m); err != nil {
		return Result{}, err
	}
	original := store.Message{MailboxID: mb.ID, TicketID: ticketID, Direction: "in", Kind: store.KindEmail,
		DedupeKey: store.RecoveredDedupeKey(orig.MessageID, p.DedupeKey), MessageID: orig.MessageID, References: orig.References,
		FromAddress: f.Customer, FromName: orig.From.Name, To: joinAddresses(orig.To), Cc: joinAddresses(orig.Cc),
		Subject: orig.Subject, SentAt: orig.Date.UTC(), ReceivedAt: p.ReceivedAt, TextBody: orig.Text, HTMLBody: orig.HTML,
		RawSHA256: p.RawSHA256, RawSize: p.RawSize, RecoveredFrom: m.ID, RecoveredByUserID: f.Agent.ID, RecoveredBy: f.Sender}
	if len(orig.InReplyTo) > 0 {
		original.InReplyTo = orig.InReplyTo[0]
	}
	original.Attachments = in.originalAttachments(ctx, orig, m)
	if err := tx.InsertMessage(ctx, &original); err != nil {
		return Result{}, err
	}
	if note := firstNote(p.Forwards); note != "" {
		if err := tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteInternal, AuthorUserID: f.Agent.ID,
			Body: fmt.Sprintf("%s wrote, forwarding this email:\n\n%s", f.Sender, note), CreatedAt: p.ReceivedAt}); err != nil {
			return Result{}, err
		}
	}
	if err := tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteEvent, AuthorUserID: f.Agent.ID,
		Body: fmt.Sprintf("Recovered from a forward by %s on %s", f.Sender, p.ReceivedAt.Format("2 Jan 2006 15:04 MST")), CreatedAt: p.ReceivedAt}); err != nil {
		return Result{}, err
	}
	res.TicketID, res.MessageID, res.Kind, res.From = ticketID, original.ID, store.KindEmail, f.Customer
	return res, nil
}

// findOriginal looks for the forwarded original among stored mail.
func (in *Ingester) findOriginal(ctx context.Context, tx *store.Tx, mb store.Mailbox, orig mailmsg.Forward, customer string) (store.Message, string, error) {
	if orig.MessageID != "" {
		m, err := tx.MessageByDedupeKey(ctx, mb.ID, store.DedupeKey(orig.MessageID, ""))
		if err == nil && m.TicketID != 0 {
			return m, "same Message-ID", nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Message{}, "", err
		}
	}
	m, err := tx.RecoveredTwin(ctx, mb.ID, customer, orig.Subject, orig.Date, orig.DateZoneAssumed)
	if errors.Is(err, store.ErrNotFound) {
		return store.Message{}, "", nil
	}
	if err != nil {
		return store.Message{}, "", err
	}
	return m, "same sender, subject and date", nil
}

// originalAttachments are the files that came with the original: an
// attached original's own (when their content was stored), or, for an
// inline forward, the forward's attachments.
func (in *Ingester) originalAttachments(ctx context.Context, orig mailmsg.Forward, fwd *store.Message) []store.Attachment {
	if orig.Source != mailmsg.ForwardAttached {
		out := make([]store.Attachment, len(fwd.Attachments))
		for i, a := range fwd.Attachments {
			a.ID, a.MessageID = 0, 0
			out[i] = a
		}
		return out
	}
	var out []store.Attachment
	for _, a := range orig.Attachments {
		f, err := in.db.Blobs().Open(ctx, a.SHA256)
		if err != nil {
			continue
		}
		f.Close()
		out = append(out, store.Attachment{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, ContentID: a.ContentID, Inline: a.Inline})
	}
	return out
}

// firstNote is the forwarder's own words above the outermost forward.
func firstNote(chain []mailmsg.Forward) string {
	if len(chain) == 0 {
		return ""
	}
	return strings.TrimSpace(chain[0].Note)
}
