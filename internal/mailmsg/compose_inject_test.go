package mailmsg

import (
	"bytes"
	"errors"
	"io"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message"
)

// injections are values an attacker (a customer's crafted name or subject,
// an agent's paste) could put into a field to add a header or end the
// header block.
var injections = []string{
	"\r\nBcc: evil@x.example",
	"\nX-Injected: 1",
	"\rX-Injected: 1",
	"\r\n\r\nbody injected",
	"nul\x00byte",
	"\r\n X-Folded: 1",
	"\u2028X-Injected: 1\u0085X-Injected: 2",
	"\"; filename=evil.exe",
	"=?utf-8?q?=0D=0ABcc:_evil@x.example?=",
	"\x1b[31mred\x7f",
}

// topHeaders is exactly what a reply with Cc, In-Reply-To, References and
// attachments carries.
var topHeaders = []string{"Cc", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id", "Mime-Version", "References", "Subject", "To"}

func TestComposeReplyNoHeaderInjection(t *testing.T) {
	t.Parallel()
	type field struct {
		name string
		set  func(r *Reply, v string)
	}
	// Free-text fields: composing succeeds, the text survives without its
	// control characters, and the structure is exactly as without it.
	free := []field{
		{"subject", func(r *Reply, v string) { r.Subject = "Printer " + v }},
		{"from name", func(r *Reply, v string) { r.From.Name = "Support " + v }},
		{"to name", func(r *Reply, v string) { r.To[0].Name = "Jane " + v }},
		{"cc name", func(r *Reply, v string) { r.Cc[0].Name = "Boss " + v }},
		{"attachment filename", func(r *Reply, v string) { r.Attachments[0].Filename = "a" + v + ".pdf" }},
		{"attachment type", func(r *Reply, v string) { r.Attachments[0].ContentType = "application/pdf" + v }},
		{"quote from", func(r *Reply, v string) { r.Quotes[0].From = "Jane " + v }},
		{"text", func(r *Reply, v string) { r.Text = "Hello " + v }},
		{"signature", func(r *Reply, v string) { r.Signature = "Bob " + v }},
		{"in-reply-to", func(r *Reply, v string) { r.InReplyTo = "parent" + v + "@x" }},
		{"references", func(r *Reply, v string) { r.References = []string{"root@x", "mid" + v + "@x"} }},
	}
	for _, f := range free {
		for _, v := range injections {
			r := injectReply()
			f.set(&r, v)
			raw, err := ComposeReply(r)
			if err != nil {
				t.Errorf("%s %q: %v", f.name, v, err)
				continue
			}
			checkStructure(t, f.name+" "+quote(v), raw, r)
		}
	}
	// Address and id fields: refused with a typed error.
	refused := []struct {
		field
		want error
	}{
		{field{"From", func(r *Reply, v string) { r.From.Address = "support" + v + "@x.example" }}, ErrInvalidAddress},
		{field{"To", func(r *Reply, v string) { r.To[0].Address = "jane@x.example" + v }}, ErrInvalidAddress},
		{field{"Cc", func(r *Reply, v string) { r.Cc[0].Address = v + "boss@x.example" }}, ErrInvalidAddress},
		{field{"Message-ID", func(r *Reply, v string) { r.MessageID = "pd.1" + v + "@x.example" }}, ErrInvalidMessageID},
	}
	for _, f := range refused {
		for _, v := range injections {
			r := injectReply()
			f.set(&r, v)
			raw, err := ComposeReply(r)
			var hv *HeaderValueError
			if !errors.Is(err, f.want) || !errors.As(err, &hv) || hv.Field != f.name {
				t.Errorf("%s %q: err = %v, want %v on %s", f.name, v, err, f.want, f.name)
			}
			if raw != nil {
				t.Errorf("%s %q: output despite the error", f.name, v)
			}
		}
	}
}

func injectReply() Reply {
	return Reply{
		From:       OutAddress{Name: "Support", Address: "support@x.example"},
		To:         []OutAddress{{Name: "Jane", Address: "jane@x.example"}},
		Cc:         []OutAddress{{Name: "Boss", Address: "boss@x.example"}},
		Subject:    "Printer",
		TicketID:   9,
		MessageID:  "pd.1@x.example",
		InReplyTo:  "parent@x",
		References: []string{"root@x"},
		Text:       "Hello",
		Signature:  "Bob",
		Quotes:     []Quote{{From: "Jane", Text: "Help"}},
		Attachments: []OutAttachment{
			{Filename: "a.pdf", ContentType: "application/pdf", Data: []byte("%PDF\r\n\x00")},
		},
	}
}

// checkStructure parses raw with net/mail and go-message (strict) and with
// our Parse (lenient) and holds that it has exactly the headers and parts
// a clean reply has, and that every value reads back as written (cleaned).
func checkStructure(t *testing.T, name string, raw []byte, r Reply) {
	t.Helper()
	assertLines(t, raw)
	nm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: net/mail: %v", name, err)
	}
	var keys []string
	for k, vs := range nm.Header {
		keys = append(keys, k)
		if len(vs) != 1 {
			t.Errorf("%s: %d %s fields", name, len(vs), k)
		}
	}
	slices.Sort(keys)
	want := topHeaders
	if strings.ContainsFunc(r.InReplyTo, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == '"' }) {
		// A parent id that cannot be written is dropped, not cleaned.
		want = slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == "In-Reply-To" })
	} else if !slices.Equal(nm.Header["In-Reply-To"], []string{"<" + r.InReplyTo + ">"}) {
		t.Errorf("%s: In-Reply-To = %q", name, nm.Header["In-Reply-To"])
	}
	if !slices.Equal(keys, want) {
		t.Errorf("%s: headers %q, want %q", name, keys, want)
	}
	for _, k := range []string{"From", "To", "Cc"} {
		if l, err := nm.Header.AddressList(k); err != nil || len(l) != 1 {
			t.Errorf("%s: net/mail %s = %v, %v", name, k, l, err)
		}
	}
	// Every part: only MIME headers, and the expected tree.
	var shape []string
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: go-message: %v", name, err)
	}
	err = e.Walk(func(path []int, p *message.Entity, err error) error {
		if err != nil {
			return err
		}
		typ, _, _ := p.Header.ContentType()
		shape = append(shape, typ)
		if len(path) == 0 {
			return nil
		}
		f := p.Header.Fields()
		for f.Next() {
			switch k := f.Key(); k {
			case "Content-Type", "Content-Transfer-Encoding", "Content-Disposition":
			default:
				t.Errorf("%s: part %v has header %q", name, path, k)
			}
		}
		if typ == "application/pdf" || typ == "application/octet-stream" {
			b, _ := io.ReadAll(p.Body)
			if !bytes.Equal(b, r.Attachments[0].Data) {
				t.Errorf("%s: attachment bytes %q", name, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: walk: %v", name, err)
	}
	if len(shape) != 5 || shape[0] != "multipart/mixed" || shape[1] != "multipart/alternative" || shape[2] != "text/plain" || shape[3] != "text/html" {
		t.Errorf("%s: parts %q", name, shape)
	}

	m, files := parseOut(t, raw)
	if want := ReplySubject(r.Subject, r.TicketID); m.Subject != want {
		t.Errorf("%s: Subject = %q, want %q", name, m.Subject, want)
	}
	for _, c := range []struct {
		got  []Address
		want OutAddress
	}{{m.From, r.From}, {m.To, r.To[0]}, {m.Cc, r.Cc[0]}} {
		want := Address{Name: defuseWords(oneLine(c.want.Name)), Address: c.want.Address}
		if len(c.got) != 1 || c.got[0] != want {
			t.Errorf("%s: address %+v, want %+v", name, c.got, want)
		}
	}
	if !strings.HasPrefix(m.Text, bodyText(r.Text)+"\n\n-- \n"+bodyText(r.Signature)+"\n\n") {
		t.Errorf("%s: Text = %q", name, m.Text)
	}
	if len(m.Attachments) != 1 || len(files) != 1 || strings.ContainsFunc(m.Attachments[0].Filename, isControl) {
		t.Errorf("%s: attachments %+v", name, m.Attachments)
	}
	if m.MessageID != r.MessageID || len(m.References) == 0 || m.References[0] != "root@x" {
		t.Errorf("%s: ids %q %q", name, m.MessageID, m.References)
	}
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) }
