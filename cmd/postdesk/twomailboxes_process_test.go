package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// One customer email to two of our addresses (To support@, Cc sales@),
// delivered by the mail server to both mailboxes, is one ticket through
// the API, support@'s, whichever mailbox `serve` fetches first; her
// answer to all joins it once.
func TestServeOneEmailToTwoMailboxes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Dovecot")
	}
	users := map[string]string{"support@example.com": "pw-support", "sales@example.com": "pw-sales"}
	const token = "metrics-token-for-two-mailboxes"
	bin := buildPostdesk(t)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack := mailtest.Start(t, mailtest.Options{PasswordUsers: users})
			p := newProcEnv(t, bin, dialectVars(t, dialect, "POSTDESK_METRICS_TOKEN="+token)...)
			// With sending settings: a mailbox that cannot answer never
			// owns a ticket (nothing is sent here).
			host, port, _ := strings.Cut(stack.IMAPAddr, ":")
			for address, password := range users {
				p.run(password+"\n", "mailbox", "add", "--address", address, "--auth", "password", "--imap-host", host, "--imap-port", port,
					"--imap-security", "none", "--smtp-host", host, "--smtp-port", "2525", "--smtp-security", "none", "--password-stdin")
			}
			p.run("", "user", "add", "--email", "ada@example.com", "--role", "admin")
			key := strings.TrimSpace(p.run("", "apikey", "create", "--user", "ada@example.com"))
			s := p.serve("serve")
			base := waitListening(t, p, s)
			// The email, then her answer to all naming it, each delivered
			// to both mailboxes.
			raw := []byte("From: Ann <ann@customer.test>\r\nTo: support@example.com\r\nCc: sales@example.com\r\nSubject: Quote for 10 licences\r\n" +
				"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <quote-1@customer.test>\r\n\r\nHow much for 10?\r\n")
			again := []byte("From: Ann <ann@customer.test>\r\nTo: support@example.com\r\nCc: sales@example.com\r\nSubject: Re: Quote for 10 licences\r\n" +
				"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <quote-2@customer.test>\r\nIn-Reply-To: <quote-1@customer.test>\r\n\r\nAnd for 20?\r\n")
			for _, m := range [][]byte{raw, again} {
				// sales@ first: most often it fetches first, and the ticket
				// must still be support@'s.
				for _, address := range []string{"sales@example.com", "support@example.com"} {
					if err := stack.Deliver(context.Background(), address, m); err != nil {
						t.Fatal(err)
					}
				}
			}
			var list struct {
				Tickets []struct {
					ID      int64  `json:"id"`
					Subject string `json:"subject"`
					Mailbox struct {
						Address string `json:"address"`
					} `json:"mailbox"`
				} `json:"tickets"`
			}
			// Both mailboxes have fetched it once the sync counts two.
			deadline := time.Now().Add(60 * time.Second)
			for {
				got := 0
				_, body := getMetrics(t, base+"/metrics", token)
				for address := range users {
					got += int(max(0, metricValue(body, `postdesk_mailbox_messages_fetched_total{mailbox="`+address+`"}`)))
				}
				if got >= 4 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("both mailboxes did not fetch both emails in 60 s:\n%s", p.logTail("serve", 30))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := json.Unmarshal(apiGet(t, base, key, "/api/v1/tickets"), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Tickets) != 1 || list.Tickets[0].Subject != "Quote for 10 licences" || list.Tickets[0].Mailbox.Address != "support@example.com" {
				t.Fatalf("tickets through the API: %+v, want the one, support@'s (it is addressed To support@)", list.Tickets)
			}
			var ticket struct {
				Messages []struct {
					Text string `json:"text"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(apiGet(t, base, key, fmt.Sprintf("/api/v1/tickets/%d", list.Tickets[0].ID)), &ticket); err != nil {
				t.Fatal(err)
			}
			if len(ticket.Messages) != 2 {
				t.Errorf("the ticket shows %d messages, want the email and her answer once each: %+v", len(ticket.Messages), ticket.Messages)
			}
		})
	}
}
