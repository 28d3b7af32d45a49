package jobs_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A reply goes out through real Postfix submission with XOAUTH2, arrives
// once in the customer's Dovecot mailbox with the right header, and the
// customer's answer, delivered to the support mailbox and fetched, joins
// the same ticket.
func TestReplyArrivesAndAnswerJoins(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack, idp := newStack(t, false, nil, supportAddr)
			e := newDesk(t, dialect, stack, idp)
			mb := e.addMailbox(supportAddr, "", "")
			ticket := e.newTicket(mb, customerAddr, "Printer on fire", "q1@customer.test")

			m, err := e.desk.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: "Please unplug it.", Cc: []string{"Bob <bob@customer.test>"}, Status: store.StatusPending})
			if err != nil {
				t.Fatal(err)
			}
			sent := e.waitDelivery(m.ID, store.DeliverySent, 10*time.Second)
			if sent.Delivery.Attempts != 1 || sent.Delivery.SentAt.IsZero() {
				t.Errorf("delivery = %+v", sent.Delivery)
			}
			got := waitInbox(t, stack, customerAddr, 1, 10*time.Second)
			r := got[0]
			if r.MessageID != m.MessageID || len(r.InReplyTo) != 1 || r.InReplyTo[0] != "q1@customer.test" ||
				strings.Join(r.References, " ") != "q1@customer.test" || r.Subject != fmt.Sprintf("Re: Printer on fire [#%d]", ticket) ||
				len(r.From) != 1 || r.From[0].Address != supportAddr || r.From[0].Name != "Example Support" ||
				len(r.To) != 1 || r.To[0].Address != customerAddr || len(r.Cc) != 1 || r.Cc[0].Address != "bob@customer.test" ||
				!strings.Contains(r.Text, "Please unplug it.") || !strings.Contains(r.Text, "Hello, it is broken.") {
				t.Errorf("received: id %q irt %v refs %v subject %q from %v to %v cc %v\n%s", r.MessageID, r.InReplyTo, r.References, r.Subject, r.From, r.To, r.Cc, r.Text)
			}
			// Bob got it too (Cc), exactly once each; nothing else went out.
			waitInbox(t, stack, "bob@customer.test", 1, 10*time.Second)
			time.Sleep(500 * time.Millisecond)
			if n := len(inbox(t, stack, customerAddr)); n != 1 {
				t.Errorf("customer has %d messages, want 1", n)
			}

			// The customer answers; mail sync fetches it into the same ticket.
			e.sync()
			answer := customerEmail(customerAddr, supportAddr, "Re: "+r.Subject, "a1@customer.test", m.MessageID, "Unplugged, thanks.")
			if err := stack.SendSMTP(e.ctx, customerAddr, []string{supportAddr}, answer); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				msgs, err := e.db.TicketMessages(e.ctx, ticket)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) == 3 {
					// (Mail sync dates a message by its IMAP INTERNALDATE, to the
					// second: the answer may sort before the reply.)
					if !slices.ContainsFunc(msgs, func(m store.Message) bool { return m.MessageID == "a1@customer.test" && m.Direction == "in" }) {
						t.Errorf("the answer is not on the ticket: %+v", msgs)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the answer did not join ticket %d: %d messages", ticket, len(msgs))
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tk, _ := e.db.Ticket(e.ctx, ticket); tk.Status != store.StatusOpen {
				t.Errorf("status after the customer's answer = %s, want open", tk.Status)
			}
		})
	}
}

// A token revoked at the provider: 20 replies are held and nothing is
// sent; after a new sign-in all 20 arrive in order, once each.
func TestHeldUntilReauthenticated(t *testing.T) {
	stack, idp := newStack(t, false, nil, supportAddr)
	e := newDesk(t, "sqlite", stack, idp)
	mb := e.addMailbox(supportAddr, "", "")
	ticket := e.newTicket(mb, customerAddr, "Refund", "q1@customer.test")
	if err := idp.Revoke(supportAddr); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var mids []string
	for i := range 20 {
		m, err := e.desk.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: fmt.Sprintf("Reply number %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids, mids = append(ids, m.ID), append(mids, m.MessageID)
		if i == 0 {
			// The first one finds out: the server refuses the token, the
			// provider refuses the refresh; the mailbox needs re-authentication.
			e.waitDelivery(m.ID, store.DeliveryHeld, 15*time.Second)
		}
	}
	for _, id := range ids {
		e.waitDelivery(id, store.DeliveryHeld, 5*time.Second)
	}
	a, err := e.db.MailboxAuth(e.ctx, mb.ID)
	if err != nil || a.State != store.AuthNeedsReauth {
		t.Fatalf("auth state = %s, %v", a.State, err)
	}
	if form, _ := e.desk.ReplyForm(e.ctx, ticket); !form.Held {
		t.Error("the reply form does not say replies are held")
	}
	time.Sleep(1500 * time.Millisecond) // a sweep passes: still nothing
	if n := len(inbox(t, stack, customerAddr)); n != 0 {
		t.Fatalf("%d replies arrived while the mailbox needed re-authentication", n)
	}

	e.signIn(mb)
	waitInbox(t, stack, customerAddr, 20, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	// Once each in the customer's mailbox (Postfix delivers in parallel,
	// so the mailbox's order is not the sending order)...
	seen := map[string]int{}
	for _, m := range inbox(t, stack, customerAddr) {
		seen[m.MessageID]++
	}
	for _, mid := range mids {
		if seen[mid] != 1 {
			t.Errorf("%s arrived %d times", mid, seen[mid])
		}
	}
	if len(seen) != len(mids) {
		t.Errorf("%d distinct messages arrived, want %d", len(seen), len(mids))
	}
	// ...and accepted by Postfix in the order they were written.
	if order := acceptedOrder(stack.Logs(), mids); !slices.Equal(order, mids) {
		t.Errorf("Postfix accepted them in order\n%v\nwant\n%v", order, mids)
	}
	for _, id := range ids {
		e.waitDelivery(id, store.DeliverySent, 5*time.Second)
	}
}

// acceptedOrder lists the Message-IDs among want in the order Postfix's
// cleanup logged them (the order the server accepted them).
func acceptedOrder(logs string, want []string) []string {
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		_, rest, ok := strings.Cut(line, "/cleanup[")
		if !ok {
			continue
		}
		_, id, ok := strings.Cut(rest, "message-id=<")
		if !ok {
			continue
		}
		id = strings.TrimSuffix(strings.TrimSpace(id), ">")
		if wanted[id] {
			out = append(out, id)
		}
	}
	return out
}

// With Postfix's reject_sender_login_mismatch, a mailbox whose login may
// not send as its address fails with the Send As explanation, while
// another mailbox keeps sending; a webhook hears ticket.reply_failed for
// the refused reply, naming it and its author.
func TestSendAsDenied(t *testing.T) {
	const shared, delegate = "shared@example.com", "delegate@example.com"
	stack, idp := newStack(t, true, map[string]string{delegate: "pw"}, supportAddr)
	e := newDesk(t, "sqlite", stack, idp)
	r := e.webhook(t, store.EventTicketReplyFailed)
	good := e.addMailbox(supportAddr, "", "")
	bad := e.addMailbox(shared, delegate, "pw")
	tGood := e.newTicket(good, customerAddr, "Good", "g1@customer.test")
	tBad := e.newTicket(bad, "other@customer.test", "Bad", "b1@customer.test")

	mBad, err := e.desk.Reply(e.ctx, tBad, e.agent, desk.ReplyInput{Text: "from the shared mailbox"})
	if err != nil {
		t.Fatal(err)
	}
	mGood, err := e.desk.Reply(e.ctx, tGood, e.agent, desk.ReplyInput{Text: "from support"})
	if err != nil {
		t.Fatal(err)
	}
	failed := e.waitDelivery(mBad.ID, store.DeliveryFailed, 15*time.Second)
	if failed.Delivery.ErrorKind != "send_as_denied" || !strings.Contains(failed.Delivery.LastError, "553") {
		t.Errorf("failed delivery = %+v", failed.Delivery)
	}
	if !strings.Contains(desk.DeliveryAdvice(failed.Delivery.ErrorKind), "Send As") {
		t.Errorf("advice = %q", desk.DeliveryAdvice(failed.Delivery.ErrorKind))
	}
	e.waitDelivery(mGood.ID, store.DeliverySent, 15*time.Second)
	waitInbox(t, stack, customerAddr, 1, 10*time.Second)
	notices, err := e.db.Notices(e.ctx, store.NoticeFilter{MailboxID: bad.ID})
	if err != nil || len(notices) != 1 || notices[0].Kind != "smtp_send_as_denied" {
		t.Errorf("notices = %+v, %v", notices, err)
	}
	// Later replies of the good mailbox keep going.
	m2, err := e.desk.Reply(e.ctx, tGood, e.agent, desk.ReplyInput{Text: "again"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivery(m2.ID, store.DeliverySent, 10*time.Second)

	got := waitRequests(t, r, 1, 30*time.Second)
	p := got[0]
	msg, _ := p.payload.Data["message"].(map[string]any)
	user, _ := p.payload.Data["user"].(map[string]any)
	ticket, _ := p.payload.Data["ticket"].(map[string]any)
	if p.sigErr != nil || p.payload.Type != store.EventTicketReplyFailed || p.payload.Data["state"] != "failed" ||
		p.payload.Data["error_kind"] != "send_as_denied" || msg["id"] != float64(mBad.ID) || user["id"] != float64(e.agent.ID) ||
		ticket["id"] != float64(tBad) {
		t.Errorf("webhook: signature %v, %s", p.sigErr, p.body)
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1 (the sent replies are not failures)", n)
	}
}

// A reply Postfix accepted and then returned undelivered (its error
// transport for mailtest.BounceDomain writes a real RFC 3464 report to
// the mailbox): mail sync fetches the report, which is attached to the
// ticket and turns the "sent" reply into a failed one, "bounced" with the
// report's words; the solved ticket is open again, and a webhook hears
// ticket.reply_failed. Before, the reply stayed "sent" and nobody knew.
func TestBouncedReplyIsNotSent(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack, idp := newStack(t, false, nil, supportAddr)
			e := newDesk(t, dialect, stack, idp)
			r := e.webhook(t, store.EventTicketReplyFailed)
			mb := e.addMailbox(supportAddr, "", "")
			customer := "jane@" + mailtest.BounceDomain
			ticket := e.newTicket(mb, customer, "Where is my parcel", "p1@customer.test")
			e.sync()
			reply, err := e.desk.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: "It left on Monday.", Status: store.StatusSolved})
			if err != nil {
				t.Fatal(err)
			}
			e.waitDelivery(reply.ID, store.DeliverySent, 15*time.Second)
			failed := e.waitDelivery(reply.ID, store.DeliveryFailed, 30*time.Second)
			if d := failed.Delivery; d.ErrorKind != "bounced" || !strings.Contains(d.LastError, customer) || !strings.Contains(d.LastError, "5.1.1") {
				t.Errorf("delivery after the report: %+v", d)
			}
			tk, err := e.db.Ticket(e.ctx, ticket)
			if err != nil || tk.Status != store.StatusOpen {
				t.Errorf("ticket status %q (%v), want open again", tk.Status, err)
			}
			msgs, err := e.db.TicketMessages(e.ctx, ticket)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, m := range msgs {
				kinds = append(kinds, m.Kind)
			}
			if fmt.Sprint(kinds) != fmt.Sprint([]string{store.KindEmail, store.KindReply, store.KindBounce}) {
				t.Errorf("the ticket's messages are %v, want the email, the reply and the report", kinds)
			}
			got := waitRequests(t, r, 1, 30*time.Second)
			p := got[0]
			msg, _ := p.payload.Data["message"].(map[string]any)
			if p.sigErr != nil || p.payload.Type != store.EventTicketReplyFailed || p.payload.Data["error_kind"] != "bounced" || msg["id"] != float64(reply.ID) {
				t.Errorf("webhook: signature %v, %s", p.sigErr, p.body)
			}

			// Only a copied address bounces: the customer got the reply, so
			// it stays sent (Send again would send it twice), and the
			// ticket says who was not reached.
			other := e.newTicket(mb, customerAddr, "Invoice", "i1@customer.test")
			both, err := e.desk.Reply(e.ctx, other, e.agent, desk.ReplyInput{Text: "Attached.", Cc: []string{"boss@" + mailtest.BounceDomain}})
			if err != nil {
				t.Fatal(err)
			}
			e.waitDelivery(both.ID, store.DeliverySent, 15*time.Second)
			waitInbox(t, stack, customerAddr, 1, 10*time.Second)
			deadline := time.Now().Add(30 * time.Second)
			for {
				notes, err := e.db.TicketNotes(e.ctx, other)
				if err != nil {
					t.Fatal(err)
				}
				if len(notes) > 0 && strings.Contains(notes[len(notes)-1].Body, "did not reach everyone") && strings.Contains(notes[len(notes)-1].Body, "boss@"+mailtest.BounceDomain) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no note about the bounced copy: %+v", notes)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if m, err := e.db.Message(e.ctx, both.ID); err != nil || m.Delivery.State != store.DeliverySent {
				t.Errorf("the reply the customer got: %+v %v, want still sent", m.Delivery, err)
			}
			if n := len(r.requests()); n != 1 {
				t.Errorf("the receiver got %d requests, want 1", n)
			}

			// The customer (To) bounced while a copy arrived: the customer
			// has nothing, so the reply is failed all the same.
			third := e.newTicket(mb, "kim@"+mailtest.BounceDomain, "Warranty", "w1@customer.test")
			toKim, err := e.desk.Reply(e.ctx, third, e.agent, desk.ReplyInput{Text: "Covered.", Cc: []string{"boss@customer.test"}})
			if err != nil {
				t.Fatal(err)
			}
			bounced := e.waitDelivery(toKim.ID, store.DeliveryFailed, 30*time.Second)
			if d := bounced.Delivery; d.ErrorKind != "bounced" || !strings.Contains(d.LastError, "kim@"+mailtest.BounceDomain) || !strings.Contains(d.LastError, "other recipients got it") {
				t.Errorf("the customer bounced, a copy arrived: %+v", d)
			}
			waitRequests(t, r, 2, 30*time.Second)
		})
	}
}

// Replies held while the mailbox needed re-authentication wait, after the
// new sign-in, until mail sync has caught up: a reply on a ticket whose
// customer wrote again meanwhile is not sent ("stale", its author told,
// Send again sends it), the other goes. Before, both went out at the
// sign-in, seconds before the customer's newer email was fetched.
func TestReleasedReplyWaitsForTheCatchUp(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack, idp := newStack(t, false, nil, supportAddr)
			e := newDesk(t, dialect, stack, idp)
			mb := e.addMailbox(supportAddr, "", "")
			first := e.newTicket(mb, customerAddr, "Refund", "q1@customer.test")
			other := e.newTicket(mb, "kim@customer.test", "Invoice", "k1@customer.test")
			e.sync()
			if err := idp.Revoke(supportAddr); err != nil {
				t.Fatal(err)
			}
			stale := e.heldReply(first, "Your refund is on its way.")
			fine := e.heldReply(other, "Here is your invoice.")
			// The customer writes again while the mailbox cannot be read.
			again := customerEmail(customerAddr, supportAddr, "Re: Refund", "q2@customer.test", "q1@customer.test", "Actually, please send a replacement instead.")
			if err := stack.SendSMTP(e.ctx, customerAddr, []string{supportAddr}, again); err != nil {
				t.Fatal(err)
			}

			e.signIn(mb)
			got := e.waitDelivery(stale.ID, store.DeliveryFailed, 30*time.Second)
			if d := got.Delivery; d.ErrorKind != "stale" || !strings.Contains(d.LastError, customerAddr+" wrote again") {
				t.Errorf("the reply the customer's newer email overtook: %+v", d)
			}
			e.waitDelivery(fine.ID, store.DeliverySent, 30*time.Second)
			msgs, err := e.db.TicketMessages(e.ctx, first)
			if err != nil || len(msgs) != 3 || msgs[2].MessageID != "q2@customer.test" {
				t.Fatalf("ticket %d: %d messages %v, want the customer's newer email last", first, len(msgs), err)
			}
			for _, m := range inbox(t, stack, customerAddr) {
				if strings.Contains(m.Text, "refund is on its way") {
					t.Errorf("the stale reply reached the customer")
				}
			}
			// Read, and sent again by its author's choice, while the sign-in
			// lapses a second time: held, then after the next sign-in it
			// goes (the email its author has read no longer stops it).
			if err := idp.Revoke(supportAddr); err != nil {
				t.Fatal(err)
			}
			if err := e.desk.RetryReply(e.ctx, stale.ID, e.agent); err != nil {
				t.Fatal(err)
			}
			e.waitDelivery(stale.ID, store.DeliveryHeld, 30*time.Second)
			e.signIn(mb)
			e.waitDelivery(stale.ID, store.DeliverySent, 30*time.Second)
		})
	}
}

// A mailbox removed while its replies are held: they fail, saying why
// (the remove page warned), and never go out; the sweep no longer calls
// them "released after sign-in" first.
func TestHeldRepliesOfARemovedMailbox(t *testing.T) {
	stack, idp := newStack(t, false, nil, supportAddr)
	e := newDesk(t, "sqlite", stack, idp)
	mb := e.addMailbox(supportAddr, "", "")
	ticket := e.newTicket(mb, customerAddr, "Refund", "q1@customer.test")
	if err := idp.Revoke(supportAddr); err != nil {
		t.Fatal(err)
	}
	m := e.heldReply(ticket, "On its way.")
	if _, err := e.admin.RemoveMailboxID(e.ctx, mb.ID); err != nil {
		t.Fatal(err)
	}
	got := e.waitDelivery(m.ID, store.DeliveryFailed, 15*time.Second)
	if d := got.Delivery; d.ErrorKind != "config" || !strings.Contains(d.LastError, "removed") {
		t.Errorf("the held reply of a removed mailbox: %+v", d)
	}
	if n := len(inbox(t, stack, customerAddr)); n != 0 {
		t.Errorf("%d emails reached the customer", n)
	}
}

// heldReply writes an agent's reply on a ticket of a mailbox that needs
// re-authentication, and waits until it is held.
func (e *deskEnv) heldReply(ticket int64, text string) store.Message {
	e.t.Helper()
	m, err := e.desk.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: text})
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitDelivery(m.ID, store.DeliveryHeld, 15*time.Second)
	return m
}

// webhook registers a webhook for events, delivered to a receiver on
// loopback that checks each request's signature.
func (e *deskEnv) webhook(t *testing.T, events ...string) *receiver {
	t.Helper()
	r := newReceiver(t)
	_, secret, err := desk.NewWebhookAdmin(e.db, e.vault, true, e.hooks.EnqueueTest).Create(e.ctx,
		desk.WebhookInput{URL: r.URL + "/postdesk", Enabled: true, Events: events}, e.agent)
	if err != nil {
		t.Fatal(err)
	}
	r.secret = []byte(secret)
	return r
}
