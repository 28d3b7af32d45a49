package mailmsg

import (
	"fmt"
	"strings"
	"testing"
)

// A delivery report's per-recipient groups (RFC 3464): only failed
// recipients count, folded Diagnostic-Code lines are unfolded, the address
// type is dropped; without a report part, X-Failed-Recipients names them.
func TestBouncedRecipients(t *testing.T) {
	report := "Reporting-MTA: dns; mx.customer.test\r\nArrival-Date: Tue, 1 Dec 2026 09:00:00 +0000\r\n\r\n" +
		"Final-Recipient: rfc822; Jane@Customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <jane@customer.test>:\r\n Recipient address rejected\r\n\r\n" +
		"Original-Recipient: rfc822;bob@customer.test\r\nFinal-Recipient: rfc822;robert@customer.test\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n" +
		"Final-Recipient: rfc822; <kim@customer.test>\r\nAction: Failed\r\nStatus: 5.2.2\r\n\r\n" +
		"Original-Recipient: rfc822;lee@customer.test\r\nFinal-Recipient: rfc822;lee.park@mail.customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	raw := "From: MAILER-DAEMON@mx.customer.test\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\n" + report + "\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <r1@example.com>\r\nSubject: Re: Help\r\n\r\n--b--\r\n"
	m, err := Parse(strings.NewReader(raw), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(m.BouncedRecipients)
	want := fmt.Sprint([]BouncedRecipient{
		{Address: "jane@customer.test", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 <jane@customer.test>: Recipient address rejected"},
		{Address: "kim@customer.test", Status: "5.2.2"},
		{Address: "lee.park@mail.customer.test", Original: "lee@customer.test", Status: "5.1.1"},
	})
	if m.Auto != AutoBounce || m.BouncedMessageID != "r1@example.com" || got != want {
		t.Errorf("auto %q, bounced id %q, recipients\n %s\nwant\n %s", m.Auto, m.BouncedMessageID, got, want)
	}

	exim := "From: Mail Delivery System <Mailer-Daemon@mx.test>\r\nTo: support@example.com\r\nSubject: Mail delivery failed: returning message to sender\r\n" +
		"X-Failed-Recipients: jane@customer.test, <kim@customer.test>\r\n\r\nA message that you sent could not be delivered.\r\n"
	m, err = Parse(strings.NewReader(exim), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.BouncedRecipients); got != fmt.Sprint([]BouncedRecipient{{Address: "jane@customer.test"}, {Address: "kim@customer.test"}}) {
		t.Errorf("X-Failed-Recipients: %s", got)
	}
}
