package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// metricValue reads one sample (name with its labels, as exposed) from a
// /metrics page; -1 when absent.
func metricValue(body, sample string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// outcomeLines are serve's per-message outcome log lines (JSON).
func outcomeLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if rec["msg"] == "ingested message" {
			out = append(out, rec)
		}
	}
	return out
}

func syncMail(i int, messageID, inReplyTo string) []byte {
	var reply string
	if inReplyTo != "" {
		reply = "In-Reply-To: <" + inReplyTo + ">\r\n"
	}
	return []byte(fmt.Sprintf("From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\nSubject: Parcel %d\r\n"+
		"Date: %s\r\nMessage-ID: <%s>\r\n%s\r\nSecret body words %d.\r\n", i, i, i, time.Now().Format(time.RFC1123Z), messageID, reply, i))
}

// Mail fetched by `serve` from a real Dovecot is counted in /metrics
// (postdesk_messages_ingested_total by outcome, postdesk_tickets_created_total)
// and each fetched message has exactly one outcome log line, without its body.
func TestServeCountsFetchedMail(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Dovecot")
	}
	const (
		address = "support@example.com"
		secret  = "sync-metrics-password"
		token   = "metrics-token-for-sync-tests"
	)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{address: secret}})
			vars := dialectEnv(t, dialect)
			vars["POSTDESK_LOG_LEVEL"], vars["POSTDESK_LOG_FORMAT"], vars["POSTDESK_METRICS_TOKEN"] = "info", "json", token
			host, port, _ := strings.Cut(stack.IMAPAddr, ":")
			if out, stderr, err := cli(t, vars, secret+"\n", "mailbox", "add", "--address", address, "--auth", "password",
				"--imap-host", host, "--imap-port", port, "--imap-security", "none", "--password-stdin"); err != nil {
				t.Fatalf("mailbox add: %v\n%s%s", err, out, stderr)
			}
			ctx := t.Context()
			deliver := func(raw []byte) {
				t.Helper()
				if err := stack.Deliver(ctx, address, raw); err != nil {
					t.Fatal(err)
				}
			}
			// Before serve starts: 4 new tickets, a reply to the first, and
			// the second delivered twice (a duplicate).
			for i := range 4 {
				deliver(syncMail(i, fmt.Sprintf("m%d@customer.example", i), ""))
			}
			deliver(syncMail(10, "reply@customer.example", "m0@customer.example"))
			deliver(syncMail(1, "m1@customer.example", ""))

			addr, logs := serveInProcessLogs(t, vars)
			url := "http://" + addr + "/metrics"
			want := map[string]float64{
				`postdesk_messages_ingested_total{outcome="new_ticket"}`: 4,
				`postdesk_messages_ingested_total{outcome="joined"}`:     1,
				`postdesk_messages_ingested_total{outcome="duplicate"}`:  1,
				`postdesk_tickets_created_total`:                         4,
			}
			waitMetrics(t, url, token, want, logs)
			// One more while serve runs (IDLE).
			deliver(syncMail(20, "m20@customer.example", ""))
			want[`postdesk_messages_ingested_total{outcome="new_ticket"}`] = 5
			want[`postdesk_tickets_created_total`] = 5
			body := waitMetrics(t, url, token, want, logs)
			if v := metricValue(body, `postdesk_mailbox_messages_fetched_total{mailbox="support@example.com"}`); v != 7 {
				t.Errorf("postdesk_mailbox_messages_fetched_total = %v, want 7", v)
			}

			lines := outcomeLines(t, logs.String())
			if len(lines) != 7 {
				t.Fatalf("%d outcome log lines for 7 fetched messages:\n%s", len(lines), logs.String())
			}
			outcomes := map[string]int{}
			tickets := map[float64]bool{}
			for _, l := range lines {
				if l["mailbox_id"] != float64(1) || l["ticket_id"] == nil || l["ticket_id"] == float64(0) {
					t.Errorf("outcome line without its mailbox or ticket: %v", l)
				}
				outcomes[fmt.Sprint(l["outcome"])]++
				tickets[l["ticket_id"].(float64)] = true
			}
			if outcomes["new_ticket"] != 5 || outcomes["joined"] != 1 || outcomes["duplicate"] != 1 || len(tickets) != 5 {
				t.Errorf("outcomes %v over %d tickets, want 5 new, 1 joined, 1 duplicate over 5 tickets", outcomes, len(tickets))
			}
			if strings.Contains(logs.String(), "Secret body words") {
				t.Error("a message body reached the log")
			}
		})
	}
}

// waitMetrics waits until /metrics shows every wanted sample; a sample
// above its wanted value fails at once (counted twice).
func waitMetrics(t *testing.T, url, token string, want map[string]float64, logs *logtest.Buffer) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body := getMetrics(t, url, token)
		done := status == 200
		for sample, v := range want {
			got := metricValue(body, sample)
			if got > v {
				t.Fatalf("%s = %v, want %v", sample, got, v)
			}
			done = done && got == v
		}
		if done {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s /metrics (%d) does not show %v:\n%s\nlog:\n%s", status, want, grepPostdesk(body), logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func grepPostdesk(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "postdesk_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
