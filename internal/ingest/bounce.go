package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// recordBounce connects a delivery report to the reply it reports on (by
// the bounced Message-ID): the server had accepted the reply, so it was
// "sent", yet the customer never got it. When a To address (or every
// recipient) bounced, the reply is failed ("bounced", with the report's
// words: its author is emailed, the list marks the ticket) and a solved or
// pending ticket is open again; when only copies did, the ticket says who
// was not reached.
func (in *Ingester) recordBounce(ctx context.Context, tx *store.Tx, mb store.Mailbox, msg *mailmsg.Message, ticketID int64) error {
	if msg.BouncedMessageID == "" {
		return nil
	}
	out, err := tx.MessageByDedupeKey(ctx, mb.ID, store.DedupeKey(msg.BouncedMessageID, ""))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if out.Direction != "out" || out.Kind != store.KindReply || out.TicketID != ticketID {
		return nil
	}
	o, err := tx.OutboxItem(ctx, out.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || (o.State != store.DeliverySent && o.State != store.DeliveryUnknown) {
		return err
	}
	to := map[string]bool{}
	for _, a := range mailmsg.StoredAddresses(out.To) {
		to[mailmsg.NormalizeAddress(a.Address)] = true
	}
	var failed []string // each with the report's words
	seen := map[string]bool{}
	toFailed := false
	for _, b := range msg.BouncedRecipients {
		addr := b.Address
		if !slices.Contains(o.Recipients, addr) && b.Original != "" {
			addr = b.Original // rewritten by the recipient's server (an alias)
		}
		if !slices.Contains(o.Recipients, addr) || seen[addr] {
			continue
		}
		seen[addr] = true
		toFailed = toFailed || to[addr]
		// Diagnostic-Code is "type; words" ("smtp; 550 5.1.1 …", "X-Postfix; …").
		why := b.Diagnostic
		if typ, rest, ok := strings.Cut(why, ";"); ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") {
			why = strings.TrimSpace(rest)
		}
		if b.Status != "" && !strings.Contains(why, b.Status) {
			why = strings.TrimSpace(b.Status + " " + why)
		}
		w := addr
		if why != "" {
			w += " (" + why + ")"
		}
		failed = append(failed, w)
	}
	if len(failed) == 0 && len(msg.BouncedRecipients) == 0 && len(o.Recipients) == 1 {
		failed, toFailed = []string{o.Recipients[0]}, true // a report that names nobody, on a reply to one address
	}
	if len(failed) == 0 {
		return nil
	}
	now := in.now().UTC()
	words := store.BouncedWords + strings.Join(failed, "; ")
	if len(failed) < len(o.Recipients) && toFailed {
		words += " (its other recipients got it)"
	}
	if !toFailed && len(failed) < len(o.Recipients) {
		// Only copies bounced: the customer has it, and Send again would
		// send it to them twice.
		return tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteEvent, CreatedAt: now,
			Body: fmt.Sprintf("The reply of %s did not reach everyone: it was %s. Its other recipients got it.", out.ReceivedAt.UTC().Format("2 Jan 2006 15:04 UTC"), words)})
	}
	return tx.MarkBounced(ctx, out.ID, words, now) // and opens the ticket again
}
