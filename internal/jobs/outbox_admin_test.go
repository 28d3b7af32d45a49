package jobs_test

import (
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// What Admin -> Emails reads after real sends through Postfix: the sends
// in each mailbox's activity (one entry while they keep coming), and for
// a mailbox whose login may not send as its address, the refusal as its
// newest mailbox-wide problem.
func TestSendingSummaryForAdmins(t *testing.T) {
	const shared, delegate = "shared@example.com", "delegate@example.com"
	stack, idp := newStack(t, true, map[string]string{delegate: "pw"}, supportAddr)
	e := newDesk(t, "sqlite", stack, idp)
	good := e.addMailbox(supportAddr, "", "")
	bad := e.addMailbox(shared, delegate, "pw")
	tGood := e.newTicket(good, customerAddr, "Good", "g1@customer.test")
	tBad := e.newTicket(bad, "other@customer.test", "Bad", "b1@customer.test")

	mBad, err := e.desk.Reply(e.ctx, tBad, e.agent, desk.ReplyInput{Text: "from the shared mailbox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"first", "second"} {
		m, err := e.desk.Reply(e.ctx, tGood, e.agent, desk.ReplyInput{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		e.waitDelivery(m.ID, store.DeliverySent, 15*time.Second)
	}
	e.waitDelivery(mBad.ID, store.DeliveryFailed, 15*time.Second)

	sum, err := e.db.OutboxSummary(e.ctx, good.ID, desk.MailboxWideKinds)
	if err != nil || sum.Counts[store.DeliverySent] != 2 || sum.LastSentAt.IsZero() || sum.Problem != nil {
		t.Errorf("the good mailbox's summary = %+v, %v", sum, err)
	}
	acts, err := e.db.MailboxActivity(e.ctx, good.ID, 10)
	var sends []store.Activity
	for _, a := range acts {
		if a.Kind == store.ActivitySend {
			sends = append(sends, a)
		}
	}
	if err != nil || len(sends) != 1 || sends[0].Count != 2 {
		t.Errorf("the good mailbox's sends in its activity = %+v, %v", sends, err)
	}
	sum, err = e.db.OutboxSummary(e.ctx, bad.ID, desk.MailboxWideKinds)
	if err != nil || sum.Counts[store.DeliveryFailed] != 1 || sum.Problem == nil || sum.Problem.ErrorKind != "send_as_denied" ||
		sum.Problem.TicketID != tBad || sum.Problem.LastError == "" || !sum.LastSentAt.IsZero() {
		t.Errorf("the refused mailbox's summary = %+v (problem %+v), %v", sum, sum.Problem, err)
	}
	if desk.SendingAdvice(sum.Problem.ErrorKind) == "" {
		t.Error("no advice for send_as_denied")
	}
}
