package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

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

// recovery is what the forward step decided.
type recovery struct {
	done bool   // the message was fully handled
	note string // not recovered: a note for the ticket saying why
}

func (in *Ingester) recover(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, own ours, m *store.Message, res *Result) (recovery, error) {
	sender := m.FromAddress
	agent, isAgent := own.agents[sender]
	isSupport := own.support[sender]
	orig, found := mailmsg.PickCustomer(p.Forwards, own.has)
	if found {
		res.Original = &orig
	}
	if !isAgent && !isSupport {
		res.Decisions = append(res.Decisions, fmt.Sprintf("it contains a forwarded email, but %s is neither an agent nor a support address: it is treated as their own email (anyone could forge an original)", sender))
		return recovery{}, nil
	}
	by := "agent"
	if !isAgent {
		by = "support address"
	}
	res.Decisions = append(res.Decisions, fmt.Sprintf("a forward from %s %s", by, sender))
	if !found {
		res.Decisions = append(res.Decisions, "every forwarded original is from one of our own addresses: nothing to recover")
		return recovery{}, nil
	}
	customer := mailmsg.NormalizeAddress(orig.From.Address)
	age := p.ReceivedAt.Sub(orig.Date)
	var why string
	switch {
	case customer == "":
		why = fmt.Sprintf("the original sender's address could not be read (%q)", orig.From.Name)
	case orig.Date.IsZero():
		why = fmt.Sprintf("the original's date could not be read (%q)", orig.DateText)
	case age > in.window:
		why = fmt.Sprintf("the original from %s is %d days old, older than the %d-day recovery window", customer, int(math.Floor(age.Hours()/24)), int(in.window.Hours()/24))
	case age < -2*time.Hour:
		why = fmt.Sprintf("the original's date (%s) is in the future", orig.Date.Format("2006-01-02 15:04 MST"))
	}
	if why != "" {
		res.Decisions = append(res.Decisions, "not attributed to the original sender: "+why)
		return recovery{note: fmt.Sprintf("This email forwarded by %s was not filed as the original sender's: %s.", sender, why)}, nil
	}
	res.Class = "forward_recovery"
	res.Decisions = append(res.Decisions, fmt.Sprintf("the original is from %s, sent %s (%s forward, %s)", customer,
		orig.Date.UTC().Format("2006-01-02 15:04 UTC"), orig.Client, orig.Source))

	// Already here?
	existing, how, err := in.findOriginal(ctx, tx, mb, orig, customer)
	if err != nil {
		return recovery{}, err
	}
	m.Kind = store.KindForward
	if existing.ID != 0 {
		m.TicketID = existing.TicketID
		if err := tx.InsertMessage(ctx, m); err != nil {
			return recovery{}, err
		}
		body := fmt.Sprintf("%s forwarded this customer's email again (%s); it is already here, so nothing new was created.", sender, how)
		if note := firstNote(p.Forwards); note != "" {
			body += "\n\n" + note
		}
		if err := tx.AddNote(ctx, &store.Note{TicketID: existing.TicketID, Kind: store.NoteInternal, AuthorUserID: agent.ID, Body: body, CreatedAt: p.ReceivedAt}); err != nil {
			return recovery{}, err
		}
		res.Outcome, res.TicketID, res.MessageID, res.Kind, res.Class = Duplicate, existing.TicketID, m.ID, m.Kind, "duplicate"
		res.Reason = fmt.Sprintf("the forwarded original is already on ticket %d (%s); the forward is recorded there as a note", existing.TicketID, how)
		res.Decisions = append(res.Decisions, res.Reason)
		return recovery{done: true}, nil
	}

	// A reply to a ticket joins it; otherwise a new ticket from the customer.
	ticketID, whyJoin, err := in.findTicket(ctx, tx, mb, &mailmsg.Message{InReplyTo: orig.InReplyTo, References: orig.References, Subject: orig.Subject})
	if err != nil {
		return recovery{}, err
	}
	if ticketID != 0 {
		if err := tx.RecordCustomerMessage(ctx, ticketID, orig.Date); err != nil {
			return recovery{}, err
		}
		res.Outcome, res.Reason = RecoveredJoined, whyJoin
		res.Decisions = append(res.Decisions, fmt.Sprintf("the original joins ticket %d: %s", ticketID, whyJoin))
	} else {
		ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: ticketSubject(orig.Subject),
			RequesterAddress: customer, RequesterName: orig.From.Name, Status: store.StatusOpen, MessageCount: 1,
			CreatedAt: orig.Date.UTC(), UpdatedAt: orig.Date.UTC()})
		if err != nil {
			return recovery{}, err
		}
		res.Outcome = Recovered
		res.Decisions = append(res.Decisions, fmt.Sprintf("new ticket %d from %s, dated when the customer sent it", ticketID, customer))
	}
	m.TicketID = ticketID
	if err := tx.InsertMessage(ctx, m); err != nil {
		return recovery{}, err
	}
	original := store.Message{MailboxID: mb.ID, TicketID: ticketID, Direction: "in", Kind: store.KindEmail,
		DedupeKey: store.RecoveredDedupeKey(orig.MessageID, p.DedupeKey), MessageID: orig.MessageID, References: orig.References,
		FromAddress: customer, FromName: orig.From.Name, To: joinAddresses(orig.To), Cc: joinAddresses(orig.Cc),
		Subject: orig.Subject, SentAt: orig.Date.UTC(), ReceivedAt: p.ReceivedAt, TextBody: orig.Text, HTMLBody: orig.HTML,
		RawSHA256: p.RawSHA256, RawSize: p.RawSize, RecoveredFrom: m.ID, RecoveredByUserID: agent.ID, RecoveredBy: sender}
	if len(orig.InReplyTo) > 0 {
		original.InReplyTo = orig.InReplyTo[0]
	}
	original.Attachments = in.originalAttachments(orig, m)
	if err := tx.InsertMessage(ctx, &original); err != nil {
		return recovery{}, err
	}
	if note := firstNote(p.Forwards); note != "" {
		if err := tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteInternal, AuthorUserID: agent.ID,
			Body: fmt.Sprintf("%s wrote, forwarding this email:\n\n%s", sender, note), CreatedAt: p.ReceivedAt}); err != nil {
			return recovery{}, err
		}
	}
	if err := tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteEvent, AuthorUserID: agent.ID,
		Body: fmt.Sprintf("Recovered from a forward by %s on %s", sender, p.ReceivedAt.Format("2 Jan 2006 15:04 MST")), CreatedAt: p.ReceivedAt}); err != nil {
		return recovery{}, err
	}
	res.TicketID, res.MessageID, res.Kind, res.From = ticketID, original.ID, store.KindEmail, customer
	return recovery{done: true}, nil
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
func (in *Ingester) originalAttachments(orig mailmsg.Forward, fwd *store.Message) []store.Attachment {
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
		f, err := in.db.Blobs().Open(a.SHA256)
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

// recordAlias stores a customer's email that arrives after it was already
// recovered from a forward: kept (so it is a duplicate next time) but not
// shown twice.
func (in *Ingester) recordAlias(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, m *store.Message, twin store.Message) error {
	m.TicketID = 0
	m.IgnoredReason = fmt.Sprintf("the original of message %d on ticket %d, recovered earlier from a forward by %s", twin.ID, twin.TicketID, twin.RecoveredBy)
	return tx.InsertMessage(ctx, m)
}
