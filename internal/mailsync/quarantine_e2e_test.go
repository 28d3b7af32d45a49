package mailsync_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests deliver hostile mail to a real Dovecot and sync it into both
// databases: no message may block the mailbox. Each one is stored or
// quarantined (source kept, a notice), the checkpoint passes them all, the
// next normal email becomes a ticket within seconds, and the sync is not
// left in an error state.

// runWithMetrics starts a Syncer whose ingest counts into reg.
func (e *syncEnv) runWithMetrics(owner string, reg prometheus.Registerer) *ingest.Ingester {
	e.t.Helper()
	in := ingest.New(e.db, ingest.Options{Metrics: ingest.NewMetrics(reg)})
	s, err := mailsync.New(mailsync.Options{DB: e.db, Ingest: in, OAuth: e.oauth, Owner: owner, Round: 200 * time.Millisecond,
		Tune: func(cfg *imapsync.Config) { cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, time.Second }})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	return in
}

func normalEmail(name string) []byte {
	return []byte("From: Customer <customer@customer.example>\r\nTo: " + supportAddr + "\r\nSubject: Normal " + name + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <normal-" + name + "@customer.example>\r\n\r\nHello (" + name + ").\r\n")
}

// settled waits until the checkpoint has passed n messages and every one
// of them is stored or quarantined, and returns the quarantine rows.
func (e *syncEnv) settled(n int, within time.Duration) []store.Quarantined {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		cp, _ := mailsync.IMAPCheckpoint(e.ctx, e.db, e.mb.ID, "INBOX")
		stored, _ := e.db.CountMessages(e.ctx, e.mb.ID)
		q, err := e.db.QuarantinedMessages(e.ctx, store.QuarantineFilter{MailboxID: e.mb.ID, Limit: 1000})
		if err != nil {
			e.t.Fatal(err)
		}
		if int(cp.LastUID) >= n {
			if stored+len(q) != n {
				e.t.Fatalf("checkpoint at UID %d but %d stored + %d quarantined, want %d: a message was passed without either",
					cp.LastUID, stored, len(q), n)
			}
			return q
		}
		if time.Now().After(deadline) {
			st, _ := e.db.SyncStatus(e.ctx, e.mb.ID)
			e.t.Fatalf("after %s: checkpoint at UID %d of %d, %d stored, %d quarantined (sync %+v)", within, cp.LastUID, n, stored, len(q), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkQuarantined checks that each quarantined message has its source
// and that one notice counts them.
func (e *syncEnv) checkQuarantined(q []store.Quarantined) {
	e.t.Helper()
	for _, row := range q {
		f, err := e.db.Blobs().Open(context.Background(), row.RawSHA256)
		if err != nil {
			e.t.Fatalf("source of quarantined UID %d: %v", row.UID, err)
		}
		n, _ := io.Copy(io.Discard, f)
		f.Close()
		if n != row.RawSize || row.Error == "" || row.Origin != store.OriginSync || row.UID == 0 {
			e.t.Errorf("quarantine row %+v (source %d bytes)", row, n)
		}
	}
	notices, err := e.db.Notices(e.ctx, store.NoticeFilter{MailboxID: e.mb.ID, UnreadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	var quarantineNotices []store.Notice
	for _, n := range notices {
		if n.Kind == store.NoticeQuarantined {
			quarantineNotices = append(quarantineNotices, n)
		}
	}
	switch {
	case len(q) == 0 && len(quarantineNotices) != 0:
		e.t.Errorf("quarantine notice without a quarantined email: %+v", quarantineNotices)
	case len(q) == 1 && (len(quarantineNotices) != 1 || !strings.Contains(quarantineNotices[0].Message, "1 email could not be stored: ")):
		e.t.Errorf("notices = %+v; want one saying 1 email could not be stored", quarantineNotices)
	case len(q) > 1 && (len(quarantineNotices) != 1 || !strings.Contains(quarantineNotices[0].Message, fmt.Sprintf("%d emails could not be stored", len(q)))):
		e.t.Errorf("notices = %+v; want one counting %d emails", quarantineNotices, len(q))
	}
}

// lastBecomesTicket delivers one more normal email and waits for its ticket.
func (e *syncEnv) lastBecomesTicket(name string, within time.Duration) time.Duration {
	e.t.Helper()
	before, _ := e.db.CountTickets(e.ctx, store.TicketFilter{})
	start := time.Now()
	if err := e.stack.Deliver(e.ctx, supportAddr, normalEmail(name)); err != nil {
		e.t.Fatal(err)
	}
	for {
		tickets, err := e.db.Tickets(e.ctx, store.TicketFilter{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, tk := range tickets {
			if tk.Subject == "Normal "+name {
				if len(tickets) != before+1 {
					e.t.Errorf("%d tickets, want %d", len(tickets), before+1)
				}
				return time.Since(start)
			}
		}
		if time.Since(start) > within {
			st, _ := e.db.SyncStatus(e.ctx, e.mb.ID)
			e.t.Fatalf("the last normal email is not a ticket after %s (sync %+v)", within, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// storedWithProblem counts the stored messages with a Problem that
// contains words.
func (e *syncEnv) storedWithProblem(words string) int {
	e.t.Helper()
	tickets, err := e.db.Tickets(e.ctx, store.TicketFilter{Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, tk := range tickets {
		msgs, err := e.db.TicketMessages(e.ctx, tk.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range msgs {
			for _, p := range m.Problems {
				if strings.Contains(p, words) {
					n++
					break
				}
			}
		}
	}
	return n
}

func (e *syncEnv) checkNotFailing() {
	e.t.Helper()
	st, err := e.db.SyncStatus(e.ctx, e.mb.ID)
	if err != nil || st.State == "error" {
		e.t.Fatalf("sync status %+v, %v: want not error", st, err)
	}
}

// A normal, a poisoned (refused by the database) and a normal email, then
// one more normal one later: the poisoned one is quarantined with its
// source and a notice, the others become tickets, and after the fix a
// retry stores it.
func TestSyncPoisonedEmailIsQuarantined(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newSyncEnv(t, dialect)
			drop := storetest.PoisonTrigger(t, e.db)
			reg := prometheus.NewRegistry()
			in := e.runWithMetrics("p1", reg)
			poison := []byte("From: Mallory <mallory@customer.example>\r\nTo: " + supportAddr + "\r\nSubject: a poison email\r\n" +
				"Message-ID: <poison@customer.example>\r\n\r\nThis one the database refuses.\r\n")
			for _, raw := range [][]byte{normalEmail("1"), poison, normalEmail("2")} {
				if err := e.stack.Deliver(e.ctx, supportAddr, raw); err != nil {
					t.Fatal(err)
				}
			}
			q := e.settled(3, time.Minute)
			if len(q) != 1 || q[0].UID != 2 || !strings.Contains(q[0].Error, "poison") {
				t.Fatalf("quarantined = %+v; want UID 2, refused", q)
			}
			e.checkQuarantined(q)
			latency := e.lastBecomesTicket("3", 10*time.Second)
			t.Logf("%s: the normal email after a quarantined one became a ticket %s after delivery", dialect, latency)
			e.checkNotFailing()
			if got := gatheredValue(t, reg, "postdesk_messages_quarantined_total"); got != 1 {
				t.Errorf("postdesk_messages_quarantined_total = %v, want 1", got)
			}

			drop() // the code is fixed
			row, res, err := in.Retry(e.ctx, q[0].ID)
			if err != nil || row.State != store.QuarantineResolved || res.Outcome != ingest.NewTicket {
				t.Fatalf("retry after the fix: %+v %+v %v", row, res, err)
			}
			if n, _ := e.db.CountTickets(e.ctx, store.TicketFilter{}); n != 4 {
				t.Fatalf("%d tickets after the retry, want 4", n)
			}
			e.checkQuarantined(nil)
		})
	}
}

// The hostile shapes of issue 8, delivered in order between normal emails:
// each is stored or quarantined, nothing blocks the mailbox.
func TestSyncHostileEmailsDoNotBlockTheMailbox(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newSyncEnv(t, dialect)
			e.runWithMetrics("p1", prometheus.NewRegistry())
			mail := append([][]byte{normalEmail("first")}, hostileEmails()...)
			mail = append(mail, normalEmail("after"))
			for i, raw := range mail {
				if err := e.stack.Deliver(e.ctx, supportAddr, raw); err != nil {
					t.Fatalf("deliver %d: %v", i, err)
				}
			}
			q := e.settled(len(mail), 2*time.Minute)
			for _, row := range q {
				t.Logf("%s: UID %d quarantined: %s", dialect, row.UID, row.Error)
			}
			e.checkQuarantined(q)
			// Parsing and storage take every one of these now: none may
			// need the quarantine, and the cut-off forwards are stored
			// with a Problem that says so.
			if len(q) != 0 {
				t.Errorf("%s: %d hostile emails quarantined, want every one stored", dialect, len(q))
			}
			if cut := e.storedWithProblem("cut off"); cut != 4 {
				t.Errorf("%s: %d stored messages have a cut-off Problem, want the 4 cut-off forwards", dialect, cut)
			}
			latency := e.lastBecomesTicket("later", 10*time.Second)
			t.Logf("%s: %d hostile emails, %d quarantined; the next normal email became a ticket %s after delivery",
				dialect, len(mail)-2, len(q), latency)
			e.checkNotFailing()
		})
	}
}

// hostileEmails are the shapes that stopped a mailbox (issue 8): NUL
// bytes decoded from 7-bit mail, oversized header values, and forwards cut
// off before their closing MIME boundaries.
func hostileEmails() [][]byte {
	date := "Date: " + time.Now().Format(time.RFC1123Z) + "\r\n"
	head := func(id, subject string) string {
		return "From: Customer <customer@customer.example>\r\nTo: " + supportAddr + "\r\nSubject: " + subject + "\r\n" + date +
			"Message-ID: <" + id + "@customer.example>\r\n"
	}
	var out [][]byte
	// Three NUL variants: encoded subject, quoted-printable body, encoded From name.
	out = append(out, []byte("From: Customer <customer@customer.example>\r\nTo: "+supportAddr+"\r\nSubject: =?utf-8?q?hello=00world?=\r\n"+date+
		"Message-ID: <nul-subject@customer.example>\r\n\r\nA NUL in the subject.\r\n"))
	out = append(out, []byte(head("nul-body", "NUL in the body")+"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nhello=00world\r\n"))
	out = append(out, []byte("From: =?utf-8?q?Ann=00Customer?= <ann@customer.example>\r\nTo: "+supportAddr+"\r\nSubject: NUL in the From name\r\n"+date+
		"Message-ID: <nul-from@customer.example>\r\n\r\nA NUL in the sender's name.\r\n"))
	// A 6,000-byte Message-ID.
	out = append(out, []byte("From: Customer <customer@customer.example>\r\nTo: "+supportAddr+"\r\nSubject: A long Message-ID\r\n"+date+
		"Message-ID: <"+strings.Repeat("x", 6000-len("@customer.example")-2)+"@customer.example>\r\n\r\nLong id.\r\n"))
	// A To line of 3,000 addresses.
	var to strings.Builder
	for i := 0; i < 3000; i++ {
		if i > 0 {
			to.WriteString(",\r\n ")
		}
		fmt.Fprintf(&to, "person%d@example.org", i)
	}
	out = append(out, []byte("From: Customer <customer@customer.example>\r\nTo: "+supportAddr+", "+to.String()+"\r\nSubject: 3,000 recipients\r\n"+date+
		"Message-ID: <many-to@customer.example>\r\n\r\nMany recipients.\r\n"))
	// A 2 MB header block.
	var big strings.Builder
	for big.Len() < 2<<20 {
		fmt.Fprintf(&big, "X-Filler-%d: %s\r\n", big.Len(), strings.Repeat("f", 90))
	}
	out = append(out, []byte(head("big-header", "A 2 MB header")+big.String()+"\r\nBig header.\r\n"))
	// Forwards cut off before their closing boundaries, at several depths.
	original := func(boundary string) string {
		return "From: Ann <ann@customer.example>\r\nSubject: The original\r\nMessage-ID: <orig-" + boundary + "@customer.example>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n" +
			"--" + boundary + "\r\nContent-Type: text/plain\r\n\r\nMy order did not arrive.\r\n" +
			"--" + boundary + "\r\nContent-Type: text/html\r\n\r\n<p>My order did not arrive.</p>\r\n"
	}
	forward := func(id, boundary, inner string) string {
		return head(id, "Fwd: cut off ("+id+")") + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n" +
			"--" + boundary + "\r\nContent-Type: text/plain\r\n\r\nSee the forwarded email.\r\n" +
			"--" + boundary + "\r\nContent-Type: message/rfc822; name=\"original.eml\"\r\nContent-Disposition: attachment; filename=\"original.eml\"\r\n\r\n" +
			inner
	}
	// Depth 1: the inner alternative and the outer mixed are both left open.
	out = append(out, []byte(forward("cut-1", "outer1", original("inner1"))))
	// Depth 1, cut inside a part's body.
	out = append(out, []byte(forward("cut-1b", "outer1b", original("inner1b")[:200])+"\r\n"))
	// Depth 2: the inner one closes; the outer one never does.
	out = append(out, []byte(forward("cut-2", "outer2", original("inner2")+"--inner2--\r\n")))
	// Depth 3: a forward of a forward, cut in the innermost alternative.
	nested := forward("cut-3-mid", "middle3", original("inner3"))
	out = append(out, []byte(forward("cut-3", "outer3", nested)))
	return out
}

// gatheredValue is a counter's value as /metrics would show it.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}
