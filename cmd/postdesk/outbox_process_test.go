package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
)

// riverEnqueuer wakes the serve process's sender through the job queue
// both processes share (the test writes replies as another surface would).
type riverEnqueuer struct{ r *jobs.Runner }

func (e riverEnqueuer) EnqueueSend(ctx context.Context, tx *store.Tx, mailboxID int64) error {
	return e.r.InsertTx(ctx, tx, jobs.SendRepliesArgs{MailboxID: mailboxID}, nil)
}

// The outbox's crash done-when of issue 10: `postdesk serve` is killed
// with SIGKILL at 5 random points while 200 replies are being sent through
// real Postfix; at the end every reply arrived exactly once (counted in
// Dovecot), except one whose fate is unknown, which arrived at most once
// and which its ticket names.
func TestServeSendsRepliesOnceThroughSIGKILL(t *testing.T) {
	const (
		address = "support@example.com"
		secret  = "outbox-crash-password"
		tickets = 10
		total   = 200
		kills   = 5
	)
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, PasswordUsers: map[string]string{address: secret}})
	bin := buildPostdesk(t)
	data := t.TempDir()
	p := newProcEnv(t, bin, "POSTDESK_DATA="+data, "POSTDESK_SYNC_OWNER=outbox-crash-test")
	imapHost, imapPort, _ := strings.Cut(stack.IMAPAddr, ":")
	smtpHost, smtpPort, _ := strings.Cut(stack.SubmissionAddr, ":")
	out := p.run(secret+"\n", "mailbox", "add", "--address", address, "--auth", "password",
		"--imap-host", imapHost, "--imap-port", imapPort, "--imap-security", "none",
		"--smtp-host", smtpHost, "--smtp-port", smtpPort, "--smtp-security", "none", "--password-stdin")
	if !strings.Contains(out, "added mailbox "+address) {
		t.Fatalf("mailbox add: %s", out)
	}
	ctx := t.Context()
	db := openStore(t, store.Config{DataDir: data})
	mb, err := db.MailboxByAddress(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	// This process writes replies (as the web or API would) and enqueues
	// the send job; its sender never starts: only serve sends.
	idle, err := jobs.NewSender(jobs.SenderOptions{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(db, jobs.Options{Outbox: idle})
	if err != nil {
		t.Fatal(err)
	}
	dsk := desk.New(db, desk.WithEnqueuer(riverEnqueuer{runner}))
	in := ingest.New(db, ingest.Options{})
	var author store.User
	if err := db.Write(ctx, func(tx *store.Tx) (err error) {
		author, err = tx.CreateUser(ctx, store.User{Email: "agent@helpdesk.test", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ticketIDs []int64
	for i := range tickets {
		raw := fmt.Sprintf("From: Customer %d <c%d@customer.test>\r\nTo: %s\r\nSubject: Order %d\r\nMessage-ID: <order-%d@customer.test>\r\n\r\nWhere is it?\r\n", i, i, address, i, i)
		res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("ingest %d: %v %v", i, res, err)
		}
		ticketIDs = append(ticketIDs, res.TicketID)
	}
	// All 200 are queued before serve starts, so every kill lands while
	// replies are being sent.
	replies := map[string]int64{} // Message-ID -> ticket
	var ids []int64
	for i := range total {
		tk := ticketIDs[i%tickets]
		m, err := dsk.Reply(ctx, tk, author, desk.ReplyInput{Text: fmt.Sprintf("Answer %d: it ships tomorrow.", i)})
		if err != nil {
			t.Fatal(err)
		}
		replies[m.MessageID] = tk
		ids = append(ids, m.ID)
	}
	diag := func() string { return p.logTail("serve", 40) }
	sentCount := func() (sent, open int) {
		t.Helper()
		counts, err := db.OutboxCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.DeliveryFailed] != 0 || counts[store.DeliveryHeld] != 0 {
			t.Fatalf("outbox %v: nothing may fail or be held\n%s", counts, diag())
		}
		return counts[store.DeliverySent] + counts[store.DeliveryUnknown], counts[store.DeliveryQueued] + counts[store.DeliverySending]
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 10))
	var atKill []int
	srv := p.serve("serve")
	for range kills {
		// Wait until this run has sent something, then a random moment more.
		n0, _ := sentCount()
		deadline := time.Now().Add(20 * time.Second)
		for n, _ := sentCount(); n == n0 && time.Now().Before(deadline) && !srv.exited(); n, _ = sentCount() {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		if srv.exited() {
			t.Fatalf("serve exited by itself:\n%s", diag())
		}
		srv.kill()
		n, _ := sentCount()
		atKill = append(atKill, n)
		srv = p.serve("serve")
	}
	t.Logf("killed serve %d times; replies done at each kill: %v", kills, atKill)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, open := sentCount(); open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replies still queued or sending after 2 minutes\n%s", diag())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Count in Dovecot, every customer's INBOX, once Postfix has delivered
	// at least every reply recorded sent (and a moment more for any other).
	count := func() (map[string]int, int) {
		arrived := map[string]int{}
		var got int
		for i := range tickets {
			msgs, err := stack.Messages(ctx, fmt.Sprintf("c%d@customer.test", i), "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			got += len(msgs)
			for _, m := range msgs {
				pm, err := mailmsg.Parse(strings.NewReader(string(m.Raw)), mailmsg.ParseOptions{})
				if err != nil {
					t.Fatal(err)
				}
				arrived[pm.MessageID]++
			}
		}
		return arrived, got
	}
	counts, err := db.OutboxCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, got := count(); got >= counts[store.DeliverySent] || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	arrived, got := count()
	t.Logf("Dovecot holds %d replies; outbox %v", got, counts)
	var unknown []int64
	for _, id := range ids {
		m, err := db.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		n := arrived[m.MessageID]
		switch m.Delivery.State {
		case store.DeliverySent:
			if n != 1 {
				t.Errorf("reply %d (%s) is sent and arrived %d times", id, m.MessageID, n)
			}
		case store.DeliveryUnknown:
			unknown = append(unknown, id)
			if n > 1 {
				t.Errorf("reply %d of unknown fate arrived %d times", id, n)
			}
			notes, err := db.TicketNotes(ctx, m.TicketID)
			if err != nil {
				t.Fatal(err)
			}
			named := 0
			for _, note := range notes {
				if strings.Contains(note.Body, m.MessageID) {
					named++
				}
			}
			if named != 1 {
				t.Errorf("ticket %d names unknown reply %s %d times", m.TicketID, m.MessageID, named)
			}
			t.Logf("reply %d: fate unknown (arrived %d times); its ticket says so", id, n)
		default:
			t.Errorf("reply %d ended %s", id, m.Delivery.State)
		}
	}
	if len(unknown) > kills {
		t.Errorf("%d replies of unknown fate after %d kills: at most one per kill", len(unknown), kills)
	}
	t.Logf("%d replies: %d arrived once, %d of unknown fate named on their tickets", total, total-len(unknown), len(unknown))
	if srv.exited() {
		t.Fatalf("serve exited by itself:\n%s", diag())
	}
}
