package web

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// replyStatuses are the composer's three buttons: the status value each
// sends and its label.
var replyStatuses = []struct{ Value, Label string }{
	{"", "Send"},
	{store.StatusPending, "Send and set Pending"},
	{store.StatusSolved, "Send and set Solved"},
}

// replyComposer is the reply form on the ticket page: what desk.ReplyForm
// prefills, or what the agent posted when it was refused.
type replyComposer struct {
	Form      desk.ReplyForm
	To        string // the requester (desk.ReplyForm.To)
	ToInput   string // editable: the requester, or what the agent posted; empty when the requester has no address (desk.ReplyForm.AskTo)
	Cc        string // comma separated, editable
	Text      string
	Errors    map[string]string // field ("text", "to", "cc", "status", "attachments", "") -> sentence
	Limit     string            // "20 MB"
	Buttons   []struct{ Value, Label string }
	MailboxID int64
	Mailbox   string // the From address
	Admin     bool   // the viewer can fix the mailbox (links to Admin -> Emails)
	Dropped   int    // files the agent attached to a refused reply: a browser does not keep them
	Key       string // this form's idempotency key (desk.ReplyInput.Key): sent twice, it sends once
	posted    bool   // Cc and Text are the agent's, not the prefill
}

// Error is the sentence about field, or "".
func (c replyComposer) Error(field string) string { return c.Errors[field] }

// replyLimit is the attachments' limit of a form in words ("20 MB").
func replyLimit(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n>>10, 10) + " KB"
}

// composer fills the reply form of ticket t: desk.ReplyForm's prefill, or
// (posted) what the agent sent.
func (h *Handler) composer(r *http.Request, t store.Ticket, admin bool, c *replyComposer) error {
	f, err := h.desk.ReplyForm(r.Context(), t.ID)
	if err != nil {
		return fmt.Errorf("reply form of ticket %d: %w", t.ID, err)
	}
	c.Form, c.To = f, strings.Join(f.To, ", ")
	if c.Key == "" {
		c.Key = rand.Text()
	}
	if !c.posted {
		c.Cc, c.ToInput = strings.Join(f.Cc, ", "), c.To
	}
	c.Limit = replyLimit(cmp.Or(f.MaxAttachmentBytes, desk.MaxReplyAttachmentBytes))
	c.Buttons = replyStatuses
	c.MailboxID, c.Mailbox, c.Admin = t.MailboxID, t.MailboxAddress, admin
	return nil
}

// ticketReply sends a reply from the composer. Refused (empty text, a bad
// address, no SMTP settings, attachments too large): the page again, with
// the agent's text kept and the sentence beside its field. Sent: back to
// the conversation, at the new message.
func (h *Handler) ticketReply(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, fmt.Sprintf("There is no ticket %q.", r.PathValue("id")))
		return
	}
	up := uploaded(r)
	// A refused form keeps its key: nothing was sent with it.
	kept := replyComposer{ToInput: up.values.Get("to"), Cc: up.values.Get("cc"), Text: up.values.Get("text"), Key: up.values.Get("key"), posted: true}
	if up.tooLarge {
		kept.Errors = map[string]string{"attachments": fmt.Sprintf(
			"The attachments are larger than %s in total: leave some out, or send them in a second reply. Choose the files again.",
			replyLimit(desk.MaxReplyAttachmentBytes))}
		h.renderTicket(w, r, id, http.StatusRequestEntityTooLarge, ticketShowPage{Reply: kept})
		return
	}
	in := desk.ReplyInput{
		Text: kept.Text,
		// The requester as prefilled, or another address the agent wrote
		// (a bounce, a wrong address); empty sends to the requester.
		To:          splitAddresses(kept.ToInput),
		Cc:          splitAddresses(kept.Cc),
		Status:      up.values.Get("status"),
		Attachments: up.files,
		Key:         kept.Key,
	}
	// The newest message the page showed: a reply written before a newer
	// one (the customer again, another agent) is refused until seen.
	in.Seen, _ = strconv.ParseInt(up.values.Get("seen"), 10, 64)
	m, err := h.desk.Reply(r.Context(), id, current(r).user, in)
	var invalid *desk.ValidationError
	switch {
	case errors.As(err, &invalid):
		field := invalid.Field
		if field == "to" && !up.values.Has("to") || field == "seen_message_id" {
			field = "" // not a field of this form: said above it (the page shows the new message)
		}
		if field == "key" {
			// The form's key was used for another reply (the form sent
			// twice with different text) or is not one: said above the
			// form, and the form gets a new key, so Send sends this text.
			field, kept.Key = "", ""
			if errors.Is(err, desk.ErrReplyKeyUsed) {
				err = &desk.ValidationError{Message: "This form was already sent, with other text: that reply is in the conversation, and the text below was not sent. Send sends it as another reply."}
			}
		}
		kept.Errors = map[string]string{field: userMessage(err)}
		kept.Dropped = len(up.files)
		h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{Reply: kept})
		return
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, ticketMissing(id))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.setTicketFlash(w, id, "sent", m.ID)
	http.Redirect(w, r, fmt.Sprintf("%s#m-%d", ticketURL(id), m.ID), http.StatusSeeOther)
}

// splitAddresses splits a comma- or semicolon-separated list of addresses
// ("Ann <ann@x.test>, bob@y.test"), keeping commas inside quotes and angle
// brackets; the desk checks each address.
func splitAddresses(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, angle := false, false
	flush := func() {
		if a := strings.TrimSpace(cur.String()); a != "" {
			out = append(out, a)
		}
		cur.Reset()
	}
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			angle = true
		case c == '>' && !quoted:
			angle = false
		case (c == ',' || c == ';' || c == '\n' || c == '\r') && !quoted && !angle:
			flush()
			continue
		}
		cur.WriteRune(c)
	}
	flush()
	return out
}
