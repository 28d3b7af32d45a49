package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/store"
)

// The demo's replies: written through the API the demo serves, sent by
// serve's outbox sender to the demo's SMTP side, delivered to the
// customer's mailbox there, and answered by the sample customer, whose
// answer Postdesk fetches onto the same ticket.

// apiReply writes a reply on a ticket through POST /api/v1/tickets/{id}/replies
// as the demo's agent and returns its Message-ID.
func apiReply(t *testing.T, run *demoRun, ticketID int64, text string) string {
	t.Helper()
	ctx := context.Background()
	agent, err := run.app.db.UserByEmail(ctx, run.env.Domain.Agent)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := auth.New(run.app.db, time.Hour).CreateAPIKey(ctx, agent.ID, "demo test")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"text": text, "status": "pending"})
	req, _ := http.NewRequest(http.MethodPost, run.baseURL+"/api/v1/tickets/"+strconv.FormatInt(ticketID, 10)+"/replies", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		MessageID string `json:"message_id"`
		Delivery  struct {
			State string `json:"state"`
		} `json:"delivery"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusAccepted || got.MessageID == "" {
		t.Fatalf("POST replies: %d %+v %v", resp.StatusCode, got, err)
	}
	return got.MessageID
}

// waitInbox waits until address's INBOX on the demo's mail server has the
// message with Message-ID id, and returns it.
func waitInbox(t *testing.T, run *demoRun, address, id string, within time.Duration) *mail.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, raw := range run.env.Mail.Messages(address, "INBOX") {
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err == nil && m.Header.Get("Message-ID") == "<"+id+">" {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, <%s> is not in %s's INBOX on the demo's mail server", within, id, address)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countInbox counts the messages with Message-ID id in address's INBOX on
// the demo's mail server.
func countInbox(run *demoRun, address, id string) int {
	n := 0
	for _, raw := range run.env.Mail.Messages(address, "INBOX") {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err == nil && m.Header.Get("Message-ID") == "<"+id+">" {
			n++
		}
	}
	return n
}

// messagesOf lists a ticket's messages.
func messagesOf(t *testing.T, db *store.DB, ticketID int64) []store.Message {
	t.Helper()
	msgs, err := db.TicketMessages(context.Background(), ticketID)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// ticketMessage finds a ticket's message by its Message-ID.
func ticketMessage(t *testing.T, db *store.DB, ticketID int64, id string) (store.Message, bool) {
	t.Helper()
	msgs, err := db.TicketMessages(context.Background(), ticketID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.MessageID == id {
			return m, true
		}
	}
	return store.Message{}, false
}

// waitSent waits until the reply with Message-ID id on a ticket is sent.
func waitSent(t *testing.T, db *store.DB, ticketID int64, id string, within time.Duration) store.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m, ok := ticketMessage(t, db, ticketID, id)
		if ok && m.Delivery != nil && m.Delivery.State == store.DeliverySent {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, reply <%s> on ticket %d is %+v", within, id, ticketID, m.Delivery)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAnswer waits until the customer's answer to the reply with
// Message-ID id joins the ticket, and returns it.
func waitAnswer(t *testing.T, db *store.DB, ticketID int64, id string, within time.Duration) store.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msgs, err := db.TicketMessages(context.Background(), ticketID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Direction == "in" && m.InReplyTo == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, no answer to <%s> on ticket %d (%d messages)", within, id, ticketID, len(msgs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkReplyAnswered follows a reply from the API to the customer's mailbox
// and back: delivered to the customer once, with the mailbox as sender,
// and answered on the same ticket.
func checkReplyAnswered(t *testing.T, run *demoRun, tk store.Ticket, customer string) {
	t.Helper()
	db := run.app.db
	id := apiReply(t, run, tk.ID, "Hi Jane,\n\nWe reset your session on our side: please try signing in again.\n\nMaria")
	got := waitInbox(t, run, customer, id, 20*time.Second)
	if from := got.Header.Get("From"); !strings.Contains(from, "<"+run.env.Domain.Support+">") {
		t.Errorf("delivered reply is from %q", from)
	}
	sent := waitSent(t, db, tk.ID, id, 10*time.Second)
	if sent.Delivery.Attempts != 1 {
		t.Errorf("the reply took %d attempts", sent.Delivery.Attempts)
	}
	answer := waitAnswer(t, db, tk.ID, id, 30*time.Second)
	if answer.FromAddress != customer || !strings.HasPrefix(answer.Subject, "Re: ") {
		t.Errorf("answer from %s, subject %q", answer.FromAddress, answer.Subject)
	}
	if n := countInbox(run, customer, id); n != 1 {
		t.Errorf("the reply reached %s %d times", customer, n)
	}
}

// heldReply finds the sales@ ticket's reply, which must be held and not
// delivered.
func heldReply(t *testing.T, run *demoRun, tk store.Ticket, customer string) store.Message {
	t.Helper()
	m, err := run.app.db.Message(context.Background(), run.prov.HeldReply)
	if err != nil {
		t.Fatal(err)
	}
	if m.TicketID != tk.ID || m.Delivery == nil || m.Delivery.State != store.DeliveryHeld || m.AuthorUserID == 0 {
		t.Errorf("sales@'s reply: ticket %d (want %d), delivery %+v, author %d", m.TicketID, tk.ID, m.Delivery, m.AuthorUserID)
	}
	if n := len(run.env.Mail.Messages(customer, "INBOX")); n != 0 {
		t.Errorf("%d messages reached %s while sales@ needs re-authentication", n, customer)
	}
	return m
}

// runDemoOnce runs the demo on dataDir until check (called once it is
// provisioned, before it serves) returns, then stops it.
func runDemoOnce(t *testing.T, dataDir string, check func(*demoRun)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr logtest.Buffer
	e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	go func() {
		done <- runDemoWith(ctx, e, demoOptions{listen: "127.0.0.1:0", dataDir: dataDir,
			ready: func(r *demoRun) { check(r); cancel() }})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo on %s: %v\n%s", dataDir, err, tail(stderr.String(), 20))
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("demo on %s did not start and stop within 120 s\n%s", dataDir, tail(stderr.String(), 20))
	}
}

// TestDemoKeptDataFolder runs the demo twice on one data folder: the
// second run points the mailboxes at its own mail server and keeps what
// the admin changed, and sales@'s earlier email and held reply are not
// written again.
func TestDemoKeptDataFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	var held int64
	runDemoOnce(t, dir, func(run *demoRun) {
		held = run.prov.HeldReply
		if held == 0 {
			t.Error("no held reply on the first run")
		}
		err := run.app.db.Write(ctx, func(tx *store.Tx) error {
			return tx.SetMailboxSignature(ctx, run.prov.Mailboxes[run.env.Domain.Support], "Maria's own signature")
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	runDemoOnce(t, dir, func(run *demoRun) {
		db := run.app.db
		d := run.env.Domain
		if run.prov.HeldReply != held {
			t.Errorf("held reply %d on the second run, want the first run's %d", run.prov.HeldReply, held)
		}
		upgrade := ticketsBySubject(t, db)["Upgrading to the Business plan"]
		if msgs := messagesOf(t, db, upgrade.ID); len(msgs) != 2 || msgs[1].ID != held {
			t.Errorf("sales@'s ticket has %d messages on the second run, want the email and its held reply", len(msgs))
		}
		mb, err := db.Mailbox(ctx, run.prov.Mailboxes[d.Support])
		if err != nil || mb.Signature != "Maria's own signature" || mb.Name != "Acme Support" {
			t.Errorf("support@ after the second run: %+v %v", mb, err)
		}
		for _, address := range d.Mailboxes() {
			srv, err := db.MailboxServer(ctx, run.prov.Mailboxes[address])
			if err != nil || srv.SMTPHost != run.env.MailHost || srv.SMTPPort != run.env.SMTPPort || srv.IMAPPort != run.env.MailPort || srv.SaveSent {
				t.Errorf("%s servers on the second run: %+v %v (mail server %s:%d/%d)", address, srv, err,
					run.env.MailHost, run.env.MailPort, run.env.SMTPPort)
			}
		}
	})
}
