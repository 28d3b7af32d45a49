package mailmsg

import (
	"bytes"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Notice is an automatic email to one of the desk's own people (an agent
// or admin): a notification of new tickets, answers and assignments, or a
// warning about a mailbox. It is never a reply in a customer's thread.
type Notice struct {
	From      OutAddress
	To        OutAddress
	Subject   string // free text; control characters are dropped
	MessageID string // without angle brackets (NewMessageID)
	Date      time.Time
	// Intro is the first paragraph, Items the things it is about (one
	// line each, with a link), Outro the last paragraph.
	Intro string
	Items []NoticeItem
	Outro string
}

// NoticeItem is one thing a Notice is about.
type NoticeItem struct {
	Text string
	// URL is a link to it (an absolute http or https URL; anything else is
	// left out).
	URL string
}

// ComposeNotice writes n as a complete message: multipart/alternative of
// text/plain and text/html (quoted-printable UTF-8), marked as automatic
// mail so that nobody's auto-responder answers it: Auto-Submitted:
// auto-generated (RFC 3834 5) and X-Auto-Response-Suppress: All. It fails
// with a *HeaderValueError when From, To or MessageID cannot be written.
func ComposeNotice(n Notice) ([]byte, error) {
	from, err := outAddresses("From", []OutAddress{n.From})
	if err != nil {
		return nil, err
	}
	to, err := outAddresses("To", []OutAddress{n.To})
	if err != nil {
		return nil, err
	}
	if !strictMsgID(n.MessageID) {
		return nil, &HeaderValueError{Field: "Message-ID", Value: n.MessageID, Err: ErrInvalidMessageID}
	}
	date := n.Date
	if date.IsZero() {
		date = time.Now()
	}
	var h gomail.Header
	// Set bottom up: go-message writes the fields last set first.
	h.Set("X-Auto-Response-Suppress", "All")
	h.Set("Auto-Submitted", "auto-generated")
	h.SetMessageID(n.MessageID)
	setSubject(&h, truncateBytes(oneLine(n.Subject), maxSubjectBytes))
	h.SetAddressList("To", to)
	h.SetAddressList("From", from)
	h.SetDate(date)
	text, htm := renderNotice(n)
	var buf bytes.Buffer
	w, err := gomail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose notice: %w", err)
	}
	if err := writeAlternatives(w, text, htm); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderNotice writes the text and HTML bodies of n.
func renderNotice(n Notice) (text, htm string) {
	var t, h strings.Builder
	h.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>` + "\n")
	if intro := bodyText(n.Intro); intro != "" {
		t.WriteString(intro + "\n\n")
		h.WriteString(paragraphs(intro))
	}
	if len(n.Items) > 0 {
		h.WriteString("<ul>\n")
		for _, it := range n.Items {
			line := oneLine(it.Text)
			link := noticeLink(it.URL)
			t.WriteString("- " + line + "\n")
			h.WriteString("<li>" + html.EscapeString(line))
			if link != "" {
				t.WriteString("  " + link + "\n")
				h.WriteString(`<br><a href="` + html.EscapeString(link) + `">` + html.EscapeString(link) + "</a>")
			}
			h.WriteString("</li>\n")
		}
		h.WriteString("</ul>\n")
		t.WriteString("\n")
	}
	if outro := bodyText(n.Outro); outro != "" {
		t.WriteString(outro + "\n")
		h.WriteString(paragraphs(outro))
	}
	h.WriteString("</body></html>\n")
	return strings.TrimRight(t.String(), "\n") + "\n", h.String()
}

// noticeLink returns u when it is an absolute http or https URL without
// spaces or control characters, else "".
func noticeLink(u string) string {
	if u == "" || strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return p.String()
}
