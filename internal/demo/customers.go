package demo

import (
	"net/mail"
	"strings"
	"time"
)

// customer is one of the demo's sample customers: someone who writes to
// the demo's mailboxes and answers a reply once.
type customer struct {
	name, address string
	// answer is what they write back to a reply, before the quote
	// (signed; "" for the generic thanks).
	answer string
}

// seedCustomers are the people of the seed mail, with their answers.
var seedCustomers = []customer{
	{"Jane Cooper", "jane.cooper@northwind.example", "Thanks, that did it: I'm signed in again, and so is the rest of the team.\n\nHave a good day,\nJane"},
	{"Tom Becker", "tom.becker@fabrikam.example", "Thank you, I'll keep an eye on our statement for the refund.\n\nBest regards,\nTom"},
	{"Luis Ortega", "luis.ortega@tailspin.example", "Thanks for getting back to me! I'll try that and let you know.\n\nLuis"},
	{"Priya Raman", "priya.raman@litware.example", "Great, thanks. I'll share it with our finance team and come back to you this week.\n\nPriya"},
	{"Ben Walker", "ben@adventure-works.example", "Wednesday at 3 pm works for the three of us. Looking forward to it!\n\nBen"},
	{"Hannah Schmidt", "hannah.schmidt@cohowinery.example", "Perfect, thank you! Then we switch to the Business plan from next month.\n\nHannah"},
}

// sampleCustomer finds a sample customer (of the seed or the live mail) by
// address; the newsletter, the out-of-office sender and the agents are not
// customers who answer.
func sampleCustomer(address string) (customer, bool) {
	address = strings.ToLower(strings.TrimSpace(address))
	for _, c := range seedCustomers {
		if c.address == address {
			return c, true
		}
	}
	for _, s := range liveSamples {
		a, err := mail.ParseAddress(s.from)
		if err == nil && strings.EqualFold(a.Address, address) {
			return customer{name: a.Name, address: strings.ToLower(a.Address)}, true
		}
	}
	return customer{}, false
}

// answerText is what c writes back, above the quote.
func (c customer) answerText() string {
	if c.answer != "" {
		return c.answer
	}
	first, _, _ := strings.Cut(c.name, " ")
	return "Thanks for the quick answer, that's all I needed.\n\n" + first
}

// Earlier is the email sales@ fetched before its sign-in broke: a ticket
// that an agent answered afterwards, so the answer is held until the
// mailbox is reauthenticated (Provision writes both). Its Message-ID is
// fixed, so a kept data folder gets it once.
func Earlier(d Domain, now time.Time) Mail {
	date := now.Add(-3 * 24 * time.Hour).Add(-4 * time.Hour).Truncate(time.Minute)
	m := message{from: "Hannah Schmidt <hannah.schmidt@cohowinery.example>", to: d.Sales,
		subject: "Upgrading to the Business plan", date: date, messageID: "seed-upgrade-1@cohowinery.example",
		text: "Hello,\n\nWe're on the Team plan with 12 seats and would like to move to the Business plan from next month.\nDo we need to do anything, and what happens to the rest of this month?\n\nKind regards,\nHannah Schmidt\nCoho Winery"}
	return Mail{To: d.Sales, Date: date, Raw: m.render()}
}

// heldReplyText is the agent's answer to Earlier, written while sales@
// could not send.
const heldReplyText = "Hi Hannah,\n\nNothing to do on your side: I've scheduled the switch to the Business plan for the 1st of next month, " +
	"and this month's difference is credited on your next invoice.\n\nBest,\nMaria"
