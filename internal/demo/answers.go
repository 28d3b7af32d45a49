package demo

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
)

// A sample customer answers a reply. When a reply sent from one of the
// demo's mailboxes is delivered over SMTP to a sample customer (see
// customers.go), the customer's answer arrives in that mailbox a few
// seconds later, threaded to the reply (In-Reply-To and References, RFC
// 5322 3.6.4), so Postdesk fetches it and files it on the same ticket.
//
// It is bounded, whatever Postdesk sends: one answer per reply (by its
// Message-ID, whichever of its recipients is delivered first), at most
// maxAnswersPerCustomer answers per customer per run, none to automatic,
// bulk or list mail (an acknowledgement carries Auto-Submitted, RFC 3834
// 5), none to mail whose sender is not one of the demo's mailboxes. The
// answer itself goes into the mailbox by delivery, never over SMTP, so it
// cannot call for another answer.

// DefaultAnswerAfter is how long a sample customer takes to answer a reply.
const DefaultAnswerAfter = 4 * time.Second

// maxAnswersPerCustomer bounds each customer's answers in one run.
const maxAnswersPerCustomer = 3

// maxReferences bounds the answer's References (the first and the latest
// are kept, RFC 5322 3.6.4).
const maxReferences = 10

// answerPlan is what a delivered message calls for: an answer, or the
// reason there is none.
type answerPlan struct {
	skip     string // why no answer is due ("" when one is)
	replyID  string // the reply's Message-ID
	customer customer
	answer   Mail // to the mailbox the reply came from
}

// planAnswer decides whether the customer at to answers the delivered
// message raw, and writes the answer if so. It does not know what was
// answered before (answers.claim does).
func planAnswer(d Domain, to string, raw []byte, now time.Time) answerPlan {
	c, ok := sampleCustomer(to)
	if !ok {
		return answerPlan{skip: "not a sample customer"}
	}
	msg, err := mailmsg.Parse(bytes.NewReader(raw), mailmsg.ParseOptions{})
	if err != nil {
		return answerPlan{skip: "unreadable"}
	}
	var mailbox string
	for _, a := range msg.From {
		for _, ours := range d.Mailboxes() {
			if mailmsg.NormalizeAddress(a.Address) == ours {
				mailbox = ours
			}
		}
	}
	switch {
	case mailbox == "":
		return answerPlan{skip: "not from one of the demo's mailboxes"}
	case msg.Auto != "" || msg.Bulk || msg.SuppressAutoResponse:
		return answerPlan{skip: "automatic or bulk mail"}
	case msg.MessageID == "" || !cleanID(msg.MessageID):
		return answerPlan{skip: "no Message-ID to answer"}
	}
	refs := []string{}
	for _, r := range msg.References {
		if cleanID(r) && r != msg.MessageID {
			refs = append(refs, r)
		}
	}
	refs = append(refs, msg.MessageID)
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	subject := oneLine(msg.Subject)
	if !strings.HasPrefix(strings.ToLower(subject), "re:") {
		subject = "Re: " + subject
	}
	domain := c.address[strings.LastIndexByte(c.address, '@')+1:]
	m := message{from: fmt.Sprintf("%s <%s>", c.name, c.address), to: mailbox, subject: subject, date: now,
		messageID: "answer-" + randomHex(8) + "@" + domain, inReplyTo: msg.MessageID, references: refs,
		text: c.answerText() + "\n\n" + quote(msg, now)}
	return answerPlan{replyID: msg.MessageID, customer: c, answer: Mail{To: mailbox, Date: now, Raw: m.render()}}
}

// quote is the start of the reply, down to its signature, quoted as mail
// clients do.
func quote(msg *mailmsg.Message, now time.Time) string {
	from := "you"
	if len(msg.From) > 0 {
		from = oneLine(msg.From[0].Name)
		if from == "" {
			from = msg.From[0].Address
		}
	}
	date := msg.Date
	if date.IsZero() {
		date = now
	}
	var b strings.Builder
	fmt.Fprintf(&b, "On %s, %s wrote:\n", date.Format("Mon, 2 Jan 2006 at 15:04"), from)
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(msg.Text), "\r\n", "\n"), "\n")
	for i, l := range lines {
		if strings.TrimRight(l, "\r") == "-- " { // the signature separator (RFC 3676 4.3): quote up to it
			break
		}
		if i == 8 {
			b.WriteString("> …\n")
			break
		}
		b.WriteString(strings.TrimRight("> "+strings.ReplaceAll(l, "\r", ""), " ") + "\n")
	}
	return b.String()
}

// cleanID reports whether a Message-ID can be written back between angle
// brackets as it is.
func cleanID(id string) bool {
	return id != "" && len(id) <= 250 && !strings.ContainsFunc(id, func(r rune) bool {
		return r <= ' ' || r == '<' || r == '>' || r == 0x7f
	})
}

// oneLine folds control characters and runs of white space into spaces.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == ' ' }), " ")
}

// answers remembers what was answered in this run.
type answers struct {
	mu       sync.Mutex
	replies  map[string]bool // Message-IDs of replies answered (or about to be)
	customer map[string]int  // answers per customer
}

// claim reserves the answer to replyID by address; false when that reply
// was answered already or the customer has answered enough.
func (a *answers) claim(replyID, address string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.replies == nil {
		a.replies, a.customer = map[string]bool{}, map[string]int{}
	}
	if a.replies[replyID] || a.customer[address] >= maxAnswersPerCustomer {
		return false
	}
	a.replies[replyID] = true
	a.customer[address]++
	return true
}

// delivered is the mail server's OnDelivered: it schedules a sample
// customer's answer when one is due. It runs on the SMTP session's
// goroutine and does not block.
func (e *Env) delivered(to string, raw []byte) {
	plan := planAnswer(e.Domain, to, raw, time.Now())
	if plan.skip != "" {
		e.log.Debug("demo: no answer from the recipient", "to", to, "reason", plan.skip)
		return
	}
	if !e.answered.claim(plan.replyID, plan.customer.address) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTimer(e.answerAfter)
		defer t.Stop()
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		// Dated now, not when the reply was read: this is when it arrives.
		m := plan.answer
		if err := e.Mail.Deliver(m.To, m.Raw, time.Now()); err != nil {
			e.log.Error("deliver a customer's answer", "to", m.To, "err", err)
			return
		}
		e.log.Info("demo: a customer answered a reply", "from", plan.customer.address, "to", m.To)
	}()
}
