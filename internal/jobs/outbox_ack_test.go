package jobs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Two helpdesks (two Postdesks, each with acknowledgements on) whose
// mailboxes write to each other: every new ticket is acknowledged at most
// MaxAcksPerHour times per sender, acknowledgements are never answered,
// and the exchange stops.
func TestAcknowledgementsBetweenTwoDesks(t *testing.T) {
	const a, b = "a@example.com", "b@example.com"
	stack, idp := newStack(t, false, map[string]string{a: "pw-a", b: "pw-b"})
	deskA, deskB := newDesk(t, "sqlite", stack, idp), newDesk(t, "sqlite", stack, idp)
	mbA, mbB := deskA.addMailbox(a, "", "pw-a"), deskB.addMailbox(b, "", "pw-b")
	if _, err := deskA.admin.SetAcknowledgement(deskA.ctx, mbA.ID, true, "We got {{subject}} as ticket {{ticket}}."); err != nil {
		t.Fatal(err)
	}
	if _, err := deskB.admin.SetAcknowledgement(deskB.ctx, mbB.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	deskA.sync()
	deskB.sync()
	// Five emails each way, each a new ticket.
	for i := range 5 {
		if err := stack.SendSMTP(deskA.ctx, b, []string{a}, customerEmail(b, a, fmt.Sprintf("From B %d", i), fmt.Sprintf("b%d@example.com", i), "", "hi")); err != nil {
			t.Fatal(err)
		}
		if err := stack.SendSMTP(deskA.ctx, a, []string{b}, customerEmail(a, b, fmt.Sprintf("From A %d", i), fmt.Sprintf("a%d@example.com", i), "", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for A's and B's acknowledgements to settle, then a while more.
	waitInbox(t, stack, a, 5+3, 30*time.Second)
	waitInbox(t, stack, b, 5+3, 30*time.Second)
	time.Sleep(4 * time.Second) // sync rounds and sweeps pass: nothing more
	for _, c := range []struct {
		env  *deskEnv
		mb   store.Mailbox
		peer string
	}{{deskA, mbA, b}, {deskB, mbB, a}} {
		got := inbox(t, stack, c.peer)
		var acks int
		for _, m := range got {
			if m.Auto != mailmsg.AutoNone {
				acks++
				if !strings.Contains(m.Subject, "[#") {
					t.Errorf("acknowledgement subject %q names no ticket", m.Subject)
				}
			}
		}
		if len(got) != 5+desk.MaxAcksPerHour || acks != desk.MaxAcksPerHour {
			t.Errorf("%s received %d messages (%d acknowledgements), want 5 emails and %d acknowledgements", c.peer, len(got), acks, desk.MaxAcksPerHour)
		}
		tickets, err := c.env.db.CountTickets(c.env.ctx, store.TicketFilter{})
		if err != nil || tickets != 5 {
			t.Errorf("%s has %d tickets (%v), want 5: acknowledgements must not open tickets", c.mb.Address, tickets, err)
		}
	}
	// The acknowledgement's text is the template, filled in.
	for _, m := range inbox(t, stack, b) {
		if m.Auto != mailmsg.AutoNone && !strings.Contains(m.Text, "We got From B") {
			t.Errorf("acknowledgement text:\n%s", m.Text)
		}
	}
}

// Automatic, bulk and own mail is never acknowledged, nor mail with an
// empty Return-Path, nor mail whose
// Reply-To is in another domain than its sender (nobody vouches for a
// Reply-To: "From: spammer, Reply-To: victim" made us mail the victim);
// a Reply-To in the sender's domain, or a contact form of ours (From our
// support domain), is acknowledged at the Reply-To.
func TestAcknowledgementRules(t *testing.T) {
	stack, idp := newStack(t, false, map[string]string{"help@example.com": "pw"})
	e := newDesk(t, "sqlite", stack, idp)
	mb := e.addMailbox("help@example.com", "", "pw")
	if _, err := e.admin.SetAcknowledgement(e.ctx, mb.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"auto-submitted": "Auto-Submitted: auto-replied\r\n",
		"list":           "List-Id: <news.example.org>\r\nPrecedence: list\r\n",
		"bulk":           "Precedence: bulk\r\n",
		"suppress":       "X-Auto-Response-Suppress: All\r\n",
		"null-path":      "Return-Path: <>\r\n", // a mail system's (RFC 3834 section 2)
		"plain":          "",
	}
	for name, extra := range cases {
		raw := fmt.Sprintf("From: someone-%s@customer.test\r\nTo: help@example.com\r\nSubject: %s\r\nMessage-ID: <%s@customer.test>\r\n%s\r\nhello\r\n", name, name, name, extra)
		if _, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ trace, from, replyTo string }{
		{"", "spammer@evil.test", "victim@victim.test"},           // not acknowledged
		{"", "jane@customer.test", "jane.cooper@customer.test"},   // acknowledged at the Reply-To
		{"", "noreply@example.com", "someone-form@customer.test"}, // our contact form: acknowledged
		// "our contact form" forged (the server's checks failed): not acknowledged
		{"Authentication-Results: mx.example.com; dmarc=fail header.from=example.com\r\n", "noreply@example.com", "victim2@victim.test"},
	} {
		raw := fmt.Sprintf("%sFrom: %s\r\nReply-To: %s\r\nTo: help@example.com\r\nSubject: You won! http://spam.example/claim\r\nMessage-ID: <rt-%s>\r\n\r\nhello\r\n",
			c.trace, c.from, c.replyTo, c.replyTo)
		res, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(raw))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("from %s: %+v %v", c.from, res, err)
		}
	}
	counts, err := e.db.OutboxCounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 3 {
		t.Fatalf("%d acknowledgements queued, want 3 (the plain email, a Reply-To in its sender's domain, our form): %v", total, counts)
	}
	got := waitInbox(t, stack, "someone-plain@customer.test", 1, 10*time.Second)
	if got[0].Auto == mailmsg.AutoNone {
		t.Error("the acknowledgement carries no Auto-Submitted")
	}
	waitInbox(t, stack, "jane.cooper@customer.test", 1, 10*time.Second)
	waitInbox(t, stack, "someone-form@customer.test", 1, 10*time.Second)
	for _, nobody := range []string{"victim@victim.test", "victim2@victim.test", "spammer@evil.test", "jane@customer.test", "noreply@example.com"} {
		if got := inbox(t, stack, nobody); len(got) != 0 {
			t.Errorf("%s got %d emails", nobody, len(got))
		}
	}
}
