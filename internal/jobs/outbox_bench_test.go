package jobs_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// BenchmarkOutbox1000 queues 1,000 replies through desk.Reply (compose,
// blob, outbox row: what Send does) with the sender stopped, then starts
// it and reports the time until Postfix accepted all of them, beside a bare
// smtpsend loop sending the same 1,000 messages over one connection to the
// same Postfix, and the ratio (target: at most 1.25). The time to queue
// them is reported too.
//
//	go test ./internal/jobs/ -run '^$' -bench Outbox1000 -benchtime 1x
func BenchmarkOutbox1000(b *testing.B) {
	const n = 1000
	for range b.N {
		b.StopTimer()
		outbox, bare := outbox1000(b, n)
		b.ReportMetric(outbox.Seconds(), "outbox_s")
		b.ReportMetric(bare.Seconds(), "bare_smtp_s")
		b.ReportMetric(outbox.Seconds()/bare.Seconds(), "ratio")
		fmt.Printf("FIGURE outbox_1000 outbox=%s bare_smtp=%s ratio=%.2f\n", outbox.Round(time.Millisecond), bare.Round(time.Millisecond), outbox.Seconds()/bare.Seconds())
	}
}

func outbox1000(b *testing.B, n int) (outbox, bare time.Duration) {
	e, mb, ticket := benchDesk(b)
	began := time.Now()
	ids := make([]int64, 0, n)
	queue := desk.New(e.db) // no wake-up: the sender is started below
	for i := range n {
		m, err := queue.Reply(e.ctx, ticket, e.agent, desk.ReplyInput{Text: fmt.Sprintf("Benchmark reply %d.", i)})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	fmt.Printf("FIGURE outbox_1000_queued_in %s\n", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	e.sender.Start()
	for {
		c, err := e.db.OutboxCounts(e.ctx)
		if err != nil {
			b.Fatal(err)
		}
		if c[store.DeliverySent] == n {
			break
		}
		if c[store.DeliveryFailed]+c[store.DeliveryUnknown]+c[store.DeliveryHeld] > 0 {
			b.Fatalf("outbox %v", c)
		}
		time.Sleep(2 * time.Millisecond)
	}
	outbox = time.Since(began)

	// The same messages, bare: one connection, one Send after another.
	raws := make([][]byte, 0, n)
	for _, id := range ids {
		m, err := e.db.Message(e.ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		f, err := e.db.Blobs().Open(context.Background(), m.RawSHA256)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, raw)
	}
	tok, err := e.stack.Token(mb.Address)
	if err != nil {
		b.Fatal(err)
	}
	began = time.Now()
	conn, err := smtpsend.Dial(context.Background(), smtpsend.Config{Addr: e.stack.SubmissionAddr, Security: smtpsend.SecurityNone,
		Username: mb.Address, Auth: smtpsend.AuthXOAuth2, Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		b.Fatal(err)
	}
	for _, raw := range raws {
		if err := conn.Send(context.Background(), mb.Address, []string{customerAddr}, raw); err != nil {
			b.Fatal(err)
		}
	}
	bare = time.Since(began)
	conn.Close()
	return outbox, bare
}

// benchDesk is a Postdesk with an OAuth mailbox and a ticket on a new stack.
func benchDesk(b *testing.B) (*deskEnv, store.Mailbox, int64) {
	stack, idp := newStack(b, false, nil, supportAddr)
	e := newDeskStopped(b, "sqlite", stack, idp)
	mb := e.addMailbox(supportAddr, "", "")
	ticket := e.newTicket(mb, customerAddr, "Benchmark", "bench@customer.test")
	if !strings.Contains(e.stack.SubmissionAddr, "127.0.0.1") {
		b.Fatal("submission is not on loopback")
	}
	return e, mb, ticket
}
