package demo

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/sasl"
)

// composeReply writes a reply as Postdesk's desk does.
func composeReply(t *testing.T, from string, to mailmsg.OutAddress, subject string, ticket int64, auto bool) (raw []byte, id string) {
	t.Helper()
	id = mailmsg.NewMessageID("acme.example")
	raw, err := mailmsg.ComposeReply(mailmsg.Reply{
		From: mailmsg.OutAddress{Name: "Acme Support", Address: from}, To: []mailmsg.OutAddress{to},
		Subject: subject, TicketID: ticket, MessageID: id,
		InReplyTo: "seed-signin-2@northwind.example", References: []string{"seed-signin-1@northwind.example"},
		Text: "Hi Jane,\n\nPlease try again now.\n\nMaria", Signature: "Acme Support", Auto: auto,
		Quotes: []mailmsg.Quote{{From: "Jane Cooper <jane.cooper@northwind.example>", Date: time.Now().Add(-time.Hour), Text: "It still fails."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, id
}

var jane = mailmsg.OutAddress{Name: "Jane Cooper", Address: "jane.cooper@northwind.example"}

func TestPlanAnswer(t *testing.T) {
	t.Parallel()
	d := DefaultDomain()
	now := time.Now()
	reply, id := composeReply(t, d.Support, jane, "Can't sign in after the password reset", 2, false)

	p := planAnswer(d, "Jane.Cooper@northwind.example", reply, now)
	if p.skip != "" || p.replyID != id || p.answer.To != d.Support {
		t.Fatalf("plan = %+v", p)
	}
	m, err := mail.ReadMessage(bytes.NewReader(p.answer.Raw))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"From":        "Jane Cooper <jane.cooper@northwind.example>",
		"To":          d.Support,
		"Subject":     "Re: Can't sign in after the password reset [#2]", // not "Re: Re:"
		"In-Reply-To": "<" + id + ">",
		"References":  "<seed-signin-1@northwind.example> <seed-signin-2@northwind.example> <" + id + ">",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get("Auto-Submitted") != "" || !strings.HasSuffix(m.Header.Get("Message-ID"), "@northwind.example>") {
		t.Errorf("answer header: %v", m.Header)
	}
	parsed, err := mailmsg.Parse(bytes.NewReader(p.answer.Raw), mailmsg.ParseOptions{})
	if err != nil || parsed.Auto != "" || parsed.Bulk {
		t.Fatalf("the answer reads as automatic or bulk: %+v %v", parsed, err)
	}
	if !strings.HasPrefix(parsed.Text, "Thanks, that did it") || !strings.Contains(parsed.Text, "> Please try again now.") ||
		strings.Contains(parsed.Text, "> Acme Support") {
		t.Errorf("answer text:\n%s", parsed.Text)
	}

	ack, _ := composeReply(t, d.Support, jane, "Can't sign in", 2, true)
	fromElsewhere, _ := composeReply(t, "help@other.example", jane, "Can't sign in", 2, false)
	toStranger, _ := composeReply(t, d.Support, mailmsg.OutAddress{Address: "someone@else.example"}, "Hi", 3, false)
	for _, c := range []struct {
		name, to string
		raw      []byte
	}{
		{"acknowledgement (Auto-Submitted)", jane.Address, ack},
		{"not from a demo mailbox", jane.Address, fromElsewhere},
		{"not a sample customer", "someone@else.example", toStranger},
		{"the newsletter sender", "news@saasweekly.example", reply},
		{"an agent", d.Agent, reply},
		{"no Message-ID", jane.Address, []byte("From: support@acme.example\r\nTo: jane.cooper@northwind.example\r\nSubject: x\r\n\r\nhi\r\n")},
	} {
		if p := planAnswer(d, c.to, c.raw, now); p.skip == "" {
			t.Errorf("%s: an answer is planned", c.name)
		}
	}
	// A live sample's customer answers with the generic thanks.
	p = planAnswer(d, "emma.rossi@wingtip.example", reply, now)
	if p.skip != "" || !bytes.Contains(p.answer.Raw, []byte("From: Emma Rossi <emma.rossi@wingtip.example>")) ||
		!bytes.Contains(p.answer.Raw, []byte("that's all I needed.\r\n\r\nEmma")) {
		t.Errorf("live customer's answer: %+v\n%s", p.skip, p.answer.Raw)
	}
}

// Every person who writes in the sample mail answers a reply; the
// newsletter, the out-of-office and the agent do not.
func TestSampleCustomersCoverTheSamples(t *testing.T) {
	t.Parallel()
	d := DefaultDomain()
	mails := append(Seed(d, time.Now()), Earlier(d, time.Now()))
	for n := range len(liveSamples) {
		mails = append(mails, Live(d, "x", n, time.Now()))
	}
	for _, m := range mails {
		msg, err := mailmsg.Parse(bytes.NewReader(m.Raw), mailmsg.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		from := msg.From[0].Address
		_, ok := sampleCustomer(from)
		person := msg.Auto == "" && !msg.Bulk && from != d.Agent
		if ok != person {
			t.Errorf("%s (%q): a sample customer: %v, want %v", from, msg.Subject, ok, person)
		}
	}
}

// A live follow-up answers an email that the same customer sent to the
// same mailbox, and no email is followed up twice: the demo's threads are
// each one customer's (it once chained every third email into one ticket
// of sales@ answered by a dozen customers).
func TestLiveFollowUpsStayWithTheirCustomer(t *testing.T) {
	t.Parallel()
	d := DefaultDomain()
	type sent struct{ from, to string }
	byID := map[string]sent{}
	followedUp := map[string]bool{}
	followUps := 0
	perBox, perSender := map[string]int{}, map[string]int{}
	for n := range 60 {
		m := Live(d, "x", n, time.Now())
		msg, err := mailmsg.Parse(bytes.NewReader(m.Raw), mailmsg.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.To) != 1 || msg.To[0].Address != m.To {
			t.Fatalf("mail %d is addressed to %v but delivered to %s", n, msg.To, m.To)
		}
		me := sent{msg.From[0].Address, m.To}
		if len(msg.InReplyTo) > 0 {
			followUps++
			orig, ok := byID[msg.InReplyTo[0]]
			switch {
			case !ok:
				t.Errorf("mail %d follows up on %s, not sent before", n, msg.InReplyTo[0])
			case orig != me:
				t.Errorf("mail %d from %s to %s follows up on one from %s to %s", n, me.from, me.to, orig.from, orig.to)
			case followedUp[msg.InReplyTo[0]]:
				t.Errorf("mail %d follows up on %s a second time", n, msg.InReplyTo[0])
			}
			followedUp[msg.InReplyTo[0]] = true
		}
		byID[msg.MessageID] = me
		perBox[me.to]++
		perSender[me.from]++
	}
	if followUps < 15 {
		t.Errorf("%d follow-ups in 60 live mails, want about one in three", followUps)
	}
	// Every mailbox and every sample customer gets their share.
	for _, box := range []string{d.Support, d.Billing, d.Sales} {
		if perBox[box] < 60/3/2 {
			t.Errorf("%s got %d of 60 live mails (%v)", box, perBox[box], perBox)
		}
	}
	if len(perSender) != len(liveSamples) {
		t.Errorf("%d of the %d sample customers wrote: %v", len(perSender), len(liveSamples), perSender)
	}
	for from, got := range perSender {
		if got < 60/len(liveSamples)/2 {
			t.Errorf("%s wrote %d of 60 live mails (%v)", from, got, perSender)
		}
	}
}

// TestCustomerAnswersOnce sends replies over the demo's SMTP side: a
// sample customer's answer arrives in the mailbox after the delay,
// threaded to the reply, once per reply and at most
// maxAnswersPerCustomer times; an acknowledgement gets none.
func TestCustomerAnswersOnce(t *testing.T) {
	t.Parallel()
	d := DefaultDomain()
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{Domain: d, log: log, answerAfter: 300 * time.Millisecond, ctx: ctx, cancel: cancel,
		Mail: NewMailServer(tokenFor, log)}
	if err := e.Mail.AddMailbox(d.Support); err != nil {
		t.Fatal(err)
	}
	e.Mail.OnDelivered = e.delivered
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(func() error { return e.Mail.ServeSMTP(ctx, ln) })
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	c := dialSMTP(t, ln.Addr().String())
	if err := c.Auth(sasl.NewXOAuth2Client(d.Support, "tok:"+d.Support)); err != nil {
		t.Fatal(err)
	}
	send := func(raw []byte, to ...string) {
		t.Helper()
		if err := c.SendMail(d.Support, to, bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
	}
	inbox := func() [][]byte { return e.Mail.Messages(d.Support, "INBOX") }
	waitInbox := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(inbox()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := len(inbox()); got != n {
			t.Fatalf("support@ INBOX has %d messages, want %d", got, n)
		}
	}

	first, id := composeReply(t, d.Support, jane, "Can't sign in", 2, false)
	start := time.Now()
	// To Jane and, as Cc, a live sample customer: one answer for the reply.
	send(first, jane.Address, "emma.rossi@wingtip.example")
	waitInbox(1)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the answer came after %s, before the customer's delay", took)
	}
	if m, _ := mail.ReadMessage(bytes.NewReader(inbox()[0])); m == nil || m.Header.Get("In-Reply-To") != "<"+id+">" {
		t.Errorf("the answer does not answer the reply: %s", inbox()[0])
	}
	// The same reply again (a resend), and an acknowledgement: no answer.
	send(first, jane.Address)
	ack, _ := composeReply(t, d.Support, jane, "Can't sign in", 2, true)
	send(ack, jane.Address)
	time.Sleep(time.Second)
	if n := len(inbox()); n != 1 {
		t.Fatalf("after a resend and an acknowledgement, %d messages in support@", n)
	}
	// Two more replies are answered; then Jane has answered enough.
	for range maxAnswersPerCustomer {
		raw, _ := composeReply(t, d.Support, jane, "Can't sign in", 2, false)
		send(raw, jane.Address)
	}
	waitInbox(maxAnswersPerCustomer)
	time.Sleep(time.Second)
	if n := len(inbox()); n != maxAnswersPerCustomer {
		t.Errorf("Jane answered %d replies, at most %d", n, maxAnswersPerCustomer)
	}
	if got := strings.Count(logs.String(), `msg="demo: a customer answered a reply" from=jane.cooper@northwind.example to=support@acme.example`); got != maxAnswersPerCustomer {
		t.Errorf("%d answer lines in the log:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), `msg="demo: mail delivered" to=jane.cooper@northwind.example`) {
		t.Errorf("no delivery line in the log:\n%s", logs)
	}
}

// Stop drops an answer that has not arrived yet, and nothing is delivered after.
func TestStopDropsPendingAnswers(t *testing.T) {
	t.Parallel()
	d := DefaultDomain()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{Domain: d, log: slog.New(slog.DiscardHandler), answerAfter: time.Hour, ctx: ctx, cancel: cancel,
		Mail: NewMailServer(tokenFor, nil)}
	if err := e.Mail.AddMailbox(d.Support); err != nil {
		t.Fatal(err)
	}
	reply, _ := composeReply(t, d.Support, jane, "Can't sign in", 2, false)
	e.delivered(jane.Address, reply)
	done := make(chan error, 1)
	go func() { done <- e.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waited for an answer due in an hour")
	}
	another, _ := composeReply(t, d.Support, jane, "Can't sign in", 2, false)
	e.delivered(jane.Address, another) // after Stop: ignored, no goroutine left behind
	if n := len(e.Mail.Messages(d.Support, "INBOX")); n != 0 {
		t.Errorf("%d answers delivered", n)
	}
}
