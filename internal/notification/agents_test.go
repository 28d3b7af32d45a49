package notification_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/notification"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// 20 new tickets arriving at once reach a follower as ONE digest, only
// when the window ends; a follower who did not choose new tickets, a
// disabled one, and the agent who is the customer of a ticket hear
// nothing of it (or of that one); bulk mail tells nobody.
func TestNewTicketsDigest(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDBEnv(t, dialect, nil)
			a := e.passwordMailbox("support@example.test")
			all := store.NotifyChoices{NewTicket: true, CustomerReply: true, Assigned: true}
			ann := e.user("ann@helpdesk.test", store.RoleAgent, all, a.ID)
			bob := e.user("bob@helpdesk.test", store.RoleAgent, store.DefaultNotify, a.ID)
			carl := e.user("carl@helpdesk.test", store.RoleAgent, all, a.ID)
			dana := e.user("dana@customer.test", store.RoleAdmin, all, a.ID)
			e.user("erin@helpdesk.test", store.RoleAgent, all) // follows nothing
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error { return tx.SetUserDisabled(e.ctx, carl.ID, e.clock.Now()) }); err != nil {
				t.Fatal(err)
			}

			var tickets []int64
			for i := range 20 {
				from := fmt.Sprintf("customer%d@customer.test", i)
				if i == 7 {
					from = dana.Email // an agent writing in as a customer
				}
				res := e.mail(a, from, fmt.Sprintf("Printer %d on fire", i), "")
				if res.Outcome != ingest.NewTicket {
					t.Fatalf("ingest %d: %+v", i, res)
				}
				tickets = append(tickets, res.TicketID)
			}
			bulk := e.mail(a, "news@vendor.test", "Our newsletter", "", "Precedence: bulk", "List-Id: <news.vendor.test>")
			if bulk.TicketID == 0 {
				t.Fatalf("bulk mail opened no ticket: %+v (the test needs one)", bulk)
			}
			e.dispatch()
			e.run()
			if got := e.sentTo(ann.Email); len(got) != 0 {
				t.Fatalf("sent before the window ended: %d", len(got))
			}
			e.clock.Add(time.Minute)
			e.run()
			e.run() // a second pass sends nothing again

			got := e.sentTo(ann.Email)
			if len(got) != 1 {
				t.Fatalf("ann got %d emails, want 1 digest", len(got))
			}
			m := got[0]
			if m.msg.Subject != "20 updates on your Postdesk tickets" || m.TicketID != 0 || m.MailboxID != a.ID ||
				len(m.Recipients) != 1 || m.Recipients[0] != ann.Email || m.State != store.DeliveryQueued {
				t.Errorf("digest: subject %q ticket %d mailbox %d rcpts %v state %s", m.msg.Subject, m.TicketID, m.MailboxID, m.Recipients, m.State)
			}
			for _, id := range tickets {
				if !strings.Contains(m.msg.Text, fmt.Sprintf("#%d ", id)) || !strings.Contains(m.msg.Text, fmt.Sprintf("https://desk.example.test/tickets/%d\n", id)) {
					t.Errorf("the digest lacks ticket %d:\n%s", id, m.msg.Text)
				}
			}
			if strings.Contains(m.msg.Text, "newsletter") || strings.Contains(m.msg.Text, fmt.Sprintf("#%d ", bulk.TicketID)) {
				t.Errorf("the digest tells of bulk mail:\n%s", m.msg.Text)
			}
			if len(m.msg.From) != 1 || m.msg.From[0].Name != "Postdesk" || m.msg.From[0].Address != a.Address || m.msg.Auto == "" {
				t.Errorf("from %v, auto %q", m.msg.From, m.msg.Auto)
			}
			if n := len(e.sentTo(bob.Email)) + len(e.sentTo(carl.Email)) + len(e.sentTo("erin@helpdesk.test")); n != 0 {
				t.Errorf("%d emails to agents who did not choose, are disabled or follow nothing", n)
			}
			dg := e.sentTo(dana.Email)
			if len(dg) != 1 || strings.Contains(dg[0].msg.Text, fmt.Sprintf("#%d ", tickets[7])) || dg[0].msg.Subject != "19 updates on your Postdesk tickets" {
				t.Errorf("dana (the customer of ticket %d) got %d emails: %+v", tickets[7], len(dg), dg)
			}
			// No notification shows in a conversation or goes to a customer.
			for _, id := range tickets {
				msgs, err := e.db.TicketMessages(e.ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != 1 || msgs[0].Kind != store.KindEmail {
					t.Errorf("ticket %d shows %d messages", id, len(msgs))
				}
			}
			for i := range 20 {
				if n := len(e.sentTo(fmt.Sprintf("customer%d@customer.test", i))); n != 0 {
					t.Errorf("customer %d got %d notifications", i, n)
				}
			}
		})
	}
}

// An assignment tells the assignee (not when they took it themselves) and
// a customer's answer on their ticket tells them too: both in one email
// when they come within the window; the answer on someone else's or an
// unassigned ticket tells nobody.
func TestAssignedAndAnswered(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDBEnv(t, dialect, nil)
			a := e.passwordMailbox("support@example.test")
			ann := e.user("ann@helpdesk.test", store.RoleAgent, store.DefaultNotify)
			boss := e.user("boss@helpdesk.test", store.RoleAdmin, store.DefaultNotify)
			quiet := e.user("quiet@helpdesk.test", store.RoleAgent, store.NotifyChoices{})

			first := e.mail(a, "jane@customer.test", "Printer on fire", "")
			second := e.mail(a, "joe@customer.test", "Scanner jammed", "")
			third := e.mail(a, "kim@customer.test", "Fax", "")
			e.dispatch()
			if _, err := e.desk.Assign(e.ctx, []int64{first.TicketID}, ann.ID, boss); err != nil {
				t.Fatal(err)
			}
			if _, err := e.desk.Take(e.ctx, second.TicketID, ann); err != nil { // her own doing: no email
				t.Fatal(err)
			}
			if _, err := e.desk.Assign(e.ctx, []int64{third.TicketID}, quiet.ID, boss); err != nil { // chose no emails
				t.Fatal(err)
			}
			e.dispatch()
			first1, _ := e.db.Message(e.ctx, first.MessageID)
			e.mail(a, "jane@customer.test", "Re: Printer on fire", first1.MessageID)
			e.mail(a, "Bob Lee <bob@customer.test>", "Re: Printer on fire", first1.MessageID) // a colleague she copied: named, not Jane
			third1, _ := e.db.Message(e.ctx, third.MessageID)
			e.mail(a, "kim@customer.test", "Re: Fax", third1.MessageID)
			text := e.oneEmailAfterWindow(ann.Email,
				fmt.Sprintf("boss assigned #%d to you: Printer on fire", first.TicketID),
				fmt.Sprintf("jane@customer.test answered on #%d: Printer on fire", first.TicketID),
				fmt.Sprintf("Bob Lee <bob@customer.test> answered on #%d: Printer on fire", first.TicketID))
			if strings.Contains(text, fmt.Sprintf("#%d", second.TicketID)) || strings.Contains(text, "Fax") {
				t.Errorf("ann hears of what she did herself or of another's ticket:\n%s", text)
			}
			if n := len(e.sentTo(quiet.Email)) + len(e.sentTo(boss.Email)); n != 0 {
				t.Errorf("%d emails to users who chose none or did it themselves", n)
			}

			// One event alone: a one-line subject naming it.
			if _, err := e.desk.Assign(e.ctx, []int64{second.TicketID}, ann.ID, boss); err != nil {
				t.Fatal(err)
			}
			if _, err := e.desk.Assign(e.ctx, []int64{third.TicketID}, ann.ID, boss); err != nil {
				t.Fatal(err)
			}
			// She turns assignment emails off before the window ends: the
			// batch goes without them (nothing is sent).
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				return tx.SetNotifyChoices(e.ctx, ann.ID, store.NotifyChoices{CustomerReply: true})
			}); err != nil {
				t.Fatal(err)
			}
			e.dispatch()
			e.clock.Add(time.Minute)
			e.run()
			if got := e.sentTo(ann.Email); len(got) != 1 {
				t.Errorf("after turning assignment emails off: %d emails, want still 1", len(got))
			}
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error { return tx.SetNotifyChoices(e.ctx, ann.ID, store.DefaultNotify) }); err != nil {
				t.Fatal(err)
			}
			if _, err := e.desk.Assign(e.ctx, []int64{second.TicketID}, boss.ID, boss); err != nil {
				t.Fatal(err)
			}
			if _, err := e.desk.Assign(e.ctx, []int64{second.TicketID}, ann.ID, boss); err != nil {
				t.Fatal(err)
			}
			e.dispatch()
			e.clock.Add(time.Minute)
			e.run()
			got := e.sentTo(ann.Email)
			if len(got) != 2 || got[1].msg.Subject != fmt.Sprintf("boss assigned #%d to you: Scanner jammed", second.TicketID) {
				t.Errorf("emails: %d, last subject %q", len(got), got[len(got)-1].msg.Subject)
			}
		})
	}
}

// An agent's batch that comes due while no mailbox can send (the only
// one's password was refused) waits, and is sent once the mailbox works
// again; before, it was taken and dropped with a log line.
func TestBatchWaitsForAMailbox(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDBEnv(t, dialect, nil)
			a, ann := waitingBatch(e)
			e.run()
			if got := e.sentTo(ann.Email); len(got) != 0 {
				t.Fatalf("%d emails sent while no mailbox could send", len(got))
			}
			if pending, err := e.db.PendingNotifications(e.ctx, ann.ID); err != nil || len(pending) != 1 {
				t.Fatalf("pending while no mailbox can send: %d, %v; want the batch kept", len(pending), err)
			}
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				return tx.SetAuthState(e.ctx, a.ID, store.AuthOK, "", "", e.clock.Now())
			}); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(time.Minute)
			e.run()
			got := e.sentTo(ann.Email)
			if len(got) != 1 || !strings.Contains(got[0].msg.Text, "Printer on fire") {
				t.Fatalf("after the mailbox works again: %d emails, want 1 about the new ticket", len(got))
			}
			if pending, err := e.db.PendingNotifications(e.ctx, ann.ID); err != nil || len(pending) != 0 {
				t.Errorf("pending after it was sent: %d, %v", len(pending), err)
			}
		})
	}
}

// While a batch waits for a mailbox that can send, its due time is past:
// the loop looks again at its interval, not at once (it ran about 93
// passes a second, each a write transaction).
func TestWaitingBatchDoesNotSpinTheLoop(t *testing.T) {
	var reads atomic.Int64
	e := newDBEnv(t, "sqlite", func(o *notification.Options) {
		inner := o.Now
		o.Now = func() time.Time { reads.Add(1); return inner() }
		o.Interval = 10 * time.Second
	})
	_, ann := waitingBatch(e)
	if p, _ := e.db.PendingNotifications(e.ctx, ann.ID); len(p) != 1 {
		t.Fatalf("%d batches pending, want the one waiting", len(p))
	}
	before := reads.Load()
	e.run()
	perPass := reads.Load() - before
	before = reads.Load()
	e.mailer.Start()
	time.Sleep(time.Second)
	e.mailer.Stop(context.Background())
	if passes := (reads.Load() - before) / max(perPass, 1); passes > 3 {
		t.Errorf("the loop ran about %d passes in a second with an interval of 10 s", passes)
	}
}

// waitingBatch gives ann, an agent following the only mailbox a, a batch
// about a new ticket that came due (and was flushed once) while a's
// password was refused: no mailbox could send it.
func waitingBatch(e *dbEnv) (a store.Mailbox, ann store.User) {
	a = e.passwordMailbox("support@example.test")
	ann = e.user("ann@helpdesk.test", store.RoleAgent, store.NotifyChoices{NewTicket: true}, a.ID)
	e.mail(a, "customer@customer.test", "Printer on fire", "")
	e.dispatch()
	e.needsReauth(a, 0)
	e.clock.Add(time.Minute)
	e.run()
	return a, ann
}

// A notification about one ticket names it in its subject, cut to 150
// characters at a word: a customer's 1,000-character subject made one as
// long (the body keeps it whole).
func TestNotificationSubjectIsClipped(t *testing.T) {
	e := newDBEnv(t, "sqlite", nil)
	a := e.passwordMailbox("support@example.test")
	ann := e.user("ann@helpdesk.test", store.RoleAgent, store.NotifyChoices{NewTicket: true}, a.ID)
	long := strings.TrimSpace(strings.Repeat("printer on fire again ", 50))
	e.mail(a, "customer@customer.test", long, "")
	e.dispatch()
	e.clock.Add(time.Minute)
	e.run()
	got := e.sentTo(ann.Email)
	if len(got) != 1 {
		t.Fatalf("%d emails, want 1", len(got))
	}
	if s := got[0].msg.Subject; len([]rune(s)) > 150 || !strings.HasSuffix(s, "…") || strings.HasSuffix(s, " …") {
		t.Errorf("subject (%d characters) = %q", len([]rune(s)), s)
	}
	if !strings.Contains(strings.Join(strings.Fields(got[0].msg.Text), " "), long) {
		t.Errorf("the body lost the whole subject:\n%s", got[0].msg.Text)
	}
}

// A reply refused for good, or whose outcome is unknown, is emailed to its
// author whatever they chose (naming the recipients and the server's
// words); to the assignee when its author is disabled; not when it was sent
// again before the batch went, nor for an acknowledgement. Before, only the
// ticket's page and the list said so, and the customer waited.
func TestReplyNotDeliveredTellsItsAuthor(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newDBEnv(t, dialect, nil)
			a := e.passwordMailbox("support@example.test")
			ann := e.user("ann@helpdesk.test", store.RoleAgent, store.NotifyChoices{}) // chose no emails
			bob := e.user("bob@helpdesk.test", store.RoleAgent, store.NotifyChoices{})
			boss := e.user("boss@helpdesk.test", store.RoleAdmin, store.NotifyChoices{})

			first := e.mail(a, "jane@customer.test", "Printer on fire", "")
			second := e.mail(a, "joe@customer.test", "Scanner jammed", "")
			third := e.mail(a, "kim@customer.test", "Fax", "")
			reply := func(ticketID int64, by store.User, to ...string) int64 {
				t.Helper()
				m, err := e.desk.Reply(e.ctx, ticketID, by, desk.ReplyInput{Text: "We are on it.", To: to, Status: store.StatusPending})
				if err != nil {
					t.Fatal(err)
				}
				return m.ID
			}
			failed := reply(first.TicketID, ann, "nobody@customer.test")
			unknown := reply(second.TicketID, ann)
			resent := reply(third.TicketID, ann)
			at := e.clock.Now()
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				if err := tx.MarkFailed(e.ctx, failed, "recipient_unknown", "550 5.1.1 <nobody@customer.test>: Recipient address rejected", at); err != nil {
					return err
				}
				if ok, err := tx.ClaimOutbox(e.ctx, a.ID, "test", at, at.Add(time.Minute)); err != nil || !ok {
					return fmt.Errorf("claim: %v %w", ok, err)
				}
				for _, id := range []int64{unknown, resent} {
					if ok, err := tx.BeginAttempt(e.ctx, id, "test", at); err != nil || !ok {
						return fmt.Errorf("begin attempt: %v %w", ok, err)
					}
					if err := tx.MarkUnknown(e.ctx, id, "the connection was lost", at); err != nil {
						return err
					}
				}
				return tx.Requeue(e.ctx, resent, at) // an agent chose Send again meanwhile
			}); err != nil {
				t.Fatal(err)
			}
			text := e.oneEmailAfterWindow(ann.Email,
				fmt.Sprintf("A reply on #%d was not delivered to nobody@customer.test: 550 5.1.1 <nobody@customer.test>: Recipient address rejected; Printer on fire", first.TicketID),
				fmt.Sprintf("A reply on #%d may not have reached joe@customer.test (Postdesk cannot tell): Scanner jammed", second.TicketID),
				fmt.Sprintf("https://desk.example.test/tickets/%d", first.TicketID))
			// The customer has no answer: the failed reply's ticket is open
			// again; the one that may have arrived stays pending.
			for id, want := range map[int64]string{first.TicketID: store.StatusOpen, second.TicketID: store.StatusPending} {
				if tk, err := e.db.Ticket(e.ctx, id); err != nil || tk.Status != want {
					t.Errorf("ticket %d: status %q %v, want %q", id, tk.Status, err, want)
				}
			}
			if strings.Contains(text, fmt.Sprintf("#%d", third.TicketID)) {
				t.Errorf("ann hears of a reply sent again meanwhile:\n%s", text)
			}
			if n := len(e.sentTo(bob.Email)) + len(e.sentTo(boss.Email)); n != 0 {
				t.Errorf("%d emails to others", n)
			}
			if got := e.sentTo(ann.Email)[0].msg; got.Subject != "2 updates on your Postdesk tickets, 1 reply not delivered" || !strings.Contains(got.Text, "always emailed to its author") {
				t.Errorf("ann's digest: subject %q\n%s", got.Subject, got.Text)
			}

			// Ann is disabled; the ticket is Bob's: he hears of her reply.
			if _, err := e.desk.Assign(e.ctx, []int64{first.TicketID}, bob.ID, boss); err != nil {
				t.Fatal(err)
			}
			again := reply(first.TicketID, ann, "nobody@customer.test")
			if err := e.db.Write(e.ctx, func(tx *store.Tx) error {
				if err := tx.SetUserDisabled(e.ctx, ann.ID, e.clock.Now()); err != nil {
					return err
				}
				return tx.MarkFailed(e.ctx, again, "recipient_unknown", "550 5.1.1 no such user", e.clock.Now())
			}); err != nil {
				t.Fatal(err)
			}
			e.dispatch()
			e.clock.Add(time.Minute)
			e.run()
			if got := e.sentTo(bob.Email); len(got) != 1 || !strings.Contains(got[0].msg.Subject, fmt.Sprintf("A reply on #%d was not delivered", first.TicketID)) {
				t.Errorf("bob, the assignee: %d emails %v", len(got), got)
			}
			if got := e.sentTo(ann.Email); len(got) != 1 {
				t.Errorf("ann, disabled: %d emails, want still 1", len(got))
			}

			// The webhook event names the reply, its author and the state.
			evs, err := e.db.EventsSince(e.ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, ev := range evs {
				if ev.Kind == store.EventTicketReplyFailed {
					states = append(states, fmt.Sprintf("%d:%d:%v:%v", ev.MessageID, ev.UserID, ev.Data["state"], ev.Data["error_kind"]))
				}
			}
			want := []string{fmt.Sprintf("%d:%d:failed:recipient_unknown", failed, ann.ID), fmt.Sprintf("%d:%d:unknown:outcome_unknown", unknown, ann.ID),
				fmt.Sprintf("%d:%d:unknown:outcome_unknown", resent, ann.ID), fmt.Sprintf("%d:%d:failed:recipient_unknown", again, ann.ID)}
			if fmt.Sprint(states) != fmt.Sprint(want) {
				t.Errorf("reply_failed events %v, want %v", states, want)
			}
		})
	}
}

// oneEmailAfterWindow dispatches the events, lets the batching window
// pass, runs the Mailer, and returns the text of the one email address
// has, checking that it holds each of wants.
func (e *dbEnv) oneEmailAfterWindow(address string, wants ...string) string {
	e.t.Helper()
	e.dispatch()
	e.clock.Add(time.Minute)
	e.run()
	got := e.sentTo(address)
	if len(got) != 1 {
		e.t.Fatalf("%s got %d emails, want 1", address, len(got))
	}
	text := got[0].msg.Text
	for _, want := range wants {
		if !strings.Contains(text, want) {
			e.t.Errorf("%s's email lacks %q:\n%s", address, want, text)
		}
	}
	return text
}
