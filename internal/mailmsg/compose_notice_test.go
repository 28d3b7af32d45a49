package mailmsg

import (
	"bufio"
	"bytes"
	"errors"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func baseNotice() Notice {
	return Notice{
		From:      OutAddress{Name: "Postdesk", Address: "support@contoso.example"},
		To:        OutAddress{Name: "Ann Agent", Address: "ann@contoso.example"},
		Subject:   "3 updates on your tickets",
		MessageID: NewMessageID("support@contoso.example"),
		Date:      time.Date(2026, 3, 3, 10, 2, 0, 0, time.UTC),
		Intro:     "Here is what happened:",
		Items: []NoticeItem{
			{Text: "New ticket #4: Printer on fire", URL: "https://desk.contoso.example/tickets/4"},
			{Text: "Jane answered on #5 <b>", URL: "javascript:alert(1)"},
		},
		Outro: "Change what you hear of in your profile.",
	}
}

// A notice reads back cleanly as automatic mail (so no auto-responder
// answers it), with its items and only safe links.
func TestComposeNotice(t *testing.T) {
	n := baseNotice()
	raw, err := ComposeNotice(n)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := parseOut(t, raw)
	if m.Auto != AutoReply || !m.SuppressAutoResponse {
		t.Errorf("auto = %q (%s), suppress = %v: a notice must read as automatic mail", m.Auto, m.AutoReason, m.SuppressAutoResponse)
	}
	if m.Subject != n.Subject || m.MessageID != n.MessageID || len(m.From) != 1 || m.From[0].Address != "support@contoso.example" ||
		m.From[0].Name != "Postdesk" || len(m.To) != 1 || m.To[0].Address != "ann@contoso.example" || len(m.InReplyTo) != 0 {
		t.Errorf("header: subject %q id %q from %v to %v irt %v", m.Subject, m.MessageID, m.From, m.To, m.InReplyTo)
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q, want auto-generated (RFC 3834 5)", got)
	}
	if h.Get("X-Auto-Response-Suppress") != "All" {
		t.Errorf("X-Auto-Response-Suppress = %q", h.Get("X-Auto-Response-Suppress"))
	}
	for _, want := range []string{"Here is what happened:", "- New ticket #4: Printer on fire\n  https://desk.contoso.example/tickets/4", "Jane answered on #5 <b>", "in your profile."} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, "javascript") || strings.Contains(m.HTML, "javascript") {
		t.Errorf("an unsafe link was written:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, `<a href="https://desk.contoso.example/tickets/4">`) || !strings.Contains(m.HTML, "#5 &lt;b&gt;") {
		t.Errorf("html:\n%s", m.HTML)
	}
}

// Header injection through the subject or a name is impossible; a bad
// address or id is refused with a typed error.
func TestComposeNoticeRefuses(t *testing.T) {
	n := baseNotice()
	n.Subject = "Hi\r\nBcc: evil@example.com"
	n.To.Name = "Ann\r\nBcc: evil@example.com"
	raw, err := ComposeNotice(n)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := parseOut(t, raw)
	if len(m.To) != 1 || strings.Contains(string(raw), "\r\nBcc:") {
		t.Errorf("injected a header:\n%s", raw)
	}
	for _, bad := range []func(*Notice){
		func(n *Notice) { n.To.Address = "ann@contoso.example>, evil@example.com" },
		func(n *Notice) { n.From.Address = "" },
		func(n *Notice) { n.MessageID = "no id" },
	} {
		n := baseNotice()
		bad(&n)
		var hv *HeaderValueError
		if _, err := ComposeNotice(n); !errors.As(err, &hv) {
			t.Errorf("%+v: err = %v, want a HeaderValueError", n, err)
		}
	}
}
