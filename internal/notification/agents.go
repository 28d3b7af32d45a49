package notification

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Name names the consumer in the dispatcher's logs.
func (m *Mailer) Name() string { return "email_notifications" }

// noticeEvents are the events that come with a notice for the admins:
// the loop is woken to email it at once.
var noticeEvents = map[string]bool{store.EventMailboxAuthStateChange: true, store.EventMailboxSyncFailed: true,
	store.EventMessageQuarantined: true}

// Consume decides, in the dispatcher's transaction, which agents hear of
// each event, and records it for their next email (jobs.EventConsumer).
func (m *Mailer) Consume(ctx context.Context, tx *store.Tx, events []store.Event) error {
	var support map[string]bool
	added, notices := false, false
	// Whether any agent chose an email of these events, once asked.
	asked, listening := false, false
	for _, e := range events {
		if noticeEvents[e.Kind] {
			notices = true
			continue
		}
		switch e.Kind {
		case store.EventTicketCreated, store.EventTicketCustomerReplied, store.EventTicketAssigned:
			if !asked {
				var err error
				if listening, err = anyListening(ctx, tx); err != nil {
					return err
				}
				asked = true
			}
			if !listening {
				continue
			}
		case store.EventTicketReplyFailed:
		default:
			continue
		}
		if support == nil {
			var err error
			if support, err = supportAddresses(ctx, tx); err != nil {
				return err
			}
		}
		users, err := m.audience(ctx, tx, e, support)
		if err != nil {
			return fmt.Errorf("notify of event %d: %w", e.ID, err)
		}
		for _, u := range users {
			p := store.PendingNotification{UserID: u.ID, EventID: e.ID, Kind: e.Kind, TicketID: e.TicketID,
				MailboxID: e.MailboxID, MessageID: e.MessageID, ActorUserID: e.ActorUserID, CreatedAt: m.now()}
			ok, err := tx.AddPendingNotification(ctx, &p, m.opt.Window)
			if err != nil {
				return err
			}
			added = added || ok
		}
	}
	if added || notices {
		tx.AfterCommit(m.Wake)
	}
	return nil
}

// anyListening reports whether any enabled agent chose to hear of new
// tickets, customers' answers or assignments: when none did (or there are
// no agents yet), such events need no reading of their tickets, one or two
// queries each (a quarter of a second of the single SQLite writer while a
// 10,000-email backlog was fetched).
func anyListening(ctx context.Context, tx *store.Tx) (bool, error) {
	users, err := tx.Users(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if u.DisabledAt.IsZero() && (u.Notify.NewTicket || u.Notify.CustomerReply || u.Notify.Assigned) {
			return true, nil
		}
	}
	return false, nil
}

// audience decides who hears of a ticket event: never for bulk mail,
// never the one who caused it, only active users who chose to, never a
// customer (only users are considered, and never at the ticket's
// requester address or a support address). A reply that was not
// delivered is told to its author whatever they chose (to the assignee
// when its author can no longer be emailed), bulk ticket or not.
func (m *Mailer) audience(ctx context.Context, tx *store.Tx, e store.Event, support map[string]bool) ([]store.User, error) {
	if bulk, _ := e.Data["bulk"].(bool); bulk {
		return nil, nil
	}
	t, err := tx.Ticket(ctx, e.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if t.Bulk && e.Kind != store.EventTicketReplyFailed {
		return nil, nil
	}
	var candidates []store.User
	switch e.Kind {
	case store.EventTicketReplyFailed:
		for _, id := range []int64{e.UserID, t.AssigneeUserID} {
			if id == 0 {
				continue
			}
			u, err := tx.User(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if err == nil && reachable(u, support) {
				candidates = append(candidates, u)
				break
			}
		}
	case store.EventTicketCreated:
		followers, err := tx.MailboxFollowers(ctx, t.MailboxID)
		if err != nil {
			return nil, err
		}
		for _, u := range followers {
			if u.Notify.NewTicket {
				candidates = append(candidates, u)
			}
		}
	case store.EventTicketCustomerReplied:
		if e.MessageID != 0 {
			msg, err := tx.Message(ctx, e.MessageID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if msg.Bulk {
				return nil, nil
			}
		}
		if t.AssigneeUserID == 0 {
			return nil, nil
		}
		u, err := tx.User(ctx, t.AssigneeUserID)
		if err != nil {
			return nil, ignoreNotFound(err)
		}
		if u.Notify.CustomerReply {
			candidates = append(candidates, u)
		}
	case store.EventTicketAssigned:
		if e.UserID == 0 || e.UserID == e.ActorUserID {
			return nil, nil // unassigned, or they took it themselves
		}
		u, err := tx.User(ctx, e.UserID)
		if err != nil {
			return nil, ignoreNotFound(err)
		}
		if u.Notify.Assigned {
			candidates = append(candidates, u)
		}
	}
	requester := mailmsg.NormalizeAddress(t.RequesterAddress)
	var out []store.User
	for _, u := range candidates {
		if u.ID == e.ActorUserID || !reachable(u, support) || mailmsg.NormalizeAddress(u.Email) == requester {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// maxItems bounds the events one email lists; the rest are counted.
const maxItems = 50

// Flush sends every agent's due batch, one email each, and reports how
// many it queued.
func (m *Mailer) Flush(ctx context.Context) (int, error) {
	users, err := m.db.DueNotificationUsers(ctx, m.now())
	if err != nil {
		return 0, err
	}
	sent, held := 0, 0
	var errs []error
	for _, id := range users {
		var queued bool
		err := m.db.Write(ctx, func(tx *store.Tx) (err error) {
			queued, err = m.flushUser(ctx, tx, id)
			return err
		})
		switch {
		case errors.Is(err, store.ErrTaken):
			continue // another process is sending it
		case errors.Is(err, errNoSender):
			held++ // rolled back: the batch waits for a mailbox that can send
		case err != nil:
			errs = append(errs, fmt.Errorf("notify user %d: %w", id, err))
		case queued:
			sent++
		}
	}
	switch was := m.held.Swap(held > 0); {
	case held > 0 && !was:
		m.log.Warn("notifications wait: no mailbox can send mail now; they are sent once one can", "users", held)
	case held == 0 && was && len(errs) == 0:
		m.log.Info("notifications are sent again: a mailbox can send mail")
	}
	return sent, errors.Join(errs...)
}

// errNoSender rolls back a user's flush when no mailbox can send: the
// batch stays pending (not taken and lost) until one can.
var errNoSender = errors.New("no mailbox can send mail now")

// flushUser takes a user's due batch and queues its email in tx.
func (m *Mailer) flushUser(ctx context.Context, tx *store.Tx, userID int64) (bool, error) {
	batch, err := tx.TakeNotifications(ctx, userID, m.now())
	if err != nil || len(batch) == 0 {
		return false, err
	}
	u, err := tx.User(ctx, userID)
	if err != nil {
		return false, ignoreNotFound(err)
	}
	support, err := supportAddresses(ctx, tx)
	if err != nil {
		return false, err
	}
	log := m.log.With("user_id", userID)
	if !reachable(u, support) {
		log.Info("notifications dropped: the user is disabled or has no address to send to", "count", len(batch))
		return false, nil
	}
	var items []item
	for _, p := range batch {
		if !wants(u, p.Kind) {
			continue // they changed their mind meanwhile
		}
		it, ok, err := m.describe(ctx, tx, p)
		if err != nil {
			return false, err
		}
		if ok {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return false, nil
	}
	healthy, err := m.healthyMailboxes(ctx, tx)
	if err != nil {
		return false, err
	}
	prefer := []int64{m.systemMailbox(healthy)}
	for _, it := range items {
		prefer = append(prefer, it.mailboxID)
	}
	mb, ok := pickSender(healthy, prefer, 0, false)
	if !ok {
		configured, err := anyMailboxSends(ctx, tx)
		if err != nil || configured {
			return false, cmp.Or(err, errNoSender) // it waits for one that works again
		}
		// No mailbox has sending settings (an import-only desk): nothing
		// will ever send them, so they are not kept.
		log.Info("notifications dropped: no mailbox has sending settings", "count", len(items))
		return false, nil
	}
	if err := m.queue(ctx, tx, mb, m.agentEmail(u, items)); err != nil {
		return false, err
	}
	tx.AfterCommit(func() { log.Info("notification queued", "mailbox_id", mb.ID, "events", len(items)) })
	return true, nil
}

// systemMailbox is the id of the configured system mailbox when it is
// healthy (0 otherwise).
func (m *Mailer) systemMailbox(healthy []store.Mailbox) int64 {
	if m.opt.SystemMailbox == "" {
		return 0
	}
	for _, mb := range healthy {
		if mb.Address == m.opt.SystemMailbox {
			return mb.ID
		}
	}
	return 0
}

// wants reports whether u chose to hear of events of kind.
func wants(u store.User, kind string) bool {
	switch kind {
	case store.EventTicketCreated:
		return u.Notify.NewTicket
	case store.EventTicketCustomerReplied:
		return u.Notify.CustomerReply
	case store.EventTicketAssigned:
		return u.Notify.Assigned
	case store.EventTicketReplyFailed:
		return true // their reply did not reach the customer: not a choice
	}
	return false
}

// item is one event of an agent's email.
type item struct {
	kind      string
	ticketID  int64
	mailboxID int64
	text      string
	always    bool // sent whatever the user chose (a reply not delivered)
	// undelivered: a reply that failed for good (not one whose outcome
	// is unknown), counted in a digest's subject.
	undelivered bool
}

// describe writes one pending event as a line; ok is false when its
// ticket is gone or turned out to be bulk.
func (m *Mailer) describe(ctx context.Context, tx *store.Tx, p store.PendingNotification) (item, bool, error) {
	t, err := tx.Ticket(ctx, p.TicketID)
	if errors.Is(err, store.ErrNotFound) {
		return item{}, false, nil
	}
	if err != nil {
		return item{}, false, err
	}
	if t.Bulk && p.Kind != store.EventTicketReplyFailed {
		return item{}, false, nil
	}
	ref := "#" + strconv.FormatInt(t.ID, 10)
	subject := t.Subject
	if subject == "" {
		subject = "(no subject)"
	}
	requester := mailmsg.Address{Name: t.RequesterName, Address: t.RequesterAddress}.String()
	it := item{kind: p.Kind, ticketID: t.ID, mailboxID: t.MailboxID}
	switch p.Kind {
	case store.EventTicketCreated:
		it.text = fmt.Sprintf("New ticket %s in %s from %s: %s", ref, t.MailboxAddress, requester, subject)
	case store.EventTicketCustomerReplied:
		who := requester // whoever wrote: a colleague the customer copied, another address of theirs
		if p.MessageID != 0 {
			m, err := tx.Message(ctx, p.MessageID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return item{}, false, err
			}
			if err == nil && m.FromAddress != "" {
				who = mailmsg.Address{Name: m.FromName, Address: m.FromAddress}.String()
			}
		}
		it.text = fmt.Sprintf("%s answered on %s: %s", who, ref, subject)
	case store.EventTicketAssigned:
		by := "Postdesk"
		if p.ActorUserID != 0 {
			if a, err := tx.User(ctx, p.ActorUserID); err == nil {
				by = displayName(a)
			} else if !errors.Is(err, store.ErrNotFound) {
				return item{}, false, err
			}
		}
		it.text = fmt.Sprintf("%s assigned %s to you: %s", by, ref, subject)
	case store.EventTicketReplyFailed:
		o, err := tx.OutboxItem(ctx, p.MessageID)
		if errors.Is(err, store.ErrNotFound) {
			return item{}, false, nil
		}
		if err != nil {
			return item{}, false, err
		}
		to := strings.Join(o.Recipients, ", ")
		switch {
		case o.State == store.DeliveryFailed && o.ErrorKind == "bounced":
			// LastError names each address that bounced, with its reason.
			it.text = fmt.Sprintf("A reply on %s came back undelivered: %s; %s", ref, clip(strings.TrimPrefix(o.LastError, store.BouncedWords), 200), subject)
		case o.State == store.DeliveryFailed:
			it.text = fmt.Sprintf("A reply on %s was not delivered to %s: %s; %s", ref, to, clip(o.LastError, 200), subject)
		case o.State == store.DeliveryUnknown:
			it.text = fmt.Sprintf("A reply on %s may not have reached %s (Postdesk cannot tell): %s", ref, to, subject)
		default:
			return item{}, false, nil // sent again meanwhile, or marked as sent
		}
		it.always, it.undelivered = true, o.State == store.DeliveryFailed
	}
	return it, true, nil
}

func displayName(u store.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// agentEmail writes an agent's email: one event, or a digest of several.
func (m *Mailer) agentEmail(u store.User, items []item) email {
	e := email{to: u, outro: "You get these emails as chosen in your profile: " + m.link("/profile")}
	always, failed := false, 0
	for _, it := range items {
		always = always || it.always
		if it.undelivered {
			failed++
		}
	}
	if always {
		e.outro = "A reply that was not delivered is always emailed to its author. Other emails are as chosen in your profile: " + m.link("/profile")
	}
	if len(items) == 1 {
		it := items[0]
		e.subject = clip(it.text, maxSubjectRunes)
		e.intro = "Hello " + displayName(u) + ","
	} else {
		e.subject = fmt.Sprintf("%d updates on your Postdesk tickets", len(items))
		if failed > 0 {
			e.subject += fmt.Sprintf(", %d %s", failed, plural(failed, "reply not delivered", "replies not delivered"))
		}
		e.intro = fmt.Sprintf("Hello %s,\n\n%d things happened on your tickets:", displayName(u), len(items))
	}
	for i, it := range items {
		if i == maxItems {
			e.items = append(e.items, mailmsg.NoticeItem{Text: fmt.Sprintf("… and %d more", len(items)-maxItems), URL: m.link("/tickets")})
			break
		}
		e.items = append(e.items, mailmsg.NoticeItem{Text: it.text, URL: m.link("/tickets/" + strconv.FormatInt(it.ticketID, 10))})
	}
	return e
}

// maxSubjectRunes bounds a notification's subject: the event's sentence
// names the ticket's subject, which a customer may have made 1,000
// characters long; the email's body has it whole.
const maxSubjectRunes = 150

// clip cuts s to max runes at a word, with an ellipsis.
func clip(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	cut := string(r[:max-1])
	if i := strings.LastIndexByte(cut, ' '); i > max/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,.;:") + "…"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
