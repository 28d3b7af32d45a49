package jobs_test

import (
	"bytes"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A Microsoft mailbox switched to Graph: the switch asks for a sign-in
// with Graph's scopes (and a second switch to the same transports does
// not); mail is fetched through delta into a ticket; the acknowledgement
// and the agent's reply go out through sendMail with our Message-ID and
// threading headers, filed in Sent Items by Graph (no IMAP copy); the
// customer's answer joins the ticket.
func TestGraphMailboxFetchesRepliesAndAnswerJoins(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newGraphDesk(t, dialect, supportAddr, customerAddr)
			mb, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: supportAddr, Name: "Example Support", Auth: "microsoft",
				AckEnabled: true})
			if err != nil {
				t.Fatal(err)
			}
			e.signIn(mb) // IMAP and SMTP first, the default
			ch, err := e.admin.SetTransports(e.ctx, mb.ID, "graph", "graph")
			if err != nil {
				t.Fatal(err)
			}
			const readWrite, send = "https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send"
			if !ch.NeedsSignIn || !slices.Contains(ch.Scopes, readWrite) || !slices.Contains(ch.Scopes, send) {
				t.Fatalf("switch to Graph: %+v, want a sign-in asking for Graph's scopes", ch)
			}
			granted := e.signIn(mb)
			if !slices.Contains(granted, readWrite) || !slices.Contains(granted, send) || !slices.Contains(granted, "offline_access") {
				t.Fatalf("the sign-in asked for %v", granted)
			}
			if ch, err := e.admin.SetTransports(e.ctx, mb.ID, "graph", "graph"); err != nil || ch.NeedsSignIn {
				t.Fatalf("the same transports again: %+v %v, want no new sign-in", ch, err)
			}
			if ch, err := e.admin.SetTransports(e.ctx, mb.ID, "graph", "graph"); err != nil || ch.NeedsSignIn {
				t.Fatalf("%+v %v", ch, err)
			}

			e.sync()
			e.graph.Deliver(supportAddr, "inbox", customerEmail(customerAddr, supportAddr, "Printer on fire", "q1@customer.test", "", "Hello, it is broken."))
			ticket := e.waitTicket(mb, "q1@customer.test", 20*time.Second)

			m, err := e.desk.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: "Please unplug it.", Status: store.StatusPending})
			if err != nil {
				t.Fatal(err)
			}
			sent := e.waitDelivery(m.ID, store.DeliverySent, 20*time.Second)
			if sent.Delivery.Attempts != 1 {
				t.Errorf("delivery = %+v", sent.Delivery)
			}
			// What Graph got: the acknowledgement, then the reply, as composed.
			deadline := time.Now().Add(10 * time.Second)
			for len(e.graph.Sent(supportAddr)) < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			out := parseAll(t, e.graph.Sent(supportAddr))
			if len(out) != 2 {
				t.Fatalf("Graph sent %d messages, want the acknowledgement and the reply", len(out))
			}
			r := out[1]
			if r.MessageID != m.MessageID || len(r.InReplyTo) != 1 || r.InReplyTo[0] != "q1@customer.test" ||
				strings.Join(r.References, " ") != "q1@customer.test" || r.Subject != fmt.Sprintf("Re: Printer on fire [#%d]", ticket) ||
				len(r.From) != 1 || r.From[0].Address != supportAddr || !strings.Contains(r.Text, "Please unplug it.") {
				t.Errorf("sent: id %q irt %v refs %v subject %q from %v\n%s", r.MessageID, r.InReplyTo, r.References, r.Subject, r.From, r.Text)
			}
			// Loop protection: our acknowledgement carries Auto-Submitted;
			// the copy Graph filed in Sent Items (and the one it delivered)
			// lost it, as Graph is reported to do: matching on Message-ID
			// is what recognises our own mail (docs/graph.md).
			ack := out[0]
			if ack.Auto == "" || autoSubmitted(t, e.graph.Sent(supportAddr)[0]) == "" {
				t.Errorf("the acknowledgement went out without Auto-Submitted (%q)", ack.Auto)
			}
			for _, folder := range []struct{ user, name string }{{supportAddr, "sentitems"}, {customerAddr, "inbox"}} {
				msgs := e.graph.Messages(folder.user, folder.name)
				if len(msgs) != 2 {
					t.Fatalf("%s %s holds %d messages, want 2", folder.user, folder.name, len(msgs))
				}
				if msgs[0].MessageID != "<"+ack.MessageID+">" && msgs[0].MessageID != ack.MessageID {
					t.Errorf("%s %s: first is %q, want the acknowledgement %q", folder.user, folder.name, msgs[0].MessageID, ack.MessageID)
				}
				if v := autoSubmitted(t, msgs[0].Raw); v != "" {
					t.Logf("%s %s kept Auto-Submitted: %q (Graph strips it; the stand-in changed?)", folder.user, folder.name, v)
				} else {
					t.Logf("%s %s: Auto-Submitted stripped, Message-ID kept", folder.user, folder.name)
				}
			}
			// Graph filed the copy itself: nothing waits for an IMAP append.
			if pending, err := e.db.PendingCopies(e.ctx, mb.ID, 0, time.Now().Add(time.Hour), 10); err != nil || len(pending) != 0 {
				t.Errorf("copies pending for Sent: %d %v", len(pending), err)
			}

			// The customer answers the reply; delta brings it into the ticket.
			answer := customerEmail(customerAddr, supportAddr, "Re: "+r.Subject, "a1@customer.test", m.MessageID, "Unplugged, thanks.")
			e.graph.Deliver(supportAddr, "inbox", answer)
			if got := e.waitTicket(mb, "a1@customer.test", 20*time.Second); got != ticket {
				t.Fatalf("the answer is on ticket %d, want %d", got, ticket)
			}
			msgs, err := e.db.TicketMessages(e.ctx, ticket)
			if err != nil {
				t.Fatal(err)
			}
			var in, outN int
			for _, m := range msgs {
				if m.Direction == "in" {
					in++
				} else {
					outN++
				}
			}
			if in != 2 || outN != 2 {
				t.Errorf("ticket %d: %d in, %d out; want 2 and 2 (question, answer; acknowledgement, reply)", ticket, in, outN)
			}
			if tk, _ := e.db.Ticket(e.ctx, ticket); tk.Status != store.StatusOpen {
				t.Errorf("status after the customer's answer = %s, want open", tk.Status)
			}
			if n := e.graph.MaxInFlightSeen(supportAddr); n > 4 {
				t.Errorf("%d requests in flight for the mailbox", n)
			}
		})
	}
}

// autoSubmitted returns a raw message's Auto-Submitted header.
func autoSubmitted(t testing.TB, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("Auto-Submitted")
}
