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
	"github.com/postdesk/postdesk/internal/fakegraph"
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

// A tenant with SMTP AUTH off: the replies SMTP refused with 535 5.7.139
// are not sent. Switching the mailbox to send through Graph queues them
// again; they wait for the sign-in that grants Mail.Send, then go out
// through sendMail, once each and in order; SMTP never accepted any.
func TestSMTPAuthDisabledThenGraph(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newGraphDesk(t, dialect, supportAddr, customerAddr)
			smtpAddr, accepted := startAuthDisabledSMTP(t)
			host, port := hostPort(t, smtpAddr)
			mb, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: supportAddr, Name: "Example Support", Auth: "microsoft",
				IMAPHost: "127.0.0.1", IMAPPort: 1, IMAPSecurity: "none", SMTPHost: host, SMTPPort: port, SMTPSecurity: "none"})
			if err != nil {
				t.Fatal(err)
			}
			e.signIn(mb)
			res, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(string(customerEmail(customerAddr, supportAddr, "Printer on fire", "q1@customer.test", "", "Hello."))))
			if err != nil {
				t.Fatal(err)
			}
			var replies []store.Message
			for i := range 3 {
				m, err := e.desk.Reply(e.ctx, res.TicketID, e.agent, desk.ReplyInput{Text: fmt.Sprintf("Answer %d.", i)})
				if err != nil {
					t.Fatal(err)
				}
				replies = append(replies, m)
			}
			for _, m := range replies {
				got := e.waitDelivery(m.ID, store.DeliveryFailed, 20*time.Second)
				if got.Delivery.ErrorKind != "auth_disabled" || !strings.Contains(got.Delivery.LastError, "5.7.139") {
					t.Fatalf("reply %d: %+v, want refused with 5.7.139", m.ID, got.Delivery)
				}
			}

			ch, err := e.admin.SetTransports(e.ctx, mb.ID, "", "graph")
			if err != nil {
				t.Fatal(err)
			}
			if !ch.NeedsSignIn || ch.Requeued != 3 || !slices.Contains(ch.Scopes, "https://graph.microsoft.com/Mail.Send") {
				t.Fatalf("switch: %+v, want 3 replies queued again and a sign-in for Mail.Send", ch)
			}
			for _, m := range replies {
				e.waitDelivery(m.ID, store.DeliveryHeld, 10*time.Second)
			}
			e.signIn(mb)
			for _, m := range replies {
				if d := e.waitDelivery(m.ID, store.DeliverySent, 20*time.Second).Delivery; d.Attempts != 2 {
					t.Errorf("reply %d: %d attempts, want 2 (SMTP, then Graph)", m.ID, d.Attempts)
				}
			}
			time.Sleep(300 * time.Millisecond) // nothing more goes out
			out := parseAll(t, e.graph.Sent(supportAddr))
			if len(out) != 3 {
				t.Fatalf("Graph sent %d messages, want 3", len(out))
			}
			for i, m := range replies {
				if out[i].MessageID != m.MessageID {
					t.Errorf("Graph's message %d is %q, want %q (in order, once each)", i, out[i].MessageID, m.MessageID)
				}
			}
			if n := accepted(); n != 0 {
				t.Errorf("SMTP accepted %d messages", n)
			}
		})
	}
}

// Graph's refusals of sendMail take the outbox's paths: an invalid MIME
// fails the reply for good; a throttling storm is retried until it passes;
// a token refused even after a refresh holds the outbox and marks the
// mailbox for re-authentication, and the reply goes out after the sign-in.
// Each reply that is sent is sent once.
func TestGraphSendRefusals(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newGraphDesk(t, dialect, supportAddr, customerAddr)
			mb, err := e.admin.AddMailbox(e.ctx, desk.MailboxSpec{Address: supportAddr, Name: "Example Support", Auth: "microsoft",
				FetchTransport: "graph", SendTransport: "graph"})
			if err != nil {
				t.Fatal(err)
			}
			e.signIn(mb)
			res, err := e.ingest.Ingest(e.ctx, mb, strings.NewReader(string(customerEmail(customerAddr, supportAddr, "Printer on fire", "q1@customer.test", "", "Hello."))))
			if err != nil {
				t.Fatal(err)
			}
			reply := func(text string) store.Message {
				m, err := e.desk.Reply(e.ctx, res.TicketID, e.agent, desk.ReplyInput{Text: text})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}

			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpSend, Status: 400, Code: "ErrorMimeContentInvalidBase64String"})
			bad := e.waitDelivery(reply("One.").ID, store.DeliveryFailed, 20*time.Second)
			if bad.Delivery.ErrorKind != "permanent" {
				t.Errorf("invalid MIME: %+v, want failed for good", bad.Delivery)
			}

			e.graph.Throttle(supportAddr, fakegraph.OpSend, 8, "")
			slow := e.waitDelivery(reply("Two.").ID, store.DeliverySent, 30*time.Second)
			if slow.Delivery.Attempts < 2 {
				t.Errorf("throttled: %+v, want sent after a retry", slow.Delivery)
			}

			e.graph.RejectToken(supportAddr, fakegraph.OpSend, 2)
			refused := reply("Three.")
			e.waitDelivery(refused.ID, store.DeliveryHeld, 20*time.Second)
			if a, err := e.db.MailboxAuth(e.ctx, mb.ID); err != nil || a.State != store.AuthNeedsReauth {
				t.Fatalf("after Graph refused a fresh token: %s %v, want needs_reauth", a.State, err)
			}
			e.signIn(mb)
			e.waitDelivery(refused.ID, store.DeliverySent, 20*time.Second)

			// A gateway timeout: the message may have gone. It is looked for
			// in Sent Items by its Message-ID; not there, so its fate is
			// unknown and it is not sent again by itself.
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpSend, Status: 504, Code: "GatewayTimeout"})
			lost := e.waitDelivery(reply("Four.").ID, store.DeliveryUnknown, 20*time.Second)
			if lost.Delivery.Attempts != 1 {
				t.Errorf("outcome unknown: %+v", lost.Delivery)
			}

			// The same, but Microsoft files the message in Sent Items a
			// second later, as it does: a later look finds it, and it is
			// recorded sent, with no note asking an agent to send it again.
			e.graph.Fail(fakegraph.Fault{User: supportAddr, Op: fakegraph.OpSend, Status: 504, Code: "GatewayTimeout"})
			late := reply("Five.")
			time.Sleep(time.Second)
			e.graph.Deliver(supportAddr, "sentitems", []byte("From: "+supportAddr+"\r\nTo: "+customerAddr+"\r\nSubject: Re: Printer on fire\r\n"+
				"Message-ID: <"+late.MessageID+">\r\nDate: "+time.Now().Format(time.RFC1123Z)+"\r\n\r\nFive.\r\n"))
			filed := e.waitDelivery(late.ID, store.DeliverySent, 20*time.Second)
			if filed.Delivery.Attempts != 1 {
				t.Errorf("found in Sent Items on a later look: %+v", filed.Delivery)
			}
			notes, err := e.db.TicketNotes(e.ctx, res.TicketID)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range notes {
				if strings.Contains(n.Body, late.MessageID) {
					t.Errorf("a note names the reply found in Sent Items: %s", n.Body)
				}
			}

			time.Sleep(300 * time.Millisecond)
			out := parseAll(t, e.graph.Sent(supportAddr))
			if len(out) != 2 || out[0].MessageID != slow.MessageID || out[1].MessageID != refused.MessageID {
				ids := make([]string, len(out))
				for i, m := range out {
					ids[i] = m.MessageID
				}
				t.Errorf("Graph sent %v, want [%s %s]", ids, slow.MessageID, refused.MessageID)
			}
		})
	}
}
