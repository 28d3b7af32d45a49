package mailmsg

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseOut parses a composed message with our own parser, collecting the
// attachments' bytes, and fails on any Problem: what we write must read
// cleanly.
func parseOut(t *testing.T, raw []byte) (*Message, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{}
	m, err := Parse(bytes.NewReader(raw), ParseOptions{Attachment: func(a *Attachment, r io.Reader) error {
		b, err := io.ReadAll(r)
		files[a.Filename] = b
		return err
	}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(m.Problems) > 0 {
		t.Fatalf("Parse problems: %q\n%s", m.Problems, raw)
	}
	return m, files
}

func baseReply() Reply {
	return Reply{
		From:       OutAddress{Name: "Contoso Support", Address: "support@contoso.example"},
		To:         []OutAddress{{Name: "Jane Cooper", Address: "jane.cooper@customer.example"}},
		Cc:         []OutAddress{{Address: "boss@customer.example"}, {Name: "Ops, Team", Address: "ops@customer.example"}},
		Subject:    "Printer on fire",
		TicketID:   42,
		MessageID:  "pd.abc.def@contoso.example",
		InReplyTo:  "parent@customer.example",
		References: []string{"root@customer.example", "mid@contoso.example"},
		Text:       "Hello Jane,\r\n\r\nwe sent a technician.\r\nBest",
		Signature:  "Bob\nContoso Support",
		Quotes: []Quote{
			{From: "Jane Cooper <jane.cooper@customer.example>", Date: time.Date(2026, 3, 4, 10, 5, 0, 0, time.UTC), Text: "It is still burning.\n\n> earlier"},
			{From: "Contoso Support <support@contoso.example>", Date: time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC), Text: "Did you try turning it off?"},
		},
		Date: time.Date(2026, 3, 4, 11, 0, 0, 0, time.FixedZone("", 3600)),
	}
}

func TestComposeReplyRoundTrip(t *testing.T) {
	t.Parallel()
	r := baseReply()
	r.Attachments = []OutAttachment{
		{Filename: "report.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.7\x00\xff binary")},
		{Filename: "Überweisung März 2026 — ÄÖÜ.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("ä\r\nb\n")},
		{Filename: "", ContentType: "not a type", Data: []byte{0, 1, 2}},
	}
	raw, err := ComposeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	m, files := parseOut(t, raw)
	if m.MessageID != r.MessageID {
		t.Errorf("Message-ID = %q", m.MessageID)
	}
	if !slices.Equal(m.InReplyTo, []string{"parent@customer.example"}) {
		t.Errorf("In-Reply-To = %q", m.InReplyTo)
	}
	wantRefs := []string{"root@customer.example", "mid@contoso.example", "parent@customer.example"}
	if !slices.Equal(m.References, wantRefs) {
		t.Errorf("References = %q, want %q", m.References, wantRefs)
	}
	if m.Subject != "Re: Printer on fire [#42]" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if got := addrs(m.From); got != "Contoso Support <support@contoso.example>" {
		t.Errorf("From = %q", got)
	}
	if got := addrs(m.To); got != "Jane Cooper <jane.cooper@customer.example>" {
		t.Errorf("To = %q", got)
	}
	if got := addrs(m.Cc); got != "boss@customer.example; Ops, Team <ops@customer.example>" {
		t.Errorf("Cc = %q", got)
	}
	if !m.Date.Equal(r.Date) {
		t.Errorf("Date = %v", m.Date)
	}
	if m.Auto != AutoNone || m.SuppressAutoResponse {
		t.Errorf("an agent's reply reads as automatic: %q %v", m.Auto, m.SuppressAutoResponse)
	}
	wantText := "Hello Jane,\n\nwe sent a technician.\nBest\n\n-- \nBob\nContoso Support\n\n" +
		"On Wed, 4 Mar 2026 at 10:05, Jane Cooper <jane.cooper@customer.example> wrote:\n" +
		"> It is still burning.\n>\n>> earlier\n\n" +
		"On Tue, 3 Mar 2026 at 09:00, Contoso Support <support@contoso.example> wrote:\n" +
		"> Did you try turning it off?\n"
	if m.Text != wantText {
		t.Errorf("Text =\n%q\nwant\n%q", m.Text, wantText)
	}
	for _, s := range []string{"<p>Hello Jane,</p>", "we sent a technician.<br>", "-- <br>", "<blockquote", "It is still burning."} {
		if !strings.Contains(m.HTML, s) {
			t.Errorf("HTML lacks %q:\n%s", s, m.HTML)
		}
	}
	wantFiles := map[string][]byte{
		"report.pdf":                      r.Attachments[0].Data,
		"Überweisung März 2026 — ÄÖÜ.txt": r.Attachments[1].Data,
		"attachment-3.bin":                r.Attachments[2].Data,
	}
	if len(m.Attachments) != 3 || len(files) != 3 {
		t.Fatalf("attachments = %+v", m.Attachments)
	}
	for name, data := range wantFiles {
		if !bytes.Equal(files[name], data) {
			t.Errorf("attachment %q = %q, want %q", name, files[name], data)
		}
	}
	if m.Attachments[0].ContentType != "application/pdf" || m.Attachments[2].ContentType != "application/octet-stream" {
		t.Errorf("types: %q, %q", m.Attachments[0].ContentType, m.Attachments[2].ContentType)
	}
	// net/mail, the strict reader, agrees on the envelope.
	nm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := nm.Header.Get("Mime-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	if ct := nm.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/mixed;") {
		t.Errorf("Content-Type = %q", ct)
	}
	// A non-ASCII filename is an RFC 2231 parameter, which Go's own MIME
	// reader (like Python's email and Mutt) reads; RFC 2047 words inside
	// its quotes were shown as they are.
	var dispositions []string
	for line := range strings.Lines(strings.ReplaceAll(string(raw), "\r\n ", " ")) {
		if v, ok := strings.CutPrefix(line, "Content-Disposition: attachment"); ok {
			dispositions = append(dispositions, "attachment"+strings.TrimSpace(v))
		}
	}
	if len(dispositions) != 3 {
		t.Fatalf("Content-Disposition fields %q", dispositions)
	}
	if _, params, err := mime.ParseMediaType(dispositions[1]); err != nil || params["filename"] != "Überweisung März 2026 — ÄÖÜ.txt" || strings.Contains(dispositions[1], "=?") {
		t.Errorf("Content-Disposition %q reads as %q (%v)", dispositions[1], params["filename"], err)
	}
	assertLines(t, raw)
}

func TestComposeReplyWithoutAttachmentsIsAlternative(t *testing.T) {
	t.Parallel()
	r := baseReply()
	r.Quotes, r.Signature, r.InReplyTo, r.References = nil, "", "", nil
	r.Text = "Grüße aus Köln 👋 — 日本語のテキスト\nzweite Zeile <script>alert(1)</script> & co"
	raw, err := ComposeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct := nm.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, k := range []string{"In-Reply-To", "References", "Auto-Submitted", "Cc"} {
		if k != "Cc" && nm.Header.Get(k) != "" {
			t.Errorf("%s written: %q", k, nm.Header.Get(k))
		}
	}
	if !bytes.Contains(raw, []byte("Content-Transfer-Encoding: quoted-printable")) {
		t.Error("text parts are not quoted-printable")
	}
	m, _ := parseOut(t, raw)
	if m.Text != r.Text+"\n" {
		t.Errorf("Text = %q", m.Text)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co") {
		t.Errorf("HTML not escaped: %s", m.HTML)
	}
	if !strings.Contains(m.HTML, "日本語のテキスト<br>") {
		t.Errorf("HTML lost 8-bit text: %s", m.HTML)
	}
	assertLines(t, raw)
}

func TestComposeReplyAuto(t *testing.T) {
	t.Parallel()
	r := baseReply()
	r.Auto = true
	raw, err := ComposeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := nm.Header.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", v)
	}
	if v := nm.Header.Get("X-Auto-Response-Suppress"); v != "All" {
		t.Errorf("X-Auto-Response-Suppress = %q", v)
	}
	m, _ := parseOut(t, raw)
	if m.Auto != AutoReply || !m.SuppressAutoResponse {
		t.Errorf("our own parser does not see it as automatic: %q", m.Auto)
	}
}

func TestComposeReplyLongSubjectFolds(t *testing.T) {
	t.Parallel()
	for _, subject := range []string{
		strings.Repeat("Überfällige Rechnung für März — ", 12),
		strings.Repeat("日本語の件名", 40),
		strings.Repeat("plain ascii words ", 30),
		"A" + strings.Repeat("é", 600) + "👋",
	} {
		r := baseReply()
		r.Subject = subject
		raw, err := ComposeReply(r)
		if err != nil {
			t.Fatal(err)
		}
		assertLines(t, raw)
		m, _ := parseOut(t, raw)
		if want := ReplySubject(subject, 42); m.Subject != want {
			t.Errorf("Subject =\n%q\nwant\n%q", m.Subject, want)
		}
		nm, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := new(mime.WordDecoder).DecodeHeader(nm.Header.Get("Subject"))
		if err != nil || dec != ReplySubject(subject, 42) {
			t.Errorf("net/mail+mime decode = %q, %v", dec, err)
		}
	}
}

// assertLines checks RFC 5322 2.1.1 on the whole message: CRLF only, and
// no header line over 78 characters.
func assertLines(t *testing.T, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("bare CR or LF in output")
	}
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 78 {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
}

func addrs(l []Address) string {
	var s []string
	for _, a := range l {
		s = append(s, a.String())
	}
	return strings.Join(s, "; ")
}

func TestReplySubject(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		id   int64
		want string
	}{
		{"Printer on fire", 7, "Re: Printer on fire [#7]"},
		{"Re: Printer on fire", 7, "Re: Printer on fire [#7]"},
		{"RE: Re: re:Printer", 7, "Re: Printer [#7]"},
		{"AW: WG: Rechnung", 7, "Re: WG: Rechnung [#7]"},
		{"Aw: SV: Antw: Re[2]: Re(3): RE : x", 7, "Re: x [#7]"},
		{"Re: Printer [#7]", 7, "Re: Printer [#7]"},
		{"Re: Re: Printer on fire [#7]", 7, "Re: Printer on fire [#7]"},
		{"Printer [#8]", 7, "Re: Printer [#8] [#7]"},
		{"", 7, "Re: [#7]"},
		{"   ", 12, "Re: [#12]"},
		{"Re:", 7, "Re: [#7]"},
		{"Return policy", 7, "Re: Return policy [#7]"},
		{"Aware of it", 7, "Re: Aware of it [#7]"},
		{"Hello\r\nBcc: evil@x", 7, "Re: Hello Bcc: evil@x [#7]"},
		{"a\x00b\tc\u202ed", 7, "Re: a b c d [#7]"},
		{"Re：全角", 7, "Re: 全角 [#7]"},
	} {
		if got := ReplySubject(c.in, c.id); got != c.want {
			t.Errorf("ReplySubject(%q, %d) = %q, want %q", c.in, c.id, got, c.want)
		}
	}
}

func TestNewMessageID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := NewMessageID("support@Contoso.example")
		if !strings.HasPrefix(id, "pd.") || !strings.HasSuffix(id, "@contoso.example") || !validMsgID(id) {
			t.Fatalf("NewMessageID = %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, d := range []string{"contoso.example", "x@contoso.example"} {
		if id := NewMessageID(d); !strings.HasSuffix(id, "@contoso.example") {
			t.Errorf("NewMessageID(%q) = %q", d, id)
		}
	}
	for _, d := range []string{"", "bad domain", "x\r\ny", "a>b", "[1.2.3.4]"} {
		if id := NewMessageID(d); !strings.HasSuffix(id, "@postdesk.invalid") {
			t.Errorf("NewMessageID(%q) = %q", d, id)
		}
	}
}

func TestReplyReferencesBounded(t *testing.T) {
	t.Parallel()
	var refs []string
	for i := range 60 {
		refs = append(refs, "m"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+"@x")
	}
	refs = append(refs, "bad id@x", "<bracketed@x>", "m"+"a"+"@x") // a duplicate of the first
	got := replyReferences(refs, "parent@x")
	if len(got) != MaxReferences || got[0] != "ma@x" || got[len(got)-1] != "parent@x" || got[len(got)-2] != "bracketed@x" {
		t.Errorf("replyReferences = %q", got)
	}
	if got := replyReferences([]string{"a@x", "p@x"}, "p@x"); !slices.Equal(got, []string{"a@x", "p@x"}) {
		t.Errorf("parent repeated: %q", got)
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"jane@x.example", "jane.cooper+tag@sub.x.example", "o'brien@x.example"} {
		if err := CheckAddress(ok); err != nil {
			t.Errorf("CheckAddress(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "jane", "@x", "jane@", "Jane <jane@x>", "<jane@x>", "jane@x\r\nBcc: evil@x",
		"jane@x\x00", "jane @x", "a@b, c@d", "jane@x (comment)", `"a b"@x`, "a@b@c", "jane@.x", "jane@x..y"} {
		err := CheckAddress(bad)
		var hv *HeaderValueError
		if !errors.Is(err, ErrInvalidAddress) || !errors.As(err, &hv) || hv.Value != bad {
			t.Errorf("CheckAddress(%q) = %v", bad, err)
		}
	}
}
