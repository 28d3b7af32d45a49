// Package ingest turns a raw email into ticket changes, exactly once.
//
// Ingest happens in steps. Prepare streams the raw message into the blob
// store (content-addressed, so repeating it is harmless; on PostgreSQL a
// local spool until the message's row commits), parses it and records
// where each attachment lies in it (the raw message is the one copy);
// nothing in the database changes.
// ApplyBatch, the one apply point (sync, import, retry, the demo), then
// reads our own addresses once per batch and, for each message inside the
// caller's transaction, first decides (Decide returns a Decision and writes
// nothing; `postdesk inspect` prints it) and then writes that decision
// (Write). Once the transaction commits it counts each message in /metrics
// and logs one outcome line. A message becomes:
//
//   - a duplicate, when the mailbox already has a message with the same
//     dedupe key (its Message-ID, or the SHA-256 of the raw source when it
//     has none): nothing changes;
//   - mail from one of our own addresses: recorded, never a customer (loop);
//   - an automatic reply or bounce: attached to the ticket it concerns as a
//     system event, or recorded as ignored with the reason; never a ticket;
//   - a reply joining its ticket (In-Reply-To/References matching a stored
//     or sent message, else a [#123] reference in the subject);
//   - otherwise a new ticket (marked bulk for list mail).
//
// Because the dedupe key is unique per mailbox in the database, and the
// message row commits with its ticket change (and, for mailbox sync, with
// the checkpoint) in one transaction, replaying any message any number of
// times changes nothing after the first.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Outcome is what a message became.
type Outcome string

// Outcomes.
const (
	NewTicket Outcome = "new_ticket"
	Joined    Outcome = "joined"
	Duplicate Outcome = "duplicate"
	Attached  Outcome = "attached" // an automatic reply or bounce recorded on its ticket
	Ignored   Outcome = "ignored"  // recorded, but opened no ticket (Reason says why)
	// Recovered: an agent's forward became a ticket from the original customer.
	Recovered Outcome = "recovered"
	// RecoveredJoined: the forwarded original joined an existing ticket.
	RecoveredJoined Outcome = "recovered_joined"
)

// Result describes what happened to one message.
type Result struct {
	Outcome   Outcome
	TicketID  int64 // the ticket created, joined or attached to (0 when none)
	MessageID int64 // the stored message (for duplicates, the earlier one)
	Kind      string
	Reason    string // plain words: why it joined, why it was ignored, ...
	Subject   string
	From      string
	// Class is inspect's classification: new, reply, forward_recovery,
	// auto_reply, bounce, loop or duplicate.
	Class string
	// Decisions explains, step by step, why the message became what it did.
	Decisions []string
	// Original is the customer's email found inside a forward (recovered or not).
	Original *mailmsg.Forward
}

func (r Result) String() string {
	switch r.Outcome {
	case NewTicket:
		return fmt.Sprintf("new ticket %d", r.TicketID)
	case Joined:
		return fmt.Sprintf("joined ticket %d (%s)", r.TicketID, r.Reason)
	case Recovered:
		return fmt.Sprintf("recovered from a forward: new ticket %d from %s", r.TicketID, r.From)
	case RecoveredJoined:
		return fmt.Sprintf("recovered from a forward: joined ticket %d (%s)", r.TicketID, r.Reason)
	case Duplicate:
		if r.TicketID != 0 {
			return fmt.Sprintf("duplicate (already stored on ticket %d)", r.TicketID)
		}
		return "duplicate (already stored)"
	case Attached:
		return fmt.Sprintf("%s, attached to ticket %d as an event (%s)", kindWords(r.Kind), r.TicketID, r.Reason)
	default:
		return "ignored: " + r.Reason
	}
}

func kindWords(kind string) string {
	switch kind {
	case store.KindBounce:
		return "bounce"
	case store.KindAutoReply:
		return "automatic reply"
	}
	return kind
}

// Prepared is a message read and stored as blobs, not yet applied.
type Prepared struct {
	Msg        *mailmsg.Message
	Forwards   []mailmsg.Forward // originals found inside, outermost first
	RawSHA256  string
	RawSize    int64
	DedupeKey  string
	ReceivedAt time.Time
	// Parts are where Msg.Attachments are in the raw message, one for
	// each; an attachment that could not be found there was stored as a
	// blob of its own (its Part is zero, its blob listed in ownBlobs).
	Parts    []store.Part
	ownBlobs []string
	// search is Msg.Text folded for the search index, computed by Parse
	// (beside the database's writer rather than in its transaction).
	search store.SearchText
	// forwardsUnsought: Parse did not search Msg for forwarded originals,
	// its sender not being ours then (see seekForwards).
	forwardsUnsought bool
}

// DefaultRecoveryWindow is how old a forwarded original may be by default.
const DefaultRecoveryWindow = 14 * 24 * time.Hour

// Ingester applies messages to tickets.
type Ingester struct {
	db      *store.DB
	log     *slog.Logger
	metrics *Metrics
	own     []string // configured support addresses besides the mailboxes
	agents  []string // extra agent addresses (postdesk inspect --agent)
	window  time.Duration
	now     func() time.Time
	ack     func(ctx context.Context, tx *store.Tx, ticketID int64, msg store.Message) (bool, error)

	ownMu   sync.Mutex
	ownAt   time.Time
	ownSeen ours // fromOurs' copy of our addresses, read at ownAt
}

// Options configures an Ingester.
type Options struct {
	Logger *slog.Logger
	// SupportAddresses are our own addresses besides the mailboxes' (loop protection).
	SupportAddresses []string
	Metrics          *Metrics // may be nil
	Now              func() time.Time
	// RecoveryWindow is how old a forwarded original may be and still be
	// filed as the customer's (default 14 days).
	RecoveryWindow time.Duration
	// Agents are addresses to treat as agents besides Postdesk's users
	// (for postdesk inspect --agent).
	Agents []string
	// Acknowledge queues, in the transaction that opened the ticket, the
	// acknowledgement of a new ticket whose Decision allows one, and
	// reports whether it did (desk.Desk.Acknowledge; nil: none are sent).
	Acknowledge func(ctx context.Context, tx *store.Tx, ticketID int64, msg store.Message) (bool, error)
}

// New returns an Ingester.
func New(db *store.DB, opts Options) *Ingester {
	in := &Ingester{db: db, log: opts.Logger, metrics: opts.Metrics, now: opts.Now, window: opts.RecoveryWindow, ack: opts.Acknowledge}
	if in.window <= 0 {
		in.window = DefaultRecoveryWindow
	}
	for _, a := range opts.Agents {
		in.agents = append(in.agents, mailmsg.NormalizeAddress(a))
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.now == nil {
		in.now = time.Now
	}
	for _, a := range opts.SupportAddresses {
		in.own = append(in.own, mailmsg.NormalizeAddress(a))
	}
	return in
}

// Stored is a raw message written to the blob store, not yet parsed.
type Stored struct {
	RawSHA256 string
	RawSize   int64
	// kept is the message's bytes, kept in memory for Parse (or nil).
	kept *store.Kept
}

// Store streams the raw message into the blob store (durable after the
// blob store's next Sync). It is the only step that must read the source.
// The message's bytes may stay in memory for its Parse, until it or
// Release.
func (in *Ingester) Store(raw io.Reader) (Stored, error) {
	sum, size, kept, err := in.db.Blobs().PutKept(raw)
	if err != nil {
		return Stored{}, fmt.Errorf("store raw message: %w", err)
	}
	return Stored{RawSHA256: sum, RawSize: size, kept: kept}, nil
}

// Ingest prepares and applies one message in its own transaction.
func (in *Ingester) Ingest(ctx context.Context, mb store.Mailbox, raw io.Reader) (Result, error) {
	s, err := in.Store(raw)
	if err != nil {
		return Result{}, err
	}
	defer in.Release(s, nil)
	return in.ingestStored(ctx, mb, s, time.Time{})
}

// IngestFile ingests a message stored in a file.
func (in *Ingester) IngestFile(ctx context.Context, mb store.Mailbox, path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	return in.Ingest(ctx, mb, f)
}

func duplicate(existing store.Message, p *Prepared) Result {
	return Result{Outcome: Duplicate, Class: "duplicate", TicketID: existing.TicketID, MessageID: existing.ID, Kind: existing.Kind,
		Reason: "already stored", Subject: p.Msg.Subject, From: existing.FromAddress,
		Decisions: []string{fmt.Sprintf("the mailbox already has this message (%s, stored as message %d)", dedupeWords(p.Msg.MessageID), existing.ID)}}
}

func dedupeWords(messageID string) string {
	if id := strings.TrimSpace(messageID); id != "" {
		if len(id) > 200 {
			id = strings.ToValidUTF8(id[:200], "") + "…"
		}
		return "same Message-ID <" + id + ">"
	}
	return "same content (no Message-ID)"
}

// apply decides what a prepared message becomes and writes it in tx; own
// are our addresses, read once per batch.
func (in *Ingester) apply(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, own ours) (Result, error) {
	d, err := in.decide(ctx, tx, mb, p, own)
	if err != nil {
		return Result{}, err
	}
	return in.Write(ctx, tx, mb, p, d)
}

// Write carries out a Decision in tx: the message row, the ticket it
// opens or touches, its notes, and the event told to the consumers
// (ticket.created, ticket.customer_replied). It returns store.ErrConflict
// (wrapped) if a concurrent writer stored the same message first.
func (in *Ingester) Write(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision) (Result, error) {
	res, err := in.write(ctx, tx, mb, p, d)
	if err != nil {
		return res, err
	}
	return res, addEvent(ctx, tx, mb, p, d, res)
}

// recordCustomerMessage counts a customer's message on its ticket (at is
// when it counts as activity) and, when the message reopens a pending or
// solved ticket, records that on the ticket at eventAt, as an agent's
// status change is.
func recordCustomerMessage(ctx context.Context, tx *store.Tx, ticketID int64, at, eventAt time.Time, byUser int64, by string) error {
	prev, err := tx.RecordCustomerMessage(ctx, ticketID, at)
	if err != nil || prev == store.StatusOpen {
		return err
	}
	return tx.AddNote(ctx, &store.Note{TicketID: ticketID, Kind: store.NoteEvent, AuthorUserID: byUser,
		Body: fmt.Sprintf("Status changed from %s to %s by %s", prev, store.StatusOpen, by), CreatedAt: eventAt})
}

// ourOwnOnThread says whether a joined email is one of ours writing on the
// thread rather than its customer: from our address or an agent's, unless
// that is the ticket's requester (an agent who filed a ticket of their own
// answers as its customer).
func ourOwnOnThread(ctx context.Context, tx *store.Tx, d Decision, from string) (bool, error) {
	if !d.FromUs {
		return false, nil
	}
	t, err := tx.Ticket(ctx, d.TicketID)
	if err != nil {
		return false, err
	}
	return mailmsg.NormalizeAddress(t.RequesterAddress) != mailmsg.NormalizeAddress(from), nil
}

// emailFrom is "an email from address", or "an email" without one.
func emailFrom(address string) string {
	if address == "" {
		return "an email"
	}
	return "an email from " + address
}

func (in *Ingester) write(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, d Decision) (Result, error) {
	msg := p.Msg
	m := in.messageRow(mb, p)
	if d.DedupeKey != "" {
		m.DedupeKey = d.DedupeKey
		m.Problems = append(slices.Clip(m.Problems), d.Clash)
	}
	res := Result{Outcome: d.Outcome, Class: d.Class, Reason: d.Reason, Decisions: d.Reasons, Original: d.Original,
		Subject: msg.Subject, From: m.FromAddress, TicketID: d.TicketID}
	switch {
	case d.Forward != nil:
		return in.writeForward(ctx, tx, mb, p, d, &m, res)
	case d.Existing != nil && d.Alias:
		r := duplicate(*d.Existing, p)
		r.Decisions, r.Reason = d.Reasons, cmp.Or(d.IgnoredReason, r.Reason)
		m.TicketID, m.IgnoredReason = 0, d.IgnoredReason
		return r, tx.InsertMessage(ctx, &m) // kept, so it is a duplicate next time, but not shown twice
	case d.Existing != nil:
		r := duplicate(*d.Existing, p)
		r.Decisions = d.Reasons
		return r, nil
	}
	m.Kind, m.IgnoredReason, m.TicketID = d.Kind, d.IgnoredReason, d.TicketID
	switch d.Outcome {
	case Attached:
		if err := tx.TouchTicket(ctx, d.TicketID, d.Activity); err != nil {
			return Result{}, err
		}
	case Joined:
		ours, err := ourOwnOnThread(ctx, tx, d, m.FromAddress)
		if err != nil {
			return Result{}, err
		}
		if ours {
			// One of ours on the thread (an agent writing from their
			// mail client): activity, but not the customer's, so it
			// neither counts as theirs nor reopens the ticket.
			if err := tx.TouchTicket(ctx, d.TicketID, d.Activity); err != nil {
				return Result{}, err
			}
			break
		}
		// A reopen is dated when Postdesk takes the email in, the time the
		// agents' own changes go by: its Date is the sender's clock (and
		// may be years off), and even the server's arrival time may be
		// before an agent's change made while it waited to be fetched.
		if err := recordCustomerMessage(ctx, tx, d.TicketID, d.Activity, in.now().UTC(), 0, emailFrom(m.FromAddress)); err != nil {
			return Result{}, err
		}
	case NewTicket:
		t := store.Ticket{MailboxID: cmp.Or(d.Owner, mb.ID), Subject: ticketSubject(msg.Subject), RequesterAddress: d.Requester.Address, RequesterName: d.Requester.Name,
			Status: store.StatusOpen, Bulk: msg.Bulk, MessageCount: 1, CreatedAt: d.Activity, UpdatedAt: d.Activity}
		id, err := tx.CreateTicket(ctx, t)
		if err != nil {
			return Result{}, err
		}
		m.TicketID, res.TicketID = id, id
	}
	res.Kind = m.Kind
	if err := tx.InsertMessage(ctx, &m); err != nil {
		return Result{}, err
	}
	res.MessageID = m.ID
	if d.Outcome == Attached && m.Kind == store.KindBounce {
		if err := in.recordBounce(ctx, tx, mb, msg, d.TicketID); err != nil {
			return Result{}, err
		}
	}
	if d.Outcome == NewTicket && d.Acknowledge && in.ack != nil {
		if _, err := in.ack(ctx, tx, m.TicketID, m); err != nil {
			return Result{}, fmt.Errorf("acknowledge ticket %d: %w", m.TicketID, err)
		}
	}
	if d.AgentNote != nil {
		note := *d.AgentNote
		note.CreatedAt = p.ReceivedAt
		if err := tx.AddNote(ctx, &note); err != nil {
			return Result{}, err
		}
	}
	if d.Note != "" && m.TicketID != 0 {
		if err := tx.AddNote(ctx, &store.Note{TicketID: m.TicketID, Kind: store.NoteEvent, Body: d.Note, CreatedAt: p.ReceivedAt}); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// activityTime is when a message counts as activity on its ticket: when it
// was sent, unless that is unknown or in the future.
func activityTime(sent, received time.Time) time.Time {
	if sent.IsZero() || sent.After(received) {
		return received
	}
	return sent.UTC()
}

func (in *Ingester) messageRow(mb store.Mailbox, p *Prepared) store.Message {
	msg := p.Msg
	m := store.Message{MailboxID: mb.ID, Direction: "in", Kind: store.KindEmail, DedupeKey: p.DedupeKey,
		MessageID: msg.MessageID, References: msg.References, Subject: msg.Subject, SentAt: msg.Date,
		ReceivedAt: p.ReceivedAt, TextBody: msg.Text, HTMLBody: msg.HTML, RawSHA256: p.RawSHA256, RawSize: p.RawSize,
		Bulk: msg.Bulk, NoAutoAnswer: msg.SuppressAutoResponse || msg.Bulk || msg.Auto != mailmsg.AutoNone || msg.NullReturnPath,
		AutoReason: msg.AutoReason, Problems: msg.Problems,
		To: joinAddresses(msg.To), Cc: joinAddresses(msg.Cc), ReplyTo: joinAddresses(msg.ReplyTo), Search: p.search}
	if len(msg.InReplyTo) > 0 {
		m.InReplyTo = msg.InReplyTo[0]
	}
	if from := sender(msg); from != nil {
		m.FromAddress, m.FromName = mailmsg.NormalizeAddress(from.Address), from.Name
	}
	for i, a := range msg.Attachments {
		sa := store.Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Size: a.Size, SHA256: a.SHA256, ContentID: a.ContentID, Inline: a.Inline}
		if i < len(p.Parts) {
			sa.Part = p.Parts[i]
		}
		m.Attachments = append(m.Attachments, sa)
	}
	return m
}

func sender(msg *mailmsg.Message) *mailmsg.Address {
	for i := range msg.From {
		if mailmsg.NormalizeAddress(msg.From[i].Address) != "" {
			return &msg.From[i]
		}
	}
	if msg.Sender != nil && mailmsg.NormalizeAddress(msg.Sender.Address) != "" {
		return msg.Sender
	}
	return nil
}

// requester is who the ticket is for: the single Reply-To address when it is
// not one of ours, else the sender.
func requester(msg *mailmsg.Message, own map[string]bool) (name, addr string) {
	if len(msg.ReplyTo) == 1 {
		if a := mailmsg.NormalizeAddress(msg.ReplyTo[0].Address); a != "" && !own[a] {
			return msg.ReplyTo[0].Name, a
		}
	}
	if s := sender(msg); s != nil {
		return s.Name, mailmsg.NormalizeAddress(s.Address)
	}
	return "", ""
}

func ticketSubject(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "(no subject)"
	}
	return s
}

// joinAddresses is a stored address list: names quoted when they hold a
// comma, a colon or another special character, so the list reads back as
// written ("Carl Bcc: x@evil.test" <carl@…> was read as a group and lost
// its name's start).
func joinAddresses(list []mailmsg.Address) string {
	parts := make([]string, 0, len(list))
	for _, a := range list {
		parts = append(parts, a.Quoted())
	}
	return strings.Join(parts, ", ")
}

// threadIDs are the message ids a message replies to, nearest first.
func threadIDs(msg *mailmsg.Message) []string {
	ids := append([]string{}, msg.InReplyTo...)
	for i := len(msg.References) - 1; i >= 0; i-- {
		ids = append(ids, msg.References[i])
	}
	return ids
}

var subjectRef = regexp.MustCompile(`\[#(\d{1,18})\]`)

// findTicket finds the ticket a customer's message replies to. from is
// who sent it (for a recovered forward, the original's customer); trusted
// says that it is one of ours (an agent, a support address).
//
// A subject that names a ticket ([#13]) joins it only when from is one of
// the ticket's people (its requester, or a sender or recipient of one of
// its messages) or trusted: anyone can write "[#13]", and a stranger's
// email joined another customer's ticket, and the next reply quoted it to
// them. A stranger's email that names a ticket opens one of its own.
//
// In-Reply-To and References are looked up in mailboxes (mb's, and the
// other mailboxes of ours an email is addressed to: an answer to all may
// name an email that another of them stored, keeping only a duplicate here).
//
// When mb keeps a named email only as a duplicate of the copy another of
// our mailboxes stored (copyInOtherMailbox), every mailbox of ours (all,
// by address) is looked in: "Make it 12" To support@, answering her email
// To support@ and Cc sales@ that sales@ stored first, joins its ticket.
func (in *Ingester) findTicket(ctx context.Context, tx *store.Tx, mb store.Mailbox, mailboxes []int64, all map[string]int64, msg *mailmsg.Message, from string, trusted bool) (int64, string, error) {
	refs := threadIDs(msg)
	id, err := tx.TicketForMessageIDsIn(ctx, mailboxes, refs)
	if errors.Is(err, store.ErrNotFound) && len(all) > len(mailboxes) {
		kept, kerr := tx.KeepsMessageIDs(ctx, mb.ID, refs)
		if kerr != nil {
			return 0, "", kerr
		}
		if kept {
			if id, err = tx.TicketForMessageIDsIn(ctx, slices.Collect(maps.Values(all)), refs); err == nil {
				return id, "In-Reply-To/References match an email another of our mailboxes stored", nil
			}
		}
	}
	if err == nil {
		return id, "In-Reply-To/References match a stored message", nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, "", err
	}
	id, err = in.subjectTicket(ctx, tx, mb, msg, from, trusted)
	if err != nil || id == 0 {
		return 0, "", err
	}
	return id, fmt.Sprintf("subject names [#%d]", id), nil
}

// subjectTicket is the ticket msg's subject names ([#13]) when from is
// one of its people or trusted (one of ours); 0 otherwise. Automatic mail
// (an out-of-office, a delivery report) is held to the same rule: a
// stranger's "Automatic reply: [#13]" put their text into another
// customer's ticket. An email whose From failed the receiving server's
// checks is nobody's: "From: the customer, Cc: me, [#13]" made the next
// reply copy the forger with the whole conversation.
func (in *Ingester) subjectTicket(ctx context.Context, tx *store.Tx, mb store.Mailbox, msg *mailmsg.Message, from string, trusted bool) (int64, error) {
	id, err := in.ticketBySubjectRef(ctx, tx, mb, msg.Subject)
	if err != nil || id == 0 || trusted {
		return id, err
	}
	if msg.AuthFailure != "" {
		return 0, nil
	}
	known, err := onTicket(ctx, tx, id, from)
	if err != nil || !known {
		return 0, err
	}
	return id, nil
}

// onTicket reports whether addr (normalized) is one of a ticket's people.
func onTicket(ctx context.Context, tx *store.Tx, ticketID int64, addr string) (bool, error) {
	if addr == "" {
		return false, nil
	}
	lists, err := tx.TicketAddressLists(ctx, ticketID)
	if err != nil {
		return false, err
	}
	for _, l := range lists {
		if slices.Contains(mailmsg.AddressesIn(l), addr) {
			return true, nil
		}
	}
	return false, nil
}

func (in *Ingester) ticketBySubjectRef(ctx context.Context, tx *store.Tx, mb store.Mailbox, subject string) (int64, error) {
	for _, m := range subjectRef.FindAllStringSubmatch(subject, -1) {
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		t, err := tx.Ticket(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if t.MailboxID == mb.ID {
			return t.ID, nil
		}
	}
	return 0, nil
}

// fromOurs reports whether a parsed message's sender is an agent or a
// support address (when in doubt, true: the search is only slower).
func (in *Ingester) fromOurs(ctx context.Context, m *mailmsg.Message) bool {
	from := sender(m)
	if from == nil {
		return false
	}
	own, err := in.cachedOwnAddresses(ctx)
	return err != nil || own.has(from.Address)
}

// ownAddressTTL is how long fromOurs trusts its copy of our addresses. It
// asked the database for every message parsed (a tenth of a second of
// CPU per 10,000 messages fetched, two queries each); a mailbox or agent
// added this second is seen the next. The transaction that files a message
// reads them itself (ownAddresses) and searches then for the forwards
// Parse left unsearched (seekForwards).
const ownAddressTTL = time.Second

// cachedOwnAddresses is ownAddresses read at most once per ownAddressTTL,
// outside any transaction.
func (in *Ingester) cachedOwnAddresses(ctx context.Context) (ours, error) {
	in.ownMu.Lock()
	defer in.ownMu.Unlock()
	if in.ownSeen.support != nil && time.Since(in.ownAt) < ownAddressTTL {
		return in.ownSeen, nil
	}
	own, err := in.ownAddresses(ctx, in.db)
	if err != nil {
		return ours{}, err
	}
	in.ownSeen, in.ownAt = own, time.Now()
	return own, nil
}

// ours are the helpdesk's own addresses: support addresses (the
// mailboxes and configured ones) and agents (users of Postdesk).
type ours struct {
	support   map[string]bool
	agents    map[string]store.User
	mailboxes map[string]int64 // our mailboxes' addresses: their ids
	active    map[int64]bool   // those not removed
}

func (o ours) has(address string) bool {
	a := mailmsg.NormalizeAddress(address)
	_, agent := o.agents[a]
	return o.support[a] || agent
}

// supportDomain reports whether address is in the domain of one of our
// support addresses (a contact form of ours sending as noreply@ that
// domain, with the customer in Reply-To).
func (o ours) supportDomain(address string) bool {
	d := domainOf(address)
	for a := range o.support {
		if domainOf(a) == d {
			return true
		}
	}
	return false
}

// domainOf is the domain of a normalized address ("" when none).
func domainOf(address string) string {
	_, d, _ := strings.Cut(address, "@")
	return d
}

// without is o without the agent address a (a copy).
func (o ours) without(a string) ours {
	agents := make(map[string]store.User, len(o.agents))
	for k, u := range o.agents {
		if k != a {
			agents[k] = u
		}
	}
	return ours{support: o.support, agents: agents, mailboxes: o.mailboxes, active: o.active}
}

// addressReader is what ownAddresses reads: a transaction, or the
// database outside one.
type addressReader interface {
	Mailboxes(ctx context.Context) ([]store.Mailbox, error)
	Users(ctx context.Context) ([]store.User, error)
}

func (in *Ingester) ownAddresses(ctx context.Context, tx addressReader) (ours, error) {
	mbs, err := tx.Mailboxes(ctx)
	if err != nil {
		return ours{}, err
	}
	own := ours{support: make(map[string]bool, len(mbs)+len(in.own)), agents: map[string]store.User{},
		mailboxes: make(map[string]int64, len(mbs)), active: make(map[int64]bool, len(mbs))}
	for _, mb := range mbs {
		own.support[mb.Address] = true
		own.mailboxes[mailmsg.NormalizeAddress(mb.Address)] = mb.ID
		own.active[mb.ID] = !mb.Removed()
	}
	for _, a := range in.own {
		own.support[a] = true
	}
	users, err := tx.Users(ctx)
	if err != nil {
		return ours{}, err
	}
	for _, u := range users {
		if u.DisabledAt.IsZero() {
			own.agents[u.Email] = u
		}
	}
	for _, a := range in.agents {
		if _, ok := own.agents[a]; !ok {
			own.agents[a] = store.User{Email: a}
		}
	}
	return own, nil
}
