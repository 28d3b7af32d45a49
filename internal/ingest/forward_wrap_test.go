package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// relay is the agent who forwards the forward again.
const relay = "Rita Relay <rita.relay@postdesk.example>"

// wrapping is how a mail client forwards a message it received.
type wrapping struct {
	name string
	wrap func(raw []byte, m *mailmsg.Message, atts []attached, sent time.Time) string
}

// attached is an attachment of the fixture, which an inline forward
// carries along as Gmail and Outlook do.
type attached struct {
	contentType, filename string
	data                  []byte
}

var wrappings = []wrapping{
	{"gmail-text", wrapGmailText},
	{"outlook-html", wrapOutlookHTML},
	{"rfc822", wrapAttached("message/rfc822", "")},
	{"eml-file", wrapAttached("application/octet-stream", "original.eml")},
}

// TestForwardSurvivesWrapping takes every positive forward fixture of
// mailmsg (the agent's forward of a customer's email, in every client,
// language and shape), forwards it again as each major client forwards
// (inline text, inline HTML, attached message/rfc822, attached .eml file)
// and ingests that: the ticket must be the customer's, as for the fixture
// on its own.
func TestForwardSurvivesWrapping(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "mailmsg", "testdata", "forward", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	type fixture struct {
		name     string
		raw      []byte
		msg      *mailmsg.Message
		agents   []string
		customer mailmsg.Forward
		atts     []attached
	}
	var fixtures []fixture
	for _, file := range files {
		name := filepath.Base(file)
		if strings.HasPrefix(name, "noforward_") {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var atts []attached
		m, fs, err := mailmsg.ParseForwards(bytes.NewReader(raw), mailmsg.ParseOptions{Attachment: func(a *mailmsg.Attachment, r io.Reader) error {
			data, err := io.ReadAll(r)
			atts = append(atts, attached{a.ContentType, a.Filename, data})
			return err
		}})
		if err != nil || len(m.From) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		agents := []string{"rita.relay@postdesk.example", m.From[0].Address}
		for _, f := range fs {
			if strings.HasSuffix(f.From.Address, "@postdesk.example") {
				agents = append(agents, f.From.Address)
			}
		}
		ours := func(a string) bool {
			for _, x := range agents {
				if strings.EqualFold(x, a) {
					return true
				}
			}
			return false
		}
		c, ok := mailmsg.PickCustomer(fs, ours)
		if !ok || c.From.Address == "" || c.Date.IsZero() || ours(c.From.Address) {
			t.Fatalf("%s: no customer in the fixture itself: %+v %v", name, c, ok)
		}
		fixtures = append(fixtures, fixture{name, raw, m, agents, c, atts})
	}
	if len(fixtures) < 90 {
		t.Fatalf("only %d positive fixtures", len(fixtures))
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n := 0
		for _, fx := range fixtures {
			now := fx.customer.Date.Add(48 * time.Hour)
			in := ingest.New(db, ingest.Options{Now: func() time.Time { return now }, Agents: fx.agents})
			// Each wrapping goes to a mailbox of its own. The first forward
			// of an original is recovered; later ones (other wrappings, other
			// fixtures forwarding the same email) find it in the mailbox it
			// was recovered in, as an agent's forward to any mailbox does.
			// Either way the ticket is the customer's.
			//
			// The fixture itself, as inspect sees it: recovered or found,
			// and the reasons name its layout.
			_, d, err := in.Inspect(ctx, "inspect@example.com", bytes.NewReader(fx.raw))
			if err != nil || (d.Class != "forward_recovery" && d.Class != "duplicate") || !strings.Contains(strings.Join(d.Reasons, "\n"), ", "+fx.customer.Shape) {
				t.Errorf("%s: inspect: %v %s %q", fx.name, err, d.Class, d.Reasons)
			}
			for _, w := range wrappings {
				n++
				mb := newMailbox(t, db, fmt.Sprintf("support%d@example.com", n))
				raw := w.wrap(fx.raw, fx.msg, fx.atts, fx.msg.Date.Add(time.Hour))
				res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
				if err != nil {
					t.Fatalf("%s %s: %v", fx.name, w.name, err)
				}
				if res.Outcome != ingest.Recovered && res.Outcome != ingest.Duplicate {
					t.Errorf("%s wrapped %s: outcome %s (%s), want the customer's ticket from %s", fx.name, w.name, res.Outcome, res.Class, fx.customer.From.Address)
					continue
				}
				tk, err := db.Ticket(ctx, res.TicketID)
				if err != nil || tk.RequesterAddress != mailmsg.NormalizeAddress(fx.customer.From.Address) {
					t.Errorf("%s wrapped %s: ticket from %q (%v), want %q", fx.name, w.name, tk.RequesterAddress, err, fx.customer.From.Address)
				}
			}
		}
	})
}

func header(from, subject string, sent time.Time, extra string) string {
	return "From: " + from + "\r\nTo: support@example.com\r\nSubject: " + mime(subject) + "\r\nDate: " + sent.Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + fmt.Sprintf("wrap-%d", sent.UnixNano()) + "@postdesk.example>\r\nMIME-Version: 1.0\r\n" + extra
}

func mime(s string) string {
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

func addressList(list []mailmsg.Address) string {
	var s []string
	for _, a := range list {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

func textOf(m *mailmsg.Message) string {
	if m.Text != "" {
		return m.Text
	}
	return mailmsg.HTMLToText(m.HTML)
}

// wrapGmailText is Gmail's inline forward as text/plain.
func wrapGmailText(_ []byte, m *mailmsg.Message, atts []attached, sent time.Time) string {
	body := "Rita here, one more for you.\r\n\r\n---------- Forwarded message ---------\r\n" +
		"From: " + m.From[0].String() + "\r\nDate: " + m.Date.Format("Mon, Jan 2, 2006 at 3:04 PM") + "\r\n" +
		"Subject: " + m.Subject + "\r\nTo: " + addressList(m.To) + "\r\n\r\n\r\n" + textOf(m) + "\r\n"
	return header(relay, "Fwd: "+m.Subject, sent, withAttachments("text/plain", body, atts))
}

// wrapOutlookHTML is Outlook's inline forward, HTML only.
func wrapOutlookHTML(_ []byte, m *mailmsg.Message, atts []attached, sent time.Time) string {
	inner := m.HTML
	if inner == "" {
		var sb strings.Builder
		for l := range strings.Lines(m.Text) {
			sb.WriteString("<div>" + html.EscapeString(strings.TrimRight(l, "\r\n")) + "</div>")
		}
		inner = sb.String()
	}
	esc := html.EscapeString
	body := "<html><body><div>Rita here, one more for you.</div><hr style=\"display:inline-block;width:98%\"><div id=\"divRplyFwdMsg\" dir=\"ltr\">" +
		"<b>From:</b> " + esc(m.From[0].String()) + "<br><b>Sent:</b> " + m.Date.Format("Monday, January 2, 2006 3:04 PM") +
		"<br><b>To:</b> " + esc(addressList(m.To)) + "<br><b>Subject:</b> " + esc(m.Subject) + "</div><br>" + inner + "</body></html>"
	return header(relay, "FW: "+m.Subject, sent, withAttachments("text/html", body, atts))
}

// withAttachments is the Content-Type and body of an inline forward: the
// body alone, or with the original's attachments in a multipart/mixed.
func withAttachments(contentType, body string, atts []attached) string {
	part := "Content-Type: " + contentType + "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(body)) + "\r\n"
	if len(atts) == 0 {
		return part
	}
	var sb strings.Builder
	sb.WriteString("Content-Type: multipart/mixed; boundary=\"inline-b\"\r\n\r\n--inline-b\r\n" + part)
	for _, a := range atts {
		fmt.Fprintf(&sb, "--inline-b\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", a.contentType, a.filename, a.filename, base64.StdEncoding.EncodeToString(a.data))
	}
	sb.WriteString("--inline-b--\r\n")
	return sb.String()
}

// wrapAttached forwards the message as an attachment: message/rfc822
// (Outlook, Thunderbird) or a .eml file (a saved message).
func wrapAttached(contentType, filename string) func([]byte, *mailmsg.Message, []attached, time.Time) string {
	return func(raw []byte, m *mailmsg.Message, _ []attached, sent time.Time) string {
		part := "Content-Type: " + contentType + "\r\nContent-Disposition: attachment\r\n\r\n" + string(raw) + "\r\n"
		if filename != "" {
			part = "Content-Type: " + contentType + "; name=\"" + filename + "\"\r\nContent-Disposition: attachment; filename=\"" + filename +
				"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(raw) + "\r\n"
		}
		return header(relay, "FW: "+m.Subject, sent, "Content-Type: multipart/mixed; boundary=\"wrap-b\"\r\n\r\n") +
			"--wrap-b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nRita here, see the attached mail.\r\n" +
			"--wrap-b\r\n" + part + "--wrap-b--\r\n"
	}
}
