package demo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime"
	"strings"
	"time"
)

// Mail is a sample email for one of the demo's mailboxes.
type Mail struct {
	To   string // the mailbox's address
	Date time.Time
	Raw  []byte
}

// part is one MIME body part of a sample.
type part struct {
	contentType string // with parameters
	filename    string // set: an attachment
	body        []byte
}

// message is a sample before it is rendered to RFC 5322.
type message struct {
	from, to, subject string
	date              time.Time
	messageID         string
	inReplyTo         string
	references        []string    // without <>; empty: just inReplyTo
	extra             [][2]string // more header fields, in order
	text              string      // text/plain body
	html              string      // optional text/html alternative
	attachments       []part
}

// render writes m as an RFC 5322 message with CRLF line ends.
func (m message) render() []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", m.from)
	h("To", m.to)
	h("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	h("Date", m.date.Format(time.RFC1123Z))
	h("Message-ID", "<"+m.messageID+">")
	if m.inReplyTo != "" {
		h("In-Reply-To", "<"+m.inReplyTo+">")
		refs := m.references
		if len(refs) == 0 {
			refs = []string{m.inReplyTo}
		}
		h("References", "<"+strings.Join(refs, "> <")+">")
	}
	for _, kv := range m.extra {
		h(kv[0], kv[1])
	}
	h("MIME-Version", "1.0")
	text := part{contentType: "text/plain; charset=utf-8", body: []byte(m.text)}
	var body part
	if m.html != "" {
		body = multipart("alternative", text, part{contentType: "text/html; charset=utf-8", body: []byte(m.html)})
	} else {
		body = text
	}
	if len(m.attachments) > 0 {
		body = multipart("mixed", append([]part{body}, m.attachments...)...)
	}
	writePart(&b, body)
	return b.Bytes()
}

// multipart nests parts into one multipart part.
func multipart(subtype string, parts ...part) part {
	boundary := "=_demo_" + randomHex(8)
	var b bytes.Buffer
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\n", boundary)
		writePart(&b, p)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return part{contentType: fmt.Sprintf("multipart/%s; boundary=%q", subtype, boundary), body: b.Bytes()}
}

// writePart writes a part's header and body: text quoted-printable-free
// (the samples are short lines), binaries in base64.
func writePart(b *bytes.Buffer, p part) {
	fmt.Fprintf(b, "Content-Type: %s\r\n", p.contentType)
	switch {
	case strings.HasPrefix(p.contentType, "multipart/"):
		b.WriteString("\r\n")
		b.Write(p.body)
		return
	case p.filename != "":
		fmt.Fprintf(b, "Content-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", p.filename)
		enc := base64.StdEncoding.EncodeToString(p.body)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
		return
	}
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.TrimRight(string(p.body), "\n"), "\n", "\r\n") + "\r\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Seed returns the demo's first emails, dated in the last days before now:
// a question and the customer's follow-up (a thread, with a screenshot), a
// double-charged invoice with its PDF, an HTML newsletter sent as bulk
// mail, an out-of-office answer, an agent's forward of a customer email
// that went to the agent instead of support, and two emails to sales that
// wait on the server until its mailbox is reauthenticated. Their
// Message-IDs are fixed, so seeding a kept data folder again adds nothing.
func Seed(d Domain, now time.Time) []Mail {
	day := 24 * time.Hour
	at := func(ago time.Duration) time.Time { return now.Add(-ago).Truncate(time.Minute) }
	jane := "Jane Cooper <jane.cooper@northwind.example>"
	msgs := []message{
		{from: jane, to: d.Support, subject: "Can't sign in after the password reset",
			date: at(2*day + 3*time.Hour), messageID: "seed-signin-1@northwind.example",
			text: "Hi,\n\nI reset my password this morning and now the app says \"invalid credentials\" every time I try to sign in.\nI've tried on my laptop and my phone. Could you have a look? Our team can't reach the dashboard.\n\nThanks,\nJane Cooper\nOperations, Northwind"},
		{from: jane, to: d.Support, subject: "Re: Can't sign in after the password reset",
			date: at(day + 5*time.Hour), messageID: "seed-signin-2@northwind.example", inReplyTo: "seed-signin-1@northwind.example",
			text:        "Hello again,\n\nSame thing in a private window. Here's a screenshot of the error.\n\nJane\n\n> On " + at(2*day+3*time.Hour).Format("Mon, 2 Jan 2006") + ", Jane Cooper wrote:\n> I reset my password this morning and now the app says \"invalid credentials\"...",
			attachments: []part{{contentType: "image/png", filename: "sign-in-error.png", body: screenshotPNG()}}},
		{from: "Tom Becker <tom.becker@fabrikam.example>", to: d.Billing, subject: "Invoice INV-2291 charged twice",
			date: at(day + 2*time.Hour), messageID: "seed-invoice-1@fabrikam.example",
			text:        "Hello billing team,\n\nOur card was charged twice for invoice INV-2291 (March). The invoice is attached; both charges are on our statement dated the 3rd.\nPlease refund the duplicate.\n\nBest regards,\nTom Becker\nFinance, Fabrikam",
			attachments: []part{{contentType: "application/pdf", filename: "INV-2291.pdf", body: invoicePDF()}}},
		{from: "SaaS Weekly <news@saasweekly.example>", to: d.Support, subject: "This week: 7 ways to cut support response times",
			date: at(20 * time.Hour), messageID: "seed-newsletter-118@saasweekly.example",
			extra: [][2]string{{"List-Id", "SaaS Weekly <weekly.saasweekly.example>"}, {"List-Unsubscribe", "<https://saasweekly.example/unsubscribe>"}, {"Precedence", "bulk"}},
			text:  "SaaS Weekly #118\n\n1. Triage by intent, not by inbox\n2. Canned answers that don't sound canned\n...\n\nUnsubscribe: https://saasweekly.example/unsubscribe",
			html:  `<html><body style="font-family:sans-serif"><h1 style="color:#3b5bdb">SaaS Weekly #118</h1><p>This week: <b>7 ways to cut support response times</b>.</p><ol><li>Triage by intent, not by inbox</li><li>Canned answers that don't sound canned</li><li>Measure the first reply, not the last</li></ol><p style="font-size:small"><a href="https://saasweekly.example/unsubscribe">Unsubscribe</a></p></body></html>`},
		{from: "Mark Lee <mark.lee@contoso.example>", to: d.Support, subject: "Automatic reply: Your request about the API limits",
			date: at(6 * time.Hour), messageID: "seed-ooo-1@contoso.example",
			extra: [][2]string{{"Auto-Submitted", "auto-replied"}, {"X-Auto-Response-Suppress", "All"}},
			text:  "I'm out of the office until Monday with limited access to email.\nFor urgent matters please contact Sarah Kim (sarah.kim@contoso.example)."},
		{from: "Maria Santos <" + d.Agent + ">", to: d.Support, subject: "Fwd: CSV export broken since the update",
			date: at(3 * time.Hour), messageID: "seed-fwd-1@" + d.Name,
			text: "This one came to me directly last week and I missed it, sorry! Can someone take it?\n\nMaria\n\n" +
				"---------- Forwarded message ---------\n" +
				"From: Luis Ortega <luis.ortega@tailspin.example>\n" +
				"Date: " + at(4*day+2*time.Hour).Format("Mon, 2 Jan 2006 at 15:04") + "\n" +
				"Subject: CSV export broken since the update\n" +
				"To: Maria Santos <" + d.Agent + ">\n\n" +
				"Hi Maria,\n\nSince Tuesday's update, exporting tickets to CSV gives an empty file. We need it for our monthly report.\nIs there a workaround?\n\nLuis"},
		{from: "Priya Raman <priya.raman@litware.example>", to: d.Sales, subject: "Quote for 40 seats",
			date: at(5 * time.Hour), messageID: "seed-quote-1@litware.example",
			text: "Hi,\n\nWe'd like a quote for 40 seats on the annual plan, with SSO. Could you send one by Friday?\n\nPriya Raman\nIT, Litware"},
		{from: "Ben Walker <ben@adventure-works.example>", to: d.Sales, subject: "Demo call next week?",
			date: at(2 * time.Hour), messageID: "seed-demo-1@adventure-works.example",
			text: "Hello,\n\nCould we book a 30-minute demo next Tuesday or Wednesday afternoon? Three of us would join.\n\nThanks,\nBen"},
	}
	out := make([]Mail, len(msgs))
	for i, m := range msgs {
		out[i] = Mail{To: m.to, Date: m.date, Raw: m.render()}
	}
	return out
}

// liveSamples are what customers keep writing while the demo runs, each
// to the mailbox it belongs in (0 support, 1 billing, 2 sales).
var liveSamples = []struct {
	from, subject, text string
	box                 int
}{
	{"Olivia Brown <olivia@woodgrove.example>", "Can I change the email on my account?", "Hi, I changed jobs and would like to move my account to my new address. How do I do that?\n\nOlivia", 0},
	{"Noah Fischer <noah.fischer@proseware.example>", "Question about the annual plan", "Hello, if we switch to the annual plan mid-month, is the current month credited?\n\nNoah", 1},
	{"Sofia Nowak <sofia.nowak@margies.example>", "Feature request: dark mode", "Our agents work night shifts and would love a dark mode. Is it on the roadmap?\n\nSofia", 2},
	{"Emma Rossi <emma.rossi@wingtip.example>", "Webhook deliveries failing", "Since about an hour ago our webhook endpoint gets no deliveries; the dashboard says 'retrying'. Anything on your side?\n\nEmma", 0},
	{"Liam O'Connor <liam@fourthcoffee.example>", "Receipt for last payment", "Could you send me a receipt with our VAT number on it? It's IE6388047V.\n\nThanks, Liam", 1},
	{"Lucas Martin <lucas.martin@alpineski.example>", "Bulk discount for schools?", "We're a group of 12 schools interested in a joint licence. Do you offer education pricing?\n\nLucas", 2},
}

// liveTurn says what the n-th live email is: the k-th first email
// (followed = -1), or, every third turn from the sixth on (5, 8, 11, …), a
// follow-up by the customer of the first email just before it (followed
// is that turn, k its first email's number). A follow-up never answers a
// follow-up, and no email is followed up twice, so each thread stays one
// customer's.
func liveTurn(n int) (k, followed int) {
	isFollowUp := func(t int) bool { return t >= 5 && t%3 == 2 }
	firstNumber := func(t int) int { // follow-ups before turn t are 5, 8, … < t
		if t <= 5 {
			return t
		}
		return t - (t-3)/3
	}
	if isFollowUp(n) {
		return firstNumber(n - 1), n - 1
	}
	return firstNumber(n), -1
}

// Live returns the n-th live sample email (n from 0) of a run (run makes
// Message-IDs unique per run): the samples in turn, each to its mailbox,
// and every third one from the sixth on a customer following up on their
// email (liveTurn), so it joins that ticket.
func Live(d Domain, run string, n int, now time.Time) Mail {
	boxes := []string{d.Support, d.Billing, d.Sales}
	id := func(n int) string { return fmt.Sprintf("live-%s-%d@%s", run, n, d.Name) }
	k, followed := liveTurn(n)
	s := liveSamples[k%len(liveSamples)]
	to := boxes[s.box]
	m := message{from: s.from, to: to, subject: s.subject, date: now, text: s.text, messageID: id(n)}
	if followed >= 0 {
		m.subject, m.inReplyTo = "Re: "+s.subject, id(followed)
		m.text = "Any news on this? Thanks!\n\n> " + strings.ReplaceAll(s.text, "\n", "\n> ")
	}
	return Mail{To: to, Date: now, Raw: m.render()}
}

// screenshotPNG is a small picture standing in for a screenshot.
func screenshotPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 240, 120))
	for y := range 120 {
		for x := range 240 {
			c := color.RGBA{245, 246, 248, 255}
			switch {
			case y < 20:
				c = color.RGBA{59, 91, 219, 255} // title bar
			case y > 50 && y < 74 && x > 30 && x < 210:
				c = color.RGBA{250, 82, 82, 255} // the error
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img) // writing to a bytes.Buffer cannot fail
	return b.Bytes()
}

// invoicePDF is a minimal one-page PDF.
func invoicePDF() []byte {
	content := "BT /F1 18 Tf 72 720 Td (Invoice INV-2291) Tj 0 -28 Td /F1 12 Tf (Fabrikam Ltd - March - EUR 1,240.00) Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
