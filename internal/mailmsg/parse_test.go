package mailmsg

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseFile(t testing.TB, name string) *Message {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Parse(f, ParseOptions{})
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return m
}

// fixture is what a fixture must parse to; zero fields are not checked
// unless noted.
type fixture struct {
	file        string
	messageID   string
	inReplyTo   string
	references  int
	subject     string
	from        string // "Name <addr>"
	date        string // RFC 3339
	dateSource  string
	text        []string     // substrings of Text
	noText      []string     // substrings Text must not have
	html        string       // substring of HTML
	attachments []Attachment // Filename, ContentType, ContentID, Inline, Size checked
	auto        AutoKind
	bulk        bool
	suppress    bool
	bounced     string
	problems    []string // substrings, each must match one Problem; nil means no problems
}

var fixtures = []fixture{
	{
		file:      "outlook_desktop.eml",
		messageID: "AM9PR07MB71710F3C1A9B4E6C2D7F8E1A95EC2@AM9PR07MB7171.eurprd07.prod.outlook.com",
		subject:   "Rechnung 2024-0413 überfällig",
		from:      "Jürgen Müller <juergen.mueller@contoso-gmbh.de>",
		date:      "2024-05-14T09:12:41Z", dateSource: "date",
		text: []string{"Können Sie bitte den Zahlungsstatus prüfen?", "Mit freundlichen Grüßen"},
		html: `<p class="MsoNormal">`,
	},
	{
		file:       "outlook_web_reply.eml",
		messageID:  "DB8PR09MB3355A1B2C3D4E5F60718293AD9ED2@DB8PR09MB3355.eurprd09.prod.outlook.com",
		inReplyTo:  "ticket-1042-reply-2@postdesk.example",
		references: 3,
		subject:    "RE: [#1042] Export fails with timeout",
		from:       "Priya Raman <priya.raman@fabrikam.example>",
		text:       []string{"Still failing after the update", "Could you try again"},
		html:       "elementToProof",
	},
	{
		file:    "gmail_with_attachment.eml",
		subject: "Invoice for order 55871",
		from:    "Anna Kowalska <anna.kowalska@gmail.com>",
		date:    "2024-05-16T11:30:52+02:00", dateSource: "date",
		text:        []string{"The amount was charged twice."},
		noText:      []string{"<div"},
		html:        `<div dir="ltr">`,
		attachments: []Attachment{{Filename: "Faktura 55871 (kopia).pdf", ContentType: "application/pdf", ContentID: "f_lw8q1x2y0", Size: 125}},
	},
	{
		file:        "gmail_inline_image.eml",
		subject:     "Chyba při přihlášení",
		from:        "Tomáš Novák <tomas.novak@gmail.com>",
		text:        []string{"tato chyba se zobrazí při přihlášení:"},
		html:        `src="cid:ii_lw9a2b3c0"`,
		attachments: []Attachment{{Filename: "screenshot.png", ContentType: "image/png", ContentID: "ii_lw9a2b3c0", Inline: true, Size: 70}},
	},
	{
		file:    "apple_mail.eml",
		subject: "Problème de facturation",
		from:    "Claire Dubois <claire.dubois@icloud.com>",
		text:    []string{"J’ai été facturée deux fois ce mois-ci. Pouvez-vous vérifier ?", "Envoyé de mon Mac"},
		html:    "Merci d’avance",
	},
	{
		file:       "thunderbird.eml",
		inReplyTo:  "ticket-2001-reply-1@postdesk.example",
		references: 1,
		from:       "Lars Eriksson <lars@example.org>",
		text: []string{
			"It seems the links are valid for only a few minutes, which is too short when mail is delayed by our gateway.",
			"> we have sent you a new password reset link. Please use it within the next hour.",
			"\n-- \nLars Eriksson",
		},
	},
	{
		file:     "mailing_list.eml",
		subject:  "[dev] Release 3.2.1 is out",
		bulk:     true,
		suppress: true,
		text:     []string{"IMAP IDLE reconnect bug"},
	},
	{
		file:      "auto_reply_rfc3834.eml",
		inReplyTo: "ticket-1077-ack@postdesk.example",
		auto:      AutoReply,
		bulk:      true,
		suppress:  true,
		text:      []string{"I am on holiday"},
	},
	{
		file:      "out_of_office_exchange.eml",
		subject:   "Automatic reply: [#1090] Shipment delayed",
		inReplyTo: "ticket-1090-reply-1@postdesk.example",
		auto:      AutoReply,
		suppress:  true,
		text:      []string{"I am out of the office until Monday 27 May"},
		noText:    []string{"\r"},
	},
	{
		file:     "bounce_dsn.eml",
		from:     "Mail Delivery System <MAILER-DAEMON@mx.postdesk.example>",
		date:     "2024-05-23T09:15:02Z",
		auto:     AutoBounce,
		suppress: true,
		bounced:  "ticket-1101-reply-3@postdesk.example",
		text:     []string{"could not\nbe delivered"},
		noText:   []string{"Reporting-MTA"},
		attachments: []Attachment{
			{Filename: "attachment-1.txt", ContentType: "message/delivery-status", Size: 417},
			{Filename: "attachment-2.txt", ContentType: "text/rfc822-headers", Size: 462},
		},
	},
	{
		file:     "bounce_exchange.eml",
		subject:  "Undeliverable: Re: [#1115] Refund request",
		auto:     AutoBounce,
		suppress: true,
		bounced:  "ticket-1115-reply-2@postdesk.example",
		text:     []string{"couldn't be delivered"},
		attachments: []Attachment{
			{Filename: "attachment-1.txt", ContentType: "message/delivery-status", Size: 346},
			{Filename: "Re_ [#1115] Refund request.eml", ContentType: "message/rfc822", Size: 304},
		},
	},
	{
		file:    "iso_8859_1.eml",
		subject: "Contraseña olvidada (área de cliente)",
		from:    "André Lefeño <andre@example.es>",
		text:    []string{"olvidé mi contraseña y el enlace de recuperación no llega. ¿Podrían ayudarme?"},
	},
	{
		file:    "windows_1251.eml",
		subject: "Проблема с оплатой",
		from:    "Алексей Петров <a.petrov@example.ru>",
		date:    "2024-05-26T09:05:17+03:00",
		text:    []string{"Оплата по счёту не проходит"},
	},
	{
		file:    "iso_2022_jp.eml",
		subject: "お問い合わせ",
		from:    "山田 太郎 <taro.yamada@example.jp>",
		text:    []string{"ログインできません。"},
	},
	{
		file:        "broken_mime.eml",
		subject:     "Broken message été test",
		text:        []string{"Café with undeclared latin1"},
		html:        "<p>Truncated part without closing boundary",
		attachments: []Attachment{{Filename: "passwd.bin", ContentType: "application/octet-stream", Size: 12}},
		problems: []string{"invalid bytes", "broken base64: 3 invalid characters", "missing closing MIME boundary",
			`unknown charset "x-unknown-charset-42"`},
	},
	{
		file: "no_headers.eml",
		text: []string{"Hello support,\n\nmy printer does not work."},
	},
	{
		file: "bad_date.eml",
		from: "Legacy, App <noreply-legacy@example.net>",
		date: "2024-05-29T13:37:00Z", dateSource: "received",
		problems: []string{`bad date "sometime yesterday afternoon"`},
	},
	{
		file:        "hostile_html.eml",
		text:        []string{"Dear customer,", "Log in <https://phish.example/login>"},
		noText:      []string{"alert", "steal"},
		html:        "<script>",
		attachments: []Attachment{{Filename: "attachment-1.gif", ContentType: "image/gif", ContentID: "logo@phish.example", Inline: true, Size: 42}},
	},
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.eml")
	if len(files) != len(fixtures) {
		t.Errorf("%d fixture files, %d table entries", len(files), len(fixtures))
	}
	for _, fx := range fixtures {
		t.Run(strings.TrimSuffix(fx.file, ".eml"), func(t *testing.T) {
			t.Parallel()
			m := parseFile(t, fx.file)
			check := func(field, got, want string) {
				t.Helper()
				if want != "" && got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("MessageID", m.MessageID, fx.messageID)
			if fx.inReplyTo != "" && !slices.Equal(m.InReplyTo, []string{fx.inReplyTo}) {
				t.Errorf("InReplyTo = %q, want [%q]", m.InReplyTo, fx.inReplyTo)
			}
			if fx.references != 0 && len(m.References) != fx.references {
				t.Errorf("References = %q, want %d", m.References, fx.references)
			}
			check("Subject", m.Subject, fx.subject)
			if fx.from != "" {
				if len(m.From) != 1 {
					t.Errorf("From = %v, want %s", m.From, fx.from)
				} else {
					check("From", m.From[0].String(), fx.from)
				}
			}
			if fx.date != "" {
				check("Date", m.Date.Format(time.RFC3339), fx.date)
			}
			check("DateSource", m.DateSource, fx.dateSource)
			if m.Date.IsZero() && fx.file != "no_headers.eml" {
				t.Error("Date is zero")
			}
			for _, s := range fx.text {
				if !strings.Contains(m.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, m.Text)
				}
			}
			for _, s := range fx.noText {
				if strings.Contains(m.Text, s) {
					t.Errorf("Text has %q:\n%s", s, m.Text)
				}
			}
			if fx.html != "" && !strings.Contains(m.HTML, fx.html) {
				t.Errorf("HTML lacks %q:\n%s", fx.html, m.HTML)
			}
			if len(m.Attachments) != len(fx.attachments) {
				t.Errorf("Attachments = %+v, want %+v", m.Attachments, fx.attachments)
			} else {
				for i, want := range fx.attachments {
					got := m.Attachments[i]
					if len(got.SHA256) != 64 {
						t.Errorf("attachment %d SHA256 = %q", i, got.SHA256)
					}
					got.SHA256, got.Part, got.body = "", "", bodyPrint{}
					if got != want {
						t.Errorf("attachment %d = %+v, want %+v", i, got, want)
					}
				}
			}
			if m.Auto != fx.auto {
				t.Errorf("Auto = %q (%s), want %q", m.Auto, m.AutoReason, fx.auto)
			}
			if m.Auto != AutoNone && m.AutoReason == "" {
				t.Error("AutoReason empty")
			}
			if m.Bulk != fx.bulk {
				t.Errorf("Bulk = %v (%s), want %v", m.Bulk, m.BulkReason, fx.bulk)
			}
			if m.SuppressAutoResponse != fx.suppress {
				t.Errorf("SuppressAutoResponse = %v, want %v", m.SuppressAutoResponse, fx.suppress)
			}
			check("BouncedMessageID", m.BouncedMessageID, fx.bounced)
			if fx.bounced == "" && m.BouncedMessageID != "" {
				t.Errorf("BouncedMessageID = %q, want none", m.BouncedMessageID)
			}
			if len(m.Problems) != len(fx.problems) {
				t.Errorf("Problems = %q, want %d matching %q", m.Problems, len(fx.problems), fx.problems)
			}
			for _, want := range fx.problems {
				if !slices.ContainsFunc(m.Problems, func(p string) bool { return strings.Contains(p, want) }) {
					t.Errorf("no Problem matches %q in %q", want, m.Problems)
				}
			}
		})
	}
}

func TestAttachmentCallback(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/gmail_with_attachment.eml")
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	m, err := Parse(bytes.NewReader(raw), ParseOptions{Attachment: func(a *Attachment, r io.Reader) error {
		if a.Filename != "Faktura 55871 (kopia).pdf" {
			t.Errorf("Filename = %q", a.Filename)
		}
		got, err = io.ReadAll(r)
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("%PDF-1.4")) {
		t.Errorf("content = %q", got)
	}
	sum := sha256.Sum256(got)
	if m.Attachments[0].SHA256 != hex.EncodeToString(sum[:]) || m.Attachments[0].Size != int64(len(got)) {
		t.Errorf("attachment = %+v, content %d bytes", m.Attachments[0], len(got))
	}

	boom := errors.New("disk full")
	_, err = Parse(bytes.NewReader(raw), ParseOptions{Attachment: func(*Attachment, io.Reader) error { return boom }})
	if !errors.Is(err, boom) {
		t.Errorf("Parse with failing callback = %v, want %v", err, boom)
	}
}

type failingReader struct{ r io.Reader }

func (f failingReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err == io.EOF {
		return n, io.ErrClosedPipe
	}
	return n, err
}

func TestParseReaderError(t *testing.T) {
	t.Parallel()
	raw, _ := os.ReadFile("testdata/apple_mail.eml")
	if _, err := Parse(failingReader{bytes.NewReader(raw)}, ParseOptions{}); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Parse = %v, want %v", err, io.ErrClosedPipe)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("é", 1000) // 2000 bytes
	m, err := Parse(strings.NewReader("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+body), ParseOptions{MaxBodyBytes: 1001})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Text) != 1000 || !strings.HasPrefix(body, m.Text) {
		t.Errorf("Text is %d bytes, want 1000 (cut on a rune boundary)", len(m.Text))
	}
	if !slices.ContainsFunc(m.Problems, func(p string) bool { return strings.Contains(p, "truncated") }) {
		t.Errorf("Problems = %q, want a truncation", m.Problems)
	}
}

// TestLargeAttachmentStreams parses a 50 MB base64 attachment generated on
// the fly and checks it is streamed, not buffered.
func TestLargeAttachmentStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large message")
	}
	t.Parallel()
	const size = 50 << 20
	pr, sum := largeMessage(size)
	var streamed int64
	m, err := Parse(pr, ParseOptions{Attachment: func(a *Attachment, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		streamed = n
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("Attachments = %+v", m.Attachments)
	}
	a := m.Attachments[0]
	if a.Size != size || streamed != size || a.SHA256 != <-sum {
		t.Errorf("attachment %+v, streamed %d, want %d bytes", a, streamed, size)
	}
	if m.Text != "See attached.\n" {
		t.Errorf("Text = %q", m.Text)
	}
}

// largeMessage writes a message with one attachment of size pseudo-random
// bytes into a pipe; the channel yields the attachment's SHA-256.
func largeMessage(size int) (*io.PipeReader, <-chan string) {
	pr, pw := io.Pipe()
	sum := make(chan string, 1)
	go func() {
		h := sha256.New()
		io.WriteString(pw, "From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\n\r\n"+
			"--b\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		chunk := make([]byte, 57*1024)
		line := make([]byte, 0, 80*1024)
		var x uint32 = 1
		for left := size; left > 0; {
			n := min(left, len(chunk))
			for i := range chunk[:n] {
				x = x*1664525 + 1013904223
				chunk[i] = byte(x >> 24)
			}
			h.Write(chunk[:n])
			line = line[:0]
			for i := 0; i < n; i += 57 {
				enc := make([]byte, 76)
				j := min(i+57, n)
				base64.StdEncoding.Encode(enc, chunk[i:j])
				line = append(line, enc[:base64.StdEncoding.EncodedLen(j-i)]...)
				line = append(line, '\r', '\n')
			}
			pw.Write(line)
			left -= n
		}
		io.WriteString(pw, "--b--\r\n")
		sum <- hex.EncodeToString(h.Sum(nil))
		pw.Close()
	}()
	return pr, sum
}

func TestEncodedFilenames(t *testing.T) {
	t.Parallel()
	msg := "Content-Type: multipart/mixed; boundary=x\n\n" +
		"--x\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf\n\nA\n" +
		"--x\nContent-Type: application/pdf; name=\"=?UTF-8?B?0L7RgtGH0ZHRgi5wZGY=?=\"\nContent-Disposition: attachment\n\nB\n" +
		"--x\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*0*=utf-8''long%20;filename*1=\"name.pdf\"\n\nC\n" +
		"--x\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=my file.pdf\n\nD\n" +
		"--x--\n"
	m, err := Parse(strings.NewReader(msg), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range m.Attachments {
		names = append(names, a.Filename)
	}
	want := []string{"résumé.pdf", "отчёт.pdf", "long name.pdf", "my file.pdf"}
	if !slices.Equal(names, want) {
		t.Errorf("filenames = %q, want %q (problems %q)", names, want, m.Problems)
	}
}

func TestBodySelection(t *testing.T) {
	t.Parallel()
	// Alternative parts replace each other; a list footer after them is appended.
	msg := "Content-Type: multipart/mixed; boundary=m\n\n--m\n" +
		"Content-Type: multipart/alternative; boundary=a\n\n" +
		"--a\nContent-Type: text/plain\n\nfirst plain\n--a\nContent-Type: text/plain\n\nbetter plain\n" +
		"--a\nContent-Type: text/html\n\n<p>html</p>\n--a--\n" +
		"--m\nContent-Type: text/plain\n\nfooter\n--m--\n"
	m, err := Parse(strings.NewReader(msg), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "better plain\nfooter" || m.HTML != "<p>html</p>" {
		t.Errorf("Text = %q, HTML = %q", m.Text, m.HTML)
	}
	// HTML only: Text is rendered from it.
	m, _ = Parse(strings.NewReader("Content-Type: text/html\n\n<p>Hi&nbsp;there</p><script>x()</script><ul><li>one<li>two</ul>"), ParseOptions{})
	if m.Text != "Hi there\n\n- one\n- two" {
		t.Errorf("Text from HTML = %q", m.Text)
	}
}

func TestMalformedInputs(t *testing.T) {
	t.Parallel()
	for name, msg := range map[string]string{
		"empty":                 "",
		"only headers":          "Subject: x\r\nFrom: a@b.example\r\n",
		"multipart no boundary": "Content-Type: multipart/mixed\n\n--zz\nContent-Type: text/plain\n\nhi\n--zz--\n",
		"wrong boundary":        "Content-Type: multipart/mixed; boundary=nope\n\n--zz\n\nhi\n",
		"bad content type":      "Content-Type: ;;;\n\nhello",
		"deep nesting":          strings.Repeat("Content-Type: multipart/mixed; boundary=b\n\n--b\n", 100),
		"qp garbage":            "Content-Transfer-Encoding: quoted-printable\n\n=ZZ=4=\n=41",
		"bad encoded word":      "Subject: =?utf-8?B?###?= =?bogus?Q?x?= =?utf-8?Q?ok?=\n\nx",
		"header continuation":   " leading space\nSubject: x\n\nbody",
	} {
		m, err := Parse(strings.NewReader(msg), ParseOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range m.Problems {
			if strings.HasPrefix(p, "panic") {
				t.Errorf("%s: %s", name, p)
			}
		}
	}
	m, _ := Parse(strings.NewReader("Content-Type: multipart/mixed\n\n--zz\nContent-Type: text/plain\n\nhi\n--zz--\n"), ParseOptions{})
	if m.Text != "hi" {
		t.Errorf("sniffed boundary: Text = %q, problems %q", m.Text, m.Problems)
	}
	m, _ = Parse(strings.NewReader("Content-Type: multipart/mixed; boundary=nope\n\n--zz\n\nhi\n"), ParseOptions{})
	if !strings.Contains(m.Text, "hi") {
		t.Errorf("unused boundary: Text = %q", m.Text)
	}
	m, _ = Parse(strings.NewReader("Content-Transfer-Encoding: quoted-printable\n\nA=3DB =\nC=zz\n"), ParseOptions{})
	if m.Text != "A=B C=zz\n" {
		t.Errorf("qp: Text = %q", m.Text)
	}
}
