package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// dialectVars is dialectEnv as procEnv's settings (at procEnv's log
// level), with extra.
func dialectVars(t *testing.T, dialect string, extra ...string) []string {
	for k, v := range dialectEnv(t, dialect) {
		if k != "POSTDESK_LOG_LEVEL" {
			extra = append(extra, k+"="+v)
		}
	}
	return extra
}

// threadMail is message i of thread k: the first opens a ticket, the
// others answer it; each carries a word of its own.
func threadMail(k, i int, word string) []byte {
	var reply string
	if i > 0 {
		reply = fmt.Sprintf("In-Reply-To: <t%d-0@customer.example>\r\nReferences: <t%d-0@customer.example>\r\n", k, k)
	}
	return []byte(fmt.Sprintf("From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\nSubject: Order %d\r\n"+
		"Date: %s\r\nMessage-ID: <t%d-%d@customer.example>\r\n%s\r\nAbout my order, see %s.\r\n",
		k, k, k, time.Now().Format(time.RFC1123Z), k, i, reply, word))
}

// A mailbox's backlog fetched by `serve` from a real Dovecot in batches
// becomes searchable through the API: on SQLite the tickets that the fetch
// created or grew are built by the background indexer once the fetch
// pauses (store.Tx.BulkLoad), and postdesk_search_backlog_tickets falls
// back to 0; on PostgreSQL they are written at once. Every word of every message
// finds its own ticket and no other.
func TestServeBulkFetchIsSearchable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Dovecot")
	}
	const (
		address  = "support@example.com"
		password = "pw-bulk-search"
		token    = "metrics-token-for-bulk-search"
		threads  = 4
		each     = 10
		fillers  = 60
		total    = threads*each + fillers
	)
	bin := buildPostdesk(t)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{address: password}})
			p := newProcEnv(t, bin, dialectVars(t, dialect, "POSTDESK_METRICS_TOKEN="+token)...)
			p.addPasswordMailbox(stack, address, password)
			// The first batch (64 messages) opens the threads' tickets and
			// 60 others; the second, 36 answers, grows the threads'.
			words := map[string]int{} // word -> thread
			deliver := func(k, i int) {
				t.Helper()
				word := fmt.Sprintf("zq%c%c%c", 'a'+k/26, 'a'+k%26, 'a'+i)
				words[word] = k
				if err := stack.Deliver(context.Background(), address, threadMail(k, i, word)); err != nil {
					t.Fatal(err)
				}
			}
			for k := range threads + fillers {
				deliver(k, 0)
			}
			for i := 1; i < each; i++ {
				for k := range threads {
					deliver(k, i)
				}
			}
			p.run("", "user", "add", "--email", "ada@example.com", "--role", "admin")
			key := strings.TrimSpace(p.run("", "apikey", "create", "--user", "ada@example.com"))
			s := p.serve("serve")
			base := waitListening(t, p, s)
			metrics := func() string {
				status, body := getMetrics(t, base+"/metrics", token)
				if status != 200 {
					t.Fatalf("/metrics: %d", status)
				}
				return body
			}
			// found is the subjects of the tickets a search finds.
			found := func(word string) []string {
				var list struct {
					Tickets []struct {
						Subject string `json:"subject"`
					} `json:"tickets"`
				}
				if err := json.Unmarshal(apiGet(t, base, key, "/api/v1/tickets?q="+url.QueryEscape(word)), &list); err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, tk := range list.Tickets {
					out = append(out, tk.Subject)
				}
				return out
			}
			deadline := time.Now().Add(90 * time.Second)
			for metricValue(metrics(), `postdesk_mailbox_messages_fetched_total{mailbox="support@example.com"}`) < total {
				if time.Now().After(deadline) {
					t.Fatalf("not all %d messages fetched in 90 s:\n%s", total, p.logTail("serve", 30))
				}
				time.Sleep(100 * time.Millisecond)
			}
			for metricValue(metrics(), "postdesk_search_backlog_tickets") != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the search backlog is not empty 90 s on:\n%s", p.logTail("serve", 30))
				}
				time.Sleep(100 * time.Millisecond)
			}
			for word, k := range words {
				if got, want := found(word), fmt.Sprintf("Order %d", k); len(got) != 1 || got[0] != want {
					t.Errorf("search %q found %v, want [%s]", word, got, want)
				}
			}
			logs := p.logTail("serve", 1000)
			bulk := strings.Contains(logs, "building the search documents of tickets a bulk load created or grew")
			if bulk != (dialect == "sqlite") {
				t.Errorf("background indexer after the bulk fetch: %v, want it on SQLite only:\n%s", bulk, logs)
			}
		})
	}
}
