package desk

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Upload is a file an agent attaches to a reply.
type Upload struct {
	Filename, ContentType string
	Data                  []byte
}

// ReplyInput is what an agent writes.
type ReplyInput struct {
	Text string
	// To: empty is the ticket's requester (the Reply-To rule was applied at ingest).
	To []string
	Cc []string
	// Status: "" keeps the status; else open, pending or solved, set in the same transaction.
	Status      string
	Attachments []Upload
	// Key, if set, makes the reply idempotent: a token the client makes
	// for one reply (the composer puts a fresh one in each form; an API
	// client sends an Idempotency-Key). The same key on the same ticket
	// by the same agent sends once: a form submitted twice, or a request
	// retried after its answer was lost, returns the first reply.
	Key string
	// Seen, if set, is the id of the conversation's newest message when
	// the agent wrote (ReplyForm.Seen): if a newer one came since (the
	// customer wrote again, or another agent replied), the reply is not
	// sent (*ValidationError "seen_message_id", ErrReplyStale) so that the agent reads
	// it first; sent again with the new Seen, it goes.
	Seen int64
}

// ErrReplyStale: the conversation has a message newer than the one the
// agent saw (ReplyInput.Seen); nothing was sent.
var ErrReplyStale = errors.New("the conversation changed since it was shown")

// ErrReplyKeyUsed: a reply's key was used for another message (other
// text, or not this ticket's reply); nothing was sent.
var ErrReplyKeyUsed = errors.New("reply key already used")

// keyedReplyID is the Message-ID of the reply that agent sends on a
// ticket of mb with key (ReplyInput.Key).
func keyedReplyID(mb store.Mailbox, ticketID, agent int64, key string) string {
	return mailmsg.KeyedMessageID(mb.Address, fmt.Sprintf("reply\x00%d\x00%d\x00%d\x00%d\x00%s", mb.ID, mb.CreatedAt.UnixMilli(), ticketID, agent, key))
}

// maxReplyKeyBytes bounds ReplyInput.Key.
const maxReplyKeyBytes = 200

// MaxReplyTextBytes bounds a reply's text.
const MaxReplyTextBytes = 64 << 10

// MaxReplyAttachmentBytes bounds all attachments of one reply together.
const MaxReplyAttachmentBytes = 20 << 20

// maxRecipients bounds To and Cc together.
const maxRecipients = 50

// quotedMessages is how many earlier messages a reply quotes.
const quotedMessages = 3

// ErrNoSMTP is wrapped by the *ValidationError (Field "") of a reply whose
// ticket's mailbox has no SMTP settings.
var ErrNoSMTP = errors.New("mailbox has no SMTP settings")

// Enqueuer wakes a mailbox's outbox sender in the caller's transaction:
// the wake-up commits, or rolls back, with the rows it is about. Package
// jobs implements it.
type Enqueuer interface {
	EnqueueSend(ctx context.Context, tx *store.Tx, mailboxID int64) error
}

// Option configures a Desk.
type Option func(*Desk)

// WithEnqueuer gives the Desk the sender's wake-up (without one, queued
// replies wait for the sender's periodic sweep).
func WithEnqueuer(e Enqueuer) Option { return func(d *Desk) { d.enqueue = e } }

// Reply composes an agent's reply (mailmsg.ComposeReply), stores the
// message with its raw source, its outbox row (queued, or held when the
// mailbox needs re-authentication), the status change and its timeline
// event, the assignment of a ticket nobody owned to the replier (unless
// WithAssignOnReply(false)), and wakes the sender, all in one
// transaction. Bad input is a *ValidationError (Field "text", "to", "cc",
// "status", "attachments", or "" wrapping ErrNoSMTP); an unknown ticket is
// store.ErrNotFound (wrapped).
func (d *Desk) Reply(ctx context.Context, ticketID int64, by store.User, in ReplyInput) (store.Message, error) {
	text, err := checkReplyInput(&in)
	if err != nil {
		return store.Message{}, err
	}
	var m store.Message
	err = d.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		m, err = d.reply(ctx, tx, ticketID, by, text, in)
		return err
	})
	if err != nil {
		return store.Message{}, fmt.Errorf("reply on ticket %d: %w", ticketID, err)
	}
	return m, nil
}

func checkReplyInput(in *ReplyInput) (string, error) {
	text := strings.TrimRight(strings.ReplaceAll(in.Text, "\r\n", "\n"), " \t\n")
	text = strings.TrimLeft(text, "\n")
	if strings.TrimSpace(text) == "" {
		return "", invalid("text", "The reply is empty: write something to send.")
	}
	if len(text) > MaxReplyTextBytes {
		return "", invalid("text", "The reply is longer than %d KB.", MaxReplyTextBytes>>10)
	}
	if len(in.Key) > maxReplyKeyBytes || strings.ContainsFunc(in.Key, func(r rune) bool { return r < ' ' || r > '~' }) {
		return "", invalid("key", "The idempotency key must be at most %d printable ASCII characters.", maxReplyKeyBytes)
	}
	if in.Status != "" && !store.ValidStatus(in.Status) {
		return "", invalid("status", "status must be open, pending or solved, not %q", in.Status)
	}
	var total int
	for _, a := range in.Attachments {
		if strings.TrimSpace(a.Filename) == "" {
			return "", invalid("attachments", "An attachment has no file name.")
		}
		total += len(a.Data)
	}
	if total > MaxReplyAttachmentBytes {
		return "", invalid("attachments", "The attachments together are %.1f MB; at most %d MB can be sent with one reply.",
			float64(total)/(1<<20), MaxReplyAttachmentBytes>>20)
	}
	return text, nil
}

// reply does Reply's work in tx.
func (d *Desk) reply(ctx context.Context, tx *store.Tx, ticketID int64, by store.User, text string, in ReplyInput) (store.Message, error) {
	// The ticket's lock first, as its other writers take it before their
	// other writes (ingest, notes): a reply that wrote its blobs first
	// could deadlock on PostgreSQL with one that had locked the ticket and
	// writes the same blob. It also makes a second submission of a key
	// wait for the first, then see its reply.
	if err := tx.LockTicket(ctx, ticketID); err != nil {
		return store.Message{}, err
	}
	t, err := tx.Ticket(ctx, ticketID)
	if err != nil {
		return store.Message{}, err
	}
	mb, err := tx.Mailbox(ctx, t.MailboxID)
	if err != nil {
		return store.Message{}, err
	}
	messageID := mailmsg.NewMessageID(mb.Address)
	if in.Key != "" {
		// The key's reply has a Message-ID made from it (and from this
		// mailbox, ticket and agent): if that reply is stored, this is the
		// same reply again.
		messageID = keyedReplyID(mb, ticketID, by.ID, in.Key)
		prev, err := tx.MessageByDedupeKey(ctx, t.MailboxID, store.DedupeKey(messageID, ""))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return store.Message{}, err
		case prev.Direction != "out" || prev.Kind != store.KindReply || prev.TicketID != ticketID || prev.AuthorUserID != by.ID:
			// Some other message has that Message-ID (an email made to
			// look like the reply by someone who guessed the key): it is
			// never answered as this reply.
			return store.Message{}, &ValidationError{Field: "key", Err: ErrReplyKeyUsed,
				Message: "This idempotency key cannot be used on this ticket: send the reply with a new key."}
		case prev.TextBody != text:
			return store.Message{}, &ValidationError{Field: "key", Err: ErrReplyKeyUsed,
				Message: "A reply with this key was already sent, with other text; this text was not sent. To send it as another reply, send it with a new key."}
		default:
			return tx.Message(ctx, prev.ID) // with its delivery, as it is now
		}
	}
	if err := d.checkSeen(ctx, tx, ticketID, by, in.Seen); err != nil {
		return store.Message{}, err
	}
	held, err := d.sendable(ctx, tx, mb)
	if err != nil {
		return store.Message{}, err
	}
	to, err := parseRecipients("to", in.To)
	if err != nil {
		return store.Message{}, err
	}
	if len(to) == 0 {
		if t.RequesterAddress == "" {
			return store.Message{}, invalid("to", "The ticket has no requester address: say whom to send the reply to.")
		}
		to = []mailmsg.OutAddress{{Name: t.RequesterName, Address: t.RequesterAddress}}
		if err := mailmsg.CheckAddress(t.RequesterAddress); err != nil {
			return store.Message{}, invalid("to", "The requester's address %q cannot receive a reply: say whom to send it to.", t.RequesterAddress)
		}
	}
	cc, err := parseRecipients("cc", in.Cc)
	if err != nil {
		return store.Message{}, err
	}
	if len(to)+len(cc) > maxRecipients {
		return store.Message{}, invalid("cc", "A reply can go to at most %d addresses.", maxRecipients)
	}
	if err := notToOurselves(ctx, tx, to, cc); err != nil {
		return store.Message{}, err
	}
	tail, parent, err := tx.TicketThreadTail(ctx, ticketID, quotedMessages)
	if err != nil {
		return store.Message{}, err
	}
	now := d.now().UTC().Truncate(time.Millisecond)
	r := mailmsg.Reply{
		From: mailmsg.OutAddress{Name: mb.Name, Address: mb.Address}, To: to, Cc: cc,
		Subject: t.Subject, TicketID: t.ID, MessageID: messageID,
		Text: text, Signature: mb.Signature, Date: now,
	}
	if parent != nil {
		r.InReplyTo, r.References = parent.MessageID, parent.References
	}
	r.Quotes = quotes(tail)
	for _, a := range in.Attachments {
		r.Attachments = append(r.Attachments, mailmsg.OutAttachment{Filename: a.Filename, ContentType: a.ContentType, Data: a.Data})
	}
	m, err := d.queue(ctx, tx, r, t, queueAs{held: held, author: by.ID})
	if err != nil {
		return store.Message{}, err
	}
	if err := tx.TouchTicket(ctx, t.ID, now); err != nil {
		return store.Message{}, err
	}
	if err := d.claimOnReply(ctx, tx, t, by, now); err != nil {
		return store.Message{}, err
	}
	if in.Status != "" {
		prev, err := tx.SetTicketStatus(ctx, t.ID, in.Status, now)
		if err != nil {
			return store.Message{}, err
		}
		if prev != in.Status {
			ev := store.Note{TicketID: t.ID, Kind: store.NoteEvent, AuthorUserID: by.ID, CreatedAt: now,
				Body: fmt.Sprintf("Status changed from %s to %s by %s with a reply", prev, in.Status, by.Email)}
			if err := tx.AddNote(ctx, &ev); err != nil {
				return store.Message{}, err
			}
		}
	}
	return m, nil
}

// sendable checks that mb can send mail and reports whether its replies
// are held (it needs re-authentication).
func (d *Desk) sendable(ctx context.Context, tx serverReader, mb store.Mailbox) (held bool, err error) {
	noSMTP := &ValidationError{Message: fmt.Sprintf("%s has no SMTP settings, so replies cannot be sent from it: an admin adds them in Admin → Emails.", mb.Address), Err: ErrNoSMTP}
	if mb.Removed() {
		return false, &ValidationError{Message: fmt.Sprintf("%s was removed, so replies cannot be sent from it.", mb.Address), Err: ErrNoSMTP}
	}
	srv, err := tx.MailboxServer(ctx, mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, noSMTP
	}
	if err != nil {
		return false, err
	}
	if srv.SMTPHost == "" || srv.SMTPPort == 0 {
		return false, noSMTP
	}
	a, err := tx.MailboxAuth(ctx, mb.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return a.HoldsReplies(), nil
}

// serverReader reads a mailbox's settings (a *store.DB or a *store.Tx).
type serverReader interface {
	MailboxServer(ctx context.Context, mailboxID int64) (store.MailboxServer, error)
	MailboxAuth(ctx context.Context, mailboxID int64) (store.MailboxAuth, error)
}

// queueAs says how a composed message is queued.
type queueAs struct {
	held   bool  // the mailbox needs re-authentication
	auto   bool  // an acknowledgement
	author int64 // the agent (0 for automatic mail)
}

// queue composes r and stores it, as ticket t's message, with its outbox
// row, and wakes the sender unless it is held.
func (d *Desk) queue(ctx context.Context, tx *store.Tx, r mailmsg.Reply, t store.Ticket, as queueAs) (store.Message, error) {
	held, auto := as.held, as.auto
	r.Auto = auto
	raw, err := mailmsg.ComposeReply(r)
	if err != nil {
		var hv *mailmsg.HeaderValueError
		if errors.As(err, &hv) {
			field := strings.ToLower(hv.Field)
			if field != "to" && field != "cc" {
				field = ""
			}
			return store.Message{}, &ValidationError{Field: field, Message: fmt.Sprintf("%s %q cannot be written into an email.", hv.Field, hv.Value), Err: err}
		}
		return store.Message{}, fmt.Errorf("compose reply: %w", err)
	}
	sum, size, err := tx.PutBlob(ctx, bytes.NewReader(raw))
	if err != nil {
		return store.Message{}, err
	}
	m := store.Message{MailboxID: t.MailboxID, TicketID: t.ID, Direction: "out", Kind: store.KindReply,
		DedupeKey: store.DedupeKey(r.MessageID, sum), MessageID: r.MessageID, InReplyTo: r.InReplyTo, References: r.References,
		FromAddress: r.From.Address, FromName: r.From.Name, To: joinOut(r.To), Cc: joinOut(r.Cc),
		Subject: mailmsg.ReplySubject(r.Subject, r.TicketID), SentAt: r.Date, ReceivedAt: r.Date,
		TextBody: r.Text, RawSHA256: sum, RawSize: size, NoAutoAnswer: auto, AuthorUserID: as.author}
	if auto {
		m.Kind = store.KindAck
	}
	for _, a := range r.Attachments {
		asum, asize, err := tx.PutBlob(ctx, bytes.NewReader(a.Data))
		if err != nil {
			return store.Message{}, err
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		m.Attachments = append(m.Attachments, store.Attachment{Filename: a.Filename, ContentType: ct, Size: asize, SHA256: asum})
	}
	if err := tx.Blobs().Sync(); err != nil {
		return store.Message{}, err
	}
	rcpts := make([]string, 0, len(r.To)+len(r.Cc))
	seen := map[string]bool{}
	for _, a := range append(append([]mailmsg.OutAddress{}, r.To...), r.Cc...) {
		if addr := mailmsg.NormalizeAddress(a.Address); !seen[addr] {
			seen[addr] = true
			rcpts = append(rcpts, addr)
		}
	}
	if err := tx.QueueMessage(ctx, &m, store.Outgoing{EnvelopeFrom: r.From.Address, Recipients: rcpts, Held: held, Auto: auto}); err != nil {
		return store.Message{}, err
	}
	if d.enqueue != nil && !held {
		if err := d.enqueue.EnqueueSend(ctx, tx, t.MailboxID); err != nil {
			return store.Message{}, err
		}
	}
	return m, nil
}

// parseRecipients reads addresses as an agent gives them: bare or with a
// name, one or several (comma separated) per entry.
func parseRecipients(field string, in []string) ([]mailmsg.OutAddress, error) {
	var out []mailmsg.OutAddress
	seen := map[string]bool{}
	for _, entry := range in {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		if strings.ContainsAny(entry, "\r\n\x00") {
			return nil, invalid(field, "%q is not an email address.", entry)
		}
		list, err := mail.ParseAddressList(entry)
		if err != nil {
			return nil, invalid(field, "%q is not an email address.", strings.TrimSpace(entry))
		}
		for _, a := range list {
			if err := mailmsg.CheckAddress(a.Address); err != nil {
				return nil, invalid(field, "%q is not an email address.", a.Address)
			}
			key := mailmsg.NormalizeAddress(a.Address)
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, mailmsg.OutAddress{Name: a.Name, Address: a.Address})
		}
	}
	return out, nil
}

// quotes quotes the conversation's last messages (given newest first).
func quotes(tail []store.Message) []mailmsg.Quote {
	var out []mailmsg.Quote
	for _, m := range tail {
		text := m.TextBody
		if strings.TrimSpace(text) == "" && m.HTMLBody != "" {
			text = mailmsg.HTMLToText(m.HTMLBody)
		}
		from := mailmsg.Address{Name: m.FromName, Address: m.FromAddress}.String()
		date := m.SentAt
		if date.IsZero() {
			date = m.ReceivedAt
		}
		out = append(out, mailmsg.Quote{From: from, Date: date, Text: text})
	}
	return out
}

func joinOut(list []mailmsg.OutAddress) string {
	parts := make([]string, 0, len(list))
	for _, a := range list {
		parts = append(parts, mailmsg.Address{Name: a.Name, Address: a.Address}.Quoted()) // reads back as written
	}
	return strings.Join(parts, ", ")
}

// notToOurselves refuses a reply addressed to one of our own mailboxes: it
// would arrive here again, be dropped as a loop, and reach no customer.
func notToOurselves(ctx context.Context, tx *store.Tx, to, cc []mailmsg.OutAddress) error {
	mbs, err := tx.Mailboxes(ctx)
	if err != nil {
		return err
	}
	ours := make(map[string]bool, len(mbs))
	for _, m := range mbs {
		if !m.Removed() { // a removed mailbox is no longer fetched: no loop
			ours[m.Address] = true
		}
	}
	for _, f := range []struct {
		name string
		list []mailmsg.OutAddress
	}{{"to", to}, {"cc", cc}} {
		for _, a := range f.list {
			if ours[mailmsg.NormalizeAddress(a.Address)] {
				return invalid(f.name, "%s is one of our own support mailboxes: a reply to it would come back here and reach no customer. Remove it.", a.Address)
			}
		}
	}
	return nil
}

// checkSeen refuses a reply written before the conversation's newest
// message (seen: the newest the agent saw; 0: not checked) unless that
// message is the agent's own: two agents answering one ticket at once
// sent the customer two replies, and a customer's new email went
// unanswered by a reply to the one before.
func (d *Desk) checkSeen(ctx context.Context, tx *store.Tx, ticketID int64, by store.User, seen int64) error {
	if seen == 0 {
		return nil
	}
	latest, err := tx.LatestExchange(ctx, ticketID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || latest.ID <= seen || latest.AuthorUserID == by.ID {
		return err
	}
	when := "a moment ago"
	if ago := d.now().Sub(latest.ReceivedAt); ago >= 2*time.Minute {
		when = fmt.Sprintf("%d minutes ago", int(ago.Minutes()))
	}
	who := cmp.Or(latest.FromName, latest.FromAddress, "The customer") + " wrote again"
	if latest.Direction == "out" {
		who = "Another agent replied"
		if u, err := tx.User(ctx, latest.AuthorUserID); err == nil {
			who = cmp.Or(u.Name, u.Email) + " replied"
		}
	}
	return &ValidationError{Field: "seen_message_id", Err: ErrReplyStale, Message: fmt.Sprintf(
		"%s %s, after you opened this ticket: read it above first. Your reply was not sent; send it again to send it as it is.", who, when)}
}
