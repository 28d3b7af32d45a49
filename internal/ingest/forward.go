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
	note := firstNote(p.Forwards)
	if d.Existing != nil {
		m.TicketID = d.Existing.TicketID
		if err := tx.InsertMessage(ctx, m); err != nil {
			return Result{}, err
		}
		if err := in.forwardedAgain(ctx, tx, p, d, note); err != nil {
			return Result{}, err
		}
		res.TicketID, res.MessageID, res.Kind = d.Existing.TicketID, m.ID, m.Kind
		return res, in.writeMore(ctx, tx, mb, p, d, m)
	}
	ticketID, err := in.originalTicket(ctx, tx, mb, d)
	if err != nil {
		return Result{}, err
	}
	m.TicketID = ticketID
	if err := tx.InsertMessage(ctx, m); err != nil {
		return Result{}, err
	}
	original, err := in.writeOriginal(ctx, tx, mb, p, d, m, ticketID, store.RecoveredDedupeKey(orig.MessageID, p.DedupeKey))
	if err != nil {
		return Result{}, err
	}
	if err := forwarderWords(ctx, tx, p, d, ticketID, note); err != nil {
		return Result{}, err
	}
	res.TicketID, res.MessageID, res.Kind, res.From = ticketID, original.ID, store.KindEmail, f.Customer
	return res, in.writeMore(ctx, tx, mb, p, d, m)
}

// forwarderWords keeps the forwarder's own words, if any, as an internal
// note on a ticket filed from their forward.
func forwarderWords(ctx context.Context, tx *store.Tx, p *Prepared, d Decision, ticketID int64, note string) error {
	if note == "" {
		return nil
	}
	return tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteInternal, AuthorUserID: d.Forward.Agent.ID,
		Body: fmt.Sprintf("%s wrote, forwarding this email:\n\n%s", d.Forward.Sender, note), CreatedAt: p.ReceivedAt})
}

// forwardedAgain notes on the ticket that has it that an original was
// forwarded again.
func (in *Ingester) forwardedAgain(ctx context.Context, tx *store.Tx, p *Prepared, d Decision, note string) error {
	f := d.Forward
	body := fmt.Sprintf("%s forwarded this customer's email again (%s); it is already here, so nothing new was created.", f.Sender, f.How)
	if note != "" {
		body += "\n\n" + note
	}
	return tx.AddNote(ctx, &store.Note{TicketID: d.Existing.TicketID, Kind: store.NoteInternal, AuthorUserID: f.Agent.ID, Body: body, CreatedAt: p.ReceivedAt})
}

// originalTicket is the ticket a recovered original goes on: the one it
// replies to (counted as the customer's), or a new one dated when the
// customer sent it.
func (in *Ingester) originalTicket(ctx context.Context, tx *store.Tx, mb store.Mailbox, d Decision) (int64, error) {
	f := d.Forward
	orig := f.Original
	if d.Outcome == RecoveredJoined {
		return d.TicketID, recordCustomerMessage(ctx, tx, d.TicketID, orig.Date, in.now().UTC(), f.Agent.ID, emailFrom(f.Customer)+" recovered from a forward by "+f.Sender)
	}
	return tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: ticketSubject(orig.Subject),
		RequesterAddress: d.Requester.Address, RequesterName: d.Requester.Name, Status: store.StatusOpen, MessageCount: 1,
		CreatedAt: orig.Date.UTC(), UpdatedAt: orig.Date.UTC()})
}

// writeOriginal stores a recovered original (the customer's message,
// under key) on its ticket, with the event note saying who forwarded it.
func (in *Ingester) writeOriginal(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision, fwd *store.Message, ticketID int64, key string) (store.Message, error) {
	f := d.Forward
	orig := f.Original
	original := store.Message{MailboxID: mb.ID, TicketID: ticketID, Direction: "in", Kind: store.KindEmail,
		DedupeKey: key, MessageID: orig.MessageID, References: orig.References,
		FromAddress: f.Customer, FromName: orig.From.Name, To: joinAddresses(orig.To), Cc: joinAddresses(orig.Cc),
		Subject: orig.Subject, SentAt: orig.Date.UTC(), ReceivedAt: p.ReceivedAt, TextBody: orig.Text, HTMLBody: orig.HTML,
		RawSHA256: p.RawSHA256, RawSize: p.RawSize, RecoveredFrom: fwd.ID, RecoveredByUserID: f.Agent.ID, RecoveredBy: f.Sender}
	if len(orig.InReplyTo) > 0 {
		original.InReplyTo = orig.InReplyTo[0]
	}
	original.Attachments = in.originalAttachments(ctx, orig, fwd)
	if err := tx.InsertMessage(ctx, &original); err != nil {
		return store.Message{}, err
	}
	err := tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteEvent, AuthorUserID: f.Agent.ID,
		Body: fmt.Sprintf("Recovered from a forward by %s on %s", f.Sender, p.ReceivedAt.Format("2 Jan 2006 15:04 MST")), CreatedAt: p.ReceivedAt})
	return original, err
}

// writeMore files the other originals attached beside the first (d.More),
// each as it would have been alone, and notes on the forward's ticket
// those that could not be (d.MoreNotes).
func (in *Ingester) writeMore(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision, fwd *store.Message) error {
	written := map[string]bool{store.RecoveredDedupeKey(d.Forward.Original.MessageID, p.DedupeKey): true}
	for i, sub := range d.More {
		key := store.SiblingDedupeKey(sub.Forward.Original.MessageID, p.DedupeKey, i+1)
		if written[key] {
			continue // the same original attached twice
		}
		written[key] = true
		note := firstNote(p.Forwards) // the agent's words are about every email they forwarded
		if sub.Existing != nil {
			if err := in.forwardedAgain(ctx, tx, p, sub, note); err != nil {
				return err
			}
			continue
		}
		ticketID, err := in.originalTicket(ctx, tx, mb, sub)
		if err != nil {
			return err
		}
		original, err := in.writeOriginal(ctx, tx, mb, p, sub, fwd, ticketID, key)
		if err != nil {
			return err
		}
		if err := forwarderWords(ctx, tx, p, sub, ticketID, note); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, mb, p, sub, Result{Outcome: sub.Outcome, TicketID: ticketID, MessageID: original.ID}); err != nil {
			return err
		}
	}
	for _, why := range d.MoreNotes {
		if err := tx.AddNote(ctx, &store.Note{TicketID: fwd.TicketID, Kind: store.NoteEvent, AuthorUserID: d.Forward.Agent.ID,
			Body:      fmt.Sprintf("This forward by %s carried another email too, which was not filed as its sender's (it is in the forward's source, shown with the recovered email): %s.", d.Forward.Sender, why),
			CreatedAt: p.ReceivedAt}); err != nil {
			return err
		}
	}
	return nil
}

// findOriginal looks for the forwarded original among stored mail: in
// mb first, then in every other mailbox (an agent forwards to a working
// mailbox what reached another one).
func (in *Ingester) findOriginal(ctx context.Context, tx *store.Tx, mb store.Mailbox, orig mailmsg.Forward, customer string) (store.Message, string, error) {
	mbs, err := tx.Mailboxes(ctx)
	if err != nil {
		return store.Message{}, "", err
	}
	ids := []int64{mb.ID}
	for _, other := range mbs {
		if other.ID != mb.ID {
			ids = append(ids, other.ID)
		}
	}
	for _, id := range ids {
		where := ""
		if id != mb.ID {
			where = " in " + mailboxAddress(mbs, id)
		}
		if orig.MessageID != "" {
			m, err := tx.MessageByDedupeKey(ctx, id, store.DedupeKey(orig.MessageID, ""))
			if err == nil && m.TicketID != 0 {
				return m, "same Message-ID" + where, nil
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return store.Message{}, "", err
			}
		}
		m, err := tx.RecoveredTwin(ctx, id, customer, orig.Subject, orig.Date, orig.DateZoneAssumed)
		if err == nil {
			return m, "same sender, subject and date" + where, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Message{}, "", err
		}
	}
	return store.Message{}, "", nil
}

func mailboxAddress(mbs []store.Mailbox, id int64) string {
	for _, mb := range mbs {
		if mb.ID == id {
			return mb.Address
		}
	}
	return fmt.Sprintf("mailbox %d", id)
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
