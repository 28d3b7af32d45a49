package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// ErrNotEmail is a message without a single header field (an empty file,
// a picture or a text file read as a message): it is quarantined, not
// made a ticket nobody could answer.
var ErrNotEmail = errors.New("not an email: it has no header at all (no From, To, Subject or any other field)")

// Decision is what a prepared message will become, decided from the
// database without changing it: dedupe, loop protection, automatic
// replies, threading and forward recovery. Write carries it out; `postdesk
// inspect` prints it.
type Decision struct {
	Outcome Outcome
	// Class is inspect's classification: new, reply, forward_recovery,
	// auto_reply, bounce, loop or duplicate.
	Class string
	// Reason is the outcome's reason in a few words; Reasons explain the
	// decision step by step.
	Reason  string
	Reasons []string
	// Kind is the stored message's kind (email, auto_reply, bounce, loop, forward).
	Kind string
	// TicketID is the existing ticket the message joins, is attached to,
	// or is already on; 0 for a new ticket or none.
	TicketID int64
	// Requester is who a new ticket is for.
	Requester mailmsg.Address
	// Owner is the mailbox a new ticket belongs to when it is not the one
	// that fetched the email: the first of ours it is addressed to.
	Owner int64
	// IgnoredReason is recorded on a message that opens no ticket.
	IgnoredReason string
	// Existing is the message already stored: the same message (a
	// duplicate) or, with Alias, the copy recovered earlier from a forward.
	Existing *store.Message
	Alias    bool
	// Forward is the forward recovery, when the message is an agent's or
	// support address's forward whose original was attributed to the customer.
	Forward *ForwardDecision
	// Original is the customer's email found inside a forward (recovered or not).
	Original *mailmsg.Forward
	// Note is an event note for the ticket (a forward that was not recovered, and why).
	Note string
	// Activity is when the message counts as activity on its ticket.
	Activity time.Time
	// Acknowledge: the new ticket's requester may get an acknowledgement
	// (if the mailbox sends them): a person's email, not automatic, bulk or
	// list mail, and not from one of our own addresses.
	Acknowledge bool
	// FromUs: the sender is one of our own addresses (a support address
	// or an agent's), so a message joining a ticket is no customer's answer.
	FromUs bool
	// DedupeKey, when set, replaces Prepared.DedupeKey: the message reuses
	// the Message-ID of another, different email (a scanner that numbers
	// every email alike, or a forger), so it is keyed by Message-ID and
	// content and stored as its own, with Clash among its problems.
	DedupeKey string
	Clash     string
	// More are the decisions for the other originals attached beside the
	// first (each recovered on its own); MoreNotes say why others could
	// not be (a note on the first's ticket).
	More      []Decision
	MoreNotes []string
	// AgentNote is an agent's answer to a notification email, kept as an
	// internal note on the ticket it was about.
	AgentNote *store.Note
}

// ForwardDecision is a recovered forward.
type ForwardDecision struct {
	Original mailmsg.Forward
	Customer string     // the original sender's address
	Sender   string     // the agent or support address that forwarded it
	Agent    store.User // the forwarding agent (zero for a support address)
	// How the original was found already stored (Decision.Existing), if it was.
	How string
}

// Decide decides what a prepared message becomes in mb, reading our own
// addresses from tx. It changes nothing.
func (in *Ingester) Decide(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared) (Decision, error) {
	own, err := in.ownAddresses(ctx, tx)
	if err != nil {
		return Decision{}, err
	}
	return in.decide(ctx, tx, mb, p, own)
}

func (in *Ingester) decide(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, own ours) (Decision, error) {
	msg := p.Msg
	var from string
	if s := sender(msg); s != nil {
		from = mailmsg.NormalizeAddress(s.Address)
	}
	d := Decision{Kind: store.KindEmail, Activity: activityTime(msg.Date, p.ReceivedAt)}
	key := p.DedupeKey
	for {
		existing, err := tx.MessageByDedupeKey(ctx, mb.ID, key)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return Decision{}, err
		}
		if key == p.DedupeKey && !sameEmail(existing, p, from) {
			// A different email under a Message-ID already stored: it
			// was dropped as a duplicate, and lost.
			d.Clash = fmt.Sprintf("its Message-ID <%s> is also that of message %d, a different email (from %s, %s): stored as its own",
				msg.MessageID, existing.ID, cmp.Or(existing.FromAddress, "no sender"), quoteSubject(existing.Subject))
			d.Reasons = append(d.Reasons, d.Clash)
			key = store.ClashDedupeKey(p.RawSHA256)
			d.DedupeKey = key
			continue
		}
		return Decision{Outcome: Duplicate, Class: "duplicate", Reason: "already stored", Kind: existing.Kind, TicketID: existing.TicketID, Existing: &existing,
			Reasons: append(d.Reasons, fmt.Sprintf("the mailbox already has this message (%s, stored as message %d)", dedupeWords(p.Msg.MessageID), existing.ID))}, nil
	}
	if msg.HeaderFields == 0 {
		// Nothing to thread or answer, and a ticket of it would have no
		// requester: quarantined with its source, where an admin sees it.
		return Decision{}, ErrNotEmail
	}
	// Anyone can write an agent's address in From: a forged "forward"
	// filed any text as any customer's, signed by the agent. An agent's
	// email the receiving server's checks failed is still no customer's
	// (no acknowledgement, no reopening), but it recovers no forward and
	// names no ticket by its subject.
	forward, trusted := own, from != "" && own.has(from)
	if _, agent := own.agents[from]; agent && msg.AuthFailure != "" {
		d.Reasons = append(d.Reasons, fmt.Sprintf("its sender %s is an agent's address, but the receiving server's Authentication-Results say %s: its From may be forged, so it is not trusted as the agent's (no forward recovered, no ticket joined by its subject)", from, msg.AuthFailure))
		forward, trusted = own.without(from), false
	}
	if msg.Auto == mailmsg.AutoNone && trusted && p.forwardsUnsought {
		if err := in.seekForwards(ctx, p); err != nil {
			return Decision{}, err
		}
	}
	if msg.Auto == mailmsg.AutoNone && len(p.Forwards) > 0 {
		done, err := in.decideForward(ctx, tx, mb, p, forward, from, &d)
		if err != nil || done {
			return d, err
		}
	}
	if msg.Auto == mailmsg.AutoNone && from != "" && !own.support[from] {
		// The original may already be here, recovered from a forward, in
		// this mailbox or another (an agent forwards what a broken mailbox
		// missed to one that works).
		twin, how, err := in.recoveredTwin(ctx, tx, p, from)
		if err != nil {
			return Decision{}, err
		}
		if twin.ID != 0 {
			return Decision{Outcome: Duplicate, Class: "duplicate", Reason: "already stored", Kind: d.Kind, TicketID: twin.TicketID, Existing: &twin, Alias: true,
				IgnoredReason: fmt.Sprintf("the original of message %d on ticket %d, recovered earlier from a forward by %s", twin.ID, twin.TicketID, twin.RecoveredBy),
				Reasons:       append(d.Reasons, fmt.Sprintf("this is the original of message %d on ticket %d, recovered earlier from a forward by %s (%s)", twin.ID, twin.TicketID, twin.RecoveredBy, how))}, nil
		}
	}

	switch {
	case msg.Auto != mailmsg.AutoNone:
		d.Kind = store.KindAutoReply
		if msg.Auto == mailmsg.AutoBounce {
			d.Kind = store.KindBounce
		}
		refs := threadIDs(msg)
		if msg.BouncedMessageID != "" {
			refs = append([]string{msg.BouncedMessageID}, refs...)
		}
		ticketID, err := tx.TicketForMessageIDs(ctx, mb.ID, refs)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Decision{}, err
		}
		if ticketID == 0 {
			if ticketID, err = in.subjectTicket(ctx, tx, mb, msg, from, trusted); err != nil {
				return Decision{}, err
			}
		}
		d.Class = d.Kind
		d.Reasons = append(d.Reasons, fmt.Sprintf("an automatic message (%s): it never opens a ticket", msg.AutoReason))
		if ticketID == 0 {
			d.IgnoredReason = fmt.Sprintf("%s (%s) that concerns no known ticket", kindWords(d.Kind), msg.AutoReason)
			d.Outcome, d.Reason = Ignored, d.IgnoredReason
			d.Reasons = append(d.Reasons, "it refers to no stored message and names no ticket: recorded as ignored")
			break
		}
		d.Reasons = append(d.Reasons, fmt.Sprintf("it concerns ticket %d: attached there as an event", ticketID))
		d.Outcome, d.TicketID, d.Reason = Attached, ticketID, msg.AutoReason
	case answersNotification(ctx, tx, mb, msg, &d, own.agents[from]):
		// An agent answered a notification email (it comes from the
		// support address): it became a ticket with the agent as its
		// customer, and told every agent of it.
	case from != "" && own.support[from] && d.Note == "":
		d.Kind = store.KindLoop
		d.IgnoredReason = fmt.Sprintf("sent from our own address %s (loop protection)", from)
		d.Outcome, d.Reason, d.Class = Ignored, d.IgnoredReason, "loop"
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s is one of our own support addresses: never a customer", from))
	default:
		// A copy of an email another of our mailboxes it is addressed to
		// stored first (To support@, Cc sales@): one ticket, one message.
		copyOf, to, err := copyInOtherMailbox(ctx, tx, mb, p, from, own)
		if err != nil {
			return Decision{}, err
		}
		if copyOf.ID != 0 {
			why := fmt.Sprintf("also sent to %s, where it is message %d on ticket %d", to, copyOf.ID, copyOf.TicketID)
			return Decision{Outcome: Duplicate, Class: "duplicate", Reason: "already stored", Kind: d.Kind, TicketID: copyOf.TicketID, Existing: &copyOf, Alias: true,
				IgnoredReason: why, Reasons: append(d.Reasons, "the same email "+why+": stored once, for both addresses")}, nil
		}
		ticketID, why, err := in.findTicket(ctx, tx, mb, addressedMailboxes(msg, mb, own), own.mailboxes, msg, from, trusted)
		if err != nil {
			return Decision{}, err
		}
		d.FromUs = from != "" && own.has(from)
		if ticketID != 0 {
			d.Outcome, d.TicketID, d.Reason, d.Class = Joined, ticketID, why, "reply"
			d.Reasons = append(d.Reasons, fmt.Sprintf("joins ticket %d: %s", ticketID, why))
			break
		}
		d.Requester.Name, d.Requester.Address = requester(msg, own.support)
		d.Outcome, d.Class = NewTicket, "new"
		owner, to, err := ownerMailbox(ctx, tx, msg, mb, own)
		if err != nil {
			return Decision{}, err
		}
		if owner != mb.ID {
			d.Owner = owner
			d.Reasons = append(d.Reasons, fmt.Sprintf("it is addressed to %s first, so the ticket is that mailbox's (its replies and acknowledgement go from there)", to))
		}
		d.Reasons = append(d.Reasons, fmt.Sprintf("no stored message or [#N] reference matches: new ticket from %s", d.Requester.Address))
		if msg.Bulk {
			d.Reason = "bulk mail: " + msg.BulkReason
			d.Reasons = append(d.Reasons, "bulk or list mail ("+msg.BulkReason+"): marked bulk, never answered automatically")
		}
		switch {
		case msg.Bulk:
		case msg.NullReturnPath:
			d.Reasons = append(d.Reasons, "its Return-Path is empty (<>), as mail from a mail system's is: no acknowledgement (RFC 3834)")
		case msg.SuppressAutoResponse:
			d.Reasons = append(d.Reasons, "the sender asked for no automatic answers: no acknowledgement")
		case own.has(d.Requester.Address):
			d.Reasons = append(d.Reasons, d.Requester.Address+" is one of our own addresses: no acknowledgement")
		case from != "" && d.Requester.Address != from && domainOf(d.Requester.Address) != domainOf(from) && (!own.supportDomain(from) || msg.AuthFailure != ""):
			// Reply-To is not checked by anyone: "From: me, Reply-To:
			// victim" with a spam subject made us mail the victim.
			d.Reasons = append(d.Reasons, fmt.Sprintf("its Reply-To %s is in another domain than its sender %s: no acknowledgement (nobody vouches for a Reply-To, and one would mail whomever it names)",
				d.Requester.Address, from))
		default:
			d.Acknowledge = true
		}
	}
	return d, nil
}

// decideForward decides the forward recovery of a message with forwarded
// originals; done reports that it decided the whole message.
func (in *Ingester) decideForward(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, own ours, sender string, d *Decision) (done bool, err error) {
	agent, isAgent := own.agents[sender]
	isSupport := own.support[sender]
	orig, found := mailmsg.PickCustomer(p.Forwards, own.has)
	if found {
		d.Original = &orig
	}
	if !isAgent && !isSupport {
		d.Reasons = append(d.Reasons, fmt.Sprintf("it contains a forwarded email, but %s is neither an agent nor a support address: it is treated as their own email (anyone could forge an original)", sender))
		return false, nil
	}
	by := "agent"
	if !isAgent {
		by = "support address"
	}
	d.Reasons = append(d.Reasons, fmt.Sprintf("a forward from %s %s", by, sender))
	if !found {
		d.Reasons = append(d.Reasons, "every forwarded original is from one of our own addresses: nothing to recover")
		return false, nil
	}
	done, err = in.decideOriginal(ctx, tx, mb, p, orig, sender, agent, d)
	if err != nil || !done {
		return done, err
	}
	// Several originals attached side by side (Outlook's "Forward as
	// attachment" of a selection): each is recovered. Only the first was,
	// and the others were lost.
	for _, f := range attachedSiblings(p.Forwards, orig, own.has) {
		sub := Decision{Kind: store.KindEmail}
		ok, err := in.decideOriginal(ctx, tx, mb, p, f, sender, agent, &sub)
		if err != nil {
			return false, err
		}
		d.Reasons = append(d.Reasons, "another attached original: "+strings.Join(sub.Reasons, "; "))
		if ok {
			d.More = append(d.More, sub)
		} else if len(sub.Reasons) > 0 {
			d.MoreNotes = append(d.MoreNotes, strings.TrimPrefix(sub.Reasons[len(sub.Reasons)-1], "not attributed to the original sender: "))
		}
	}
	return true, nil
}

// attachedSiblings are the originals attached beside orig (an attached
// original) in the same message, from others than us, in order.
func attachedSiblings(chain []mailmsg.Forward, orig mailmsg.Forward, ours func(string) bool) []mailmsg.Forward {
	if orig.Source != mailmsg.ForwardAttached {
		return nil
	}
	var out []mailmsg.Forward
	seen := false
	for _, f := range chain {
		if f.Source != mailmsg.ForwardAttached || f.Depth != orig.Depth {
			continue
		}
		if !seen && f.MessageID == orig.MessageID && f.From.Address == orig.From.Address && f.Date.Equal(orig.Date) && f.Subject == orig.Subject {
			seen = true // orig itself
			continue
		}
		if seen && (f.From.Address == "" || !ours(f.From.Address)) {
			out = append(out, f)
		}
	}
	return out
}

// decideOriginal decides what one forwarded original becomes: recovered
// (d.Forward set, done) or not attributable (d.Note says why).
func (in *Ingester) decideOriginal(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, orig mailmsg.Forward, sender string, agent store.User, d *Decision) (done bool, err error) {
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
		d.Reasons = append(d.Reasons, "not attributed to the original sender: "+why)
		d.Note = fmt.Sprintf("This email forwarded by %s was not filed as the original sender's: %s.", sender, why)
		return false, nil
	}
	d.Class, d.Kind = "forward_recovery", store.KindForward
	d.Forward = &ForwardDecision{Original: orig, Customer: customer, Sender: sender, Agent: agent}
	how := orig.Shape
	if orig.Language != "" {
		how += ", language " + orig.Language
	}
	d.Reasons = append(d.Reasons, fmt.Sprintf("the original is from %s, sent %s (%s forward, %s, %s)", customer,
		orig.Date.UTC().Format("2006-01-02 15:04 UTC"), orig.Client, orig.Source, how))

	// Already here?
	existing, how, err := in.findOriginal(ctx, tx, mb, orig, customer)
	if err != nil {
		return false, err
	}
	if existing.ID != 0 {
		d.Existing, d.Forward.How = &existing, how
		d.Outcome, d.TicketID, d.Class = Duplicate, existing.TicketID, "duplicate"
		d.Reason = fmt.Sprintf("the forwarded original is already on ticket %d (%s); the forward is recorded there as a note", existing.TicketID, how)
		d.Reasons = append(d.Reasons, d.Reason)
		return true, nil
	}
	// A reply to a ticket joins it; otherwise a new ticket from the customer.
	ticketID, whyJoin, err := in.findTicket(ctx, tx, mb, []int64{mb.ID}, nil, &mailmsg.Message{InReplyTo: orig.InReplyTo, References: orig.References, Subject: orig.Subject}, customer, false)
	if err != nil {
		return false, err
	}
	if ticketID != 0 {
		d.Outcome, d.TicketID, d.Reason = RecoveredJoined, ticketID, whyJoin
		d.Reasons = append(d.Reasons, fmt.Sprintf("the original joins ticket %d: %s", ticketID, whyJoin))
	} else {
		d.Outcome = Recovered
		d.Requester = mailmsg.Address{Name: orig.From.Name, Address: customer}
		d.Reasons = append(d.Reasons, fmt.Sprintf("a new ticket from %s, dated when the customer sent it", customer))
	}
	return true, nil
}

// sameEmail reports whether existing, stored under p's Message-ID, is the
// same email as p: the same bytes, or the same sender and subject with the
// same date or text (a copy delivered again, sent again, through a list,
// or to a second folder). A recovered original counts as its direct
// delivery.
func sameEmail(existing store.Message, p *Prepared, from string) bool {
	if existing.RawSHA256 == p.RawSHA256 || existing.MessageID == "" || p.Msg.MessageID == "" {
		return true
	}
	if existing.Direction == "out" {
		return true // ours, come back (a copy to a support address)
	}
	if existing.FromAddress != from || strings.TrimSpace(existing.Subject) != strings.TrimSpace(p.Msg.Subject) {
		return false
	}
	// The same sender and subject: the same email when dated alike, or,
	// dated anew (a client that sends again, a relay that stamps its own
	// Date), when its text opens alike.
	return existing.SentAt.Equal(p.Msg.Date) || sameOpening(existing.TextBody, p.Msg.Text)
}

// copyInOtherMailbox finds the copy of an email addressed to several of
// our mailboxes (To or Cc: support@ and sales@) that another of them
// stored first, on a ticket: the mail server delivered it to each, and
// each mailbox made a ticket of it, and acknowledged it, twice (an answer
// to all joined its ticket twice). Only
// the mailboxes it names are looked in (an index probe each), and only by
// its Message-ID, confirmed as the same email (sameEmail). Copies sent
// Bcc to both name neither mailbox, and stay two tickets. ApplyBatch holds
// the email's lock (store.Tx.LockMessageKey), so the other mailbox's copy
// is committed or not yet begun.
func copyInOtherMailbox(ctx context.Context, tx *store.Tx, mb store.Mailbox, p *Prepared, from string, own ours) (store.Message, string, error) {
	msg := p.Msg
	if msg.MessageID == "" {
		return store.Message{}, "", nil
	}
	key := store.DedupeKey(msg.MessageID, "")
	for _, r := range own.recipients(msg) {
		if r.id == mb.ID {
			continue
		}
		existing, err := tx.MessageByDedupeKey(ctx, r.id, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return store.Message{}, "", err
		}
		if existing.TicketID != 0 && sameEmail(existing, p, from) {
			return existing, r.address, nil
		}
	}
	return store.Message{}, "", nil
}

// recipient is one of our mailboxes an email is addressed to.
type recipient struct {
	id      int64
	address string
}

// recipients are our mailboxes msg is addressed to, in To then Cc order,
// each once.
func (o ours) recipients(msg *mailmsg.Message) []recipient {
	var out []recipient
	for _, rcpt := range slices.Concat(msg.To, msg.Cc) {
		a := mailmsg.NormalizeAddress(rcpt.Address)
		if id, ok := o.mailboxes[a]; ok && !slices.ContainsFunc(out, func(r recipient) bool { return r.id == id }) {
			out = append(out, recipient{id: id, address: a})
		}
	}
	return out
}

// namesOtherMailbox says whether msg is addressed (To, Cc) to a mailbox of
// ours other than mb.
func namesOtherMailbox(msg *mailmsg.Message, mb store.Mailbox, own ours) bool {
	return slices.ContainsFunc(own.recipients(msg), func(r recipient) bool { return r.id != mb.ID })
}

// addressedMailboxes is mb and the other mailboxes of ours (not removed)
// msg is addressed to, in To or Cc.
func addressedMailboxes(msg *mailmsg.Message, mb store.Mailbox, own ours) []int64 {
	ids := []int64{mb.ID}
	for _, r := range own.recipients(msg) {
		if own.active[r.id] && r.id != mb.ID {
			ids = append(ids, r.id)
		}
	}
	return ids
}

// ownerMailbox is the mailbox a new ticket from msg belongs to: the first
// of our mailboxes in its To, else its Cc, that can send (else mb, the one
// that fetched it). An email To support@ and Cc sales@ is support@'s
// whichever mailbox fetches its copy first (copyInOtherMailbox makes the
// other copy a duplicate), unless support@ cannot answer it: removed, not
// connected, waiting for a sign-in, or without sending settings.
func ownerMailbox(ctx context.Context, tx *store.Tx, msg *mailmsg.Message, mb store.Mailbox, own ours) (int64, string, error) {
	for _, r := range own.recipients(msg) {
		if r.id == mb.ID {
			return r.id, r.address, nil
		}
		if !own.active[r.id] {
			continue
		}
		ok, err := canSend(ctx, tx, r.id)
		if err != nil {
			return 0, "", err
		}
		if ok {
			return r.id, r.address, nil
		}
	}
	return mb.ID, mb.Address, nil
}

// canSend says whether a mailbox can send a reply now: it has sending
// settings (SMTP or Microsoft Graph) and its sign-in holds no replies.
func canSend(ctx context.Context, tx *store.Tx, id int64) (bool, error) {
	srv, err := tx.MailboxServer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if srv.SMTPHost == "" && !srv.SendsWithGraph() {
		return false, nil
	}
	au, err := tx.MailboxAuth(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !au.HoldsReplies(), nil
}

// quoteSubject is a subject in quotes for a reason, cut short.
func quoteSubject(s string) string {
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return strconv.Quote(s)
}

// recoveredTwin finds the original of a customer's email recovered
// earlier from an agent's forward, in any mailbox: by Message-ID (an
// attached original), else by sender, subject, date and the words its
// text opens with. An inline forward's date may be in the forwarder's
// zone (Outlook's "Sent:" line is their local time while Exchange dates
// the forward in UTC), so a date off by whole quarter hours matches too;
// that is also why the text must match: another email of the customer's
// with the same subject an hour later is not the same one.
func (in *Ingester) recoveredTwin(ctx context.Context, tx *store.Tx, p *Prepared, from string) (store.Message, string, error) {
	msg := p.Msg
	if may, err := tx.MayHoldRecovered(ctx); err != nil || !may {
		return store.Message{}, "", err
	}
	if msg.MessageID != "" {
		twin, err := tx.RecoveredOriginal(ctx, store.DedupeKey(msg.MessageID, ""))
		if err == nil && sameEmail(twin, p, from) {
			return twin, "same Message-ID", nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Message{}, "", err
		}
	}
	if msg.Date.IsZero() {
		return store.Message{}, "", nil
	}
	twins, err := tx.RecoveredOriginals(ctx, from, msg.Date, 14*time.Hour+time.Minute)
	if err != nil {
		return store.Message{}, "", err
	}
	for _, twin := range twins {
		if !store.SameSubject(twin.Subject, msg.Subject) {
			continue
		}
		if twin.MessageID != "" && msg.MessageID != "" && store.MessageIDKey(twin.MessageID) != store.MessageIDKey(msg.MessageID) {
			continue // an attached original's own id: another email (an hourly alert alike to the last)
		}
		if !sameOpening(twin.TextBody, msg.Text) {
			continue
		}
		d := twin.SentAt.Sub(msg.Date).Abs()
		if d <= time.Minute {
			return twin, "same sender, subject, date and text", nil
		}
		if off := d % (15 * time.Minute); off <= time.Minute || 15*time.Minute-off <= time.Minute {
			return twin, "same sender, subject and text, dated in another time zone", nil
		}
	}
	return store.Message{}, "", nil
}

// sameOpening reports whether two texts open alike, case and punctuation
// aside: the same first 12 words, or the first 8 of one among the first 60
// of the other (a client may render a greeting or a link differently): a
// forward's copy of an email and the email itself.
func sameOpening(a, b string) bool {
	words := func(s string, n int) []string {
		f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		return f[:min(len(f), n)]
	}
	wa, wb := words(a, 60), words(b, 60)
	if len(wa) == 0 || len(wb) == 0 {
		return len(wa) == len(wb)
	}
	if slices.Equal(wa[:min(len(wa), 12)], wb[:min(len(wb), 12)]) {
		return true
	}
	within := func(head, in []string) bool {
		head = head[:min(len(head), 8)]
		for i := 0; i+len(head) <= len(in); i++ {
			if slices.Equal(in[i:i+len(head)], head) {
				return true
			}
		}
		return false
	}
	return within(wa, wb) || within(wb, wa)
}

// answersNotification decides an email that replies to one of Postdesk's
// notification emails: never a ticket. An agent's words become an
// internal note, signed by them, on the ticket the notification was about
// when it was about one; otherwise it is recorded as ignored, saying why.
// It reports whether msg was such an answer (a lookup error counts as
// not: the email is then decided as any other, never lost).
func answersNotification(ctx context.Context, tx *store.Tx, mb store.Mailbox, msg *mailmsg.Message, d *Decision, agent store.User) bool {
	n, err := tx.NotificationFor(ctx, mb.ID, threadIDs(msg))
	if err != nil {
		return false
	}
	d.Class = "notification_answer"
	d.IgnoredReason = fmt.Sprintf("an answer to Postdesk's notification of %s (message %d): agents answer in Postdesk", n.SentAt.UTC().Format("2 Jan 2006 15:04 UTC"), n.ID)
	d.Outcome, d.Reason = Ignored, d.IgnoredReason
	d.Reasons = append(d.Reasons, "it replies to a notification Postdesk sent an agent: never a customer's email")
	// The ticket the agent's own words name ("please resend #3"), else
	// the one a single notification was about.
	words := ownWords(msg.Text)
	ids := map[string]bool{}
	for _, text := range []string{words, n.Subject} {
		for _, m := range notificationTicketRef.FindAllStringSubmatch(text, -1) {
			ids[m[1]] = true
		}
		if len(ids) > 0 {
			break
		}
	}
	if agent.ID == 0 || len(ids) != 1 {
		return true
	}
	for s := range ids {
		id, _ := strconv.ParseInt(s, 10, 64)
		if t, err := tx.Ticket(ctx, id); err == nil {
			d.AgentNote = &store.Note{TicketID: t.ID, Kind: store.NoteInternal, AuthorUserID: agent.ID,
				Body: fmt.Sprintf("%s answered a notification email:\n\n%s", agent.Email, words)}
			d.Reasons = append(d.Reasons, fmt.Sprintf("it is about ticket %d: the agent's words become an internal note there", t.ID))
			d.Reason = fmt.Sprintf("an agent's answer to a notification: an internal note on ticket %d", t.ID)
		}
	}
	return true
}

// notificationTicketRef finds "#12" in a notification's subject.
var notificationTicketRef = regexp.MustCompile(`#(\d{1,18})\b`)

// ownWords is the text of an answer above what it quotes, at most 8 KB.
func ownWords(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, ">") || l == "-----Original Message-----" || strings.HasPrefix(l, "________________") ||
			(strings.HasPrefix(l, "On ") && strings.HasSuffix(l, "wrote:")) {
			break
		}
		b.WriteString(line)
	}
	s := strings.TrimSpace(b.String())
	if len(s) > 8<<10 {
		s = strings.ToValidUTF8(s[:8<<10], "") + "…"
	}
	return s
}
