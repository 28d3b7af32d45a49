package mailmsg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseForwardsFile(t testing.TB, name string) (*Message, []Forward) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "forward", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, fs, err := ParseForwards(f, ParseOptions{})
	if err != nil {
		t.Fatalf("ParseForwards(%s): %v", name, err)
	}
	return m, fs
}

// inlineFixture is one forwarded customer email: the outermost forward must
// have these values; the note is the agent's, the text the customer's.
type inlineFixture struct {
	file, source, client, lang string
	from                       string // "Name <addr>"
	subject                    string
	date                       string // RFC 3339; the exact instant is compared
}

var inlineFixtures = []inlineFixture{
	{file: "outlook_en_text.eml", source: ForwardInlineText, client: "outlook", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_de_text.eml", source: ForwardInlineText, client: "outlook", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_fr_text.eml", source: ForwardInlineText, client: "outlook", lang: "fr", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_es_text.eml", source: ForwardInlineText, client: "outlook", lang: "es", from: "Lucía García <lucia.garcia@cliente.example>", subject: "Impresora averiada", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_it_text.eml", source: ForwardInlineText, client: "outlook", lang: "it", from: "Giulia Rossi <giulia.rossi@cliente.example>", subject: "Stampante guasta", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_nl_text.eml", source: ForwardInlineText, client: "outlook", lang: "nl", from: "Daan de Vries <daan.devries@klant.example>", subject: "Printer kapot", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_pt_text.eml", source: ForwardInlineText, client: "outlook", lang: "pt", from: "João Silva <joao.silva@cliente.example>", subject: "Impressora avariada", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_pl_text.eml", source: ForwardInlineText, client: "outlook", lang: "pl", from: "Anna Kowalska <anna.kowalska@klient.example>", subject: "Drukarka nie działa", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_sv_text.eml", source: ForwardInlineText, client: "outlook", lang: "sv", from: "Lars Eriksson <lars.eriksson@kund.example>", subject: "Skrivaren är trasig", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_no_text.eml", source: ForwardInlineText, client: "outlook", lang: "no", from: "Ingrid Hansen <ingrid.hansen@kunde.example>", subject: "Skriveren virker ikke", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_da_text.eml", source: ForwardInlineText, client: "outlook", lang: "da", from: "Mette Jensen <mette.jensen@kunde.example>", subject: "Printeren virker ikke", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_fi_text.eml", source: ForwardInlineText, client: "outlook", lang: "fi", from: "Mikko Virtanen <mikko.virtanen@asiakas.example>", subject: "Tulostin rikki", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_cs_text.eml", source: ForwardInlineText, client: "outlook", lang: "cs", from: "Tomáš Novák <tomas.novak@zakaznik.example>", subject: "Nefunkční tiskárna", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_sk_text.eml", source: ForwardInlineText, client: "outlook", lang: "sk", from: "Peter Horváth <peter.horvath@zakaznik.example>", subject: "Nefunkčná tlačiareň", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_hu_text.eml", source: ForwardInlineText, client: "outlook", lang: "hu", from: "Kovács Éva <eva.kovacs@ugyfel.example>", subject: "Nyomtató hiba", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_ro_text.eml", source: ForwardInlineText, client: "outlook", lang: "ro", from: "Andrei Popescu <andrei.popescu@client.example>", subject: "Imprimantă defectă", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_hr_text.eml", source: ForwardInlineText, client: "outlook", lang: "hr", from: "Ivana Horvat <ivana.horvat@kupac.example>", subject: "Pisač ne radi", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_ru_text.eml", source: ForwardInlineText, client: "outlook", lang: "ru", from: "Ольга Иванова <olga.ivanova@client.example>", subject: "Не работает принтер", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_uk_text.eml", source: ForwardInlineText, client: "outlook", lang: "uk", from: "Олена Шевченко <olena.shevchenko@client.example>", subject: "Не працює принтер", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_tr_text.eml", source: ForwardInlineText, client: "outlook", lang: "tr", from: "Ayşe Yılmaz <ayse.yilmaz@musteri.example>", subject: "Yazıcı arızalı", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_en_html.eml", source: ForwardInlineHTML, client: "outlook", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_de_html.eml", source: ForwardInlineHTML, client: "outlook", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_fr_html.eml", source: ForwardInlineHTML, client: "outlook", lang: "fr", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-11-02T10:13:00Z"},
	{file: "outlook_es_html.eml", source: ForwardInlineHTML, client: "outlook", lang: "es", from: "Lucía García <lucia.garcia@cliente.example>", subject: "Impresora averiada", date: "2026-11-02T10:13:00Z"},
	{file: "outlookweb_en_html.eml", source: ForwardInlineHTML, client: "outlook-web", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00Z"},
	{file: "outlookweb_de_html.eml", source: ForwardInlineHTML, client: "outlook-web", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:00Z"},
	{file: "gmail_en_text.eml", source: ForwardInlineText, client: "gmail", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_de_text.eml", source: ForwardInlineText, client: "gmail", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_fr_text.eml", source: ForwardInlineText, client: "gmail", lang: "fr", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_es_text.eml", source: ForwardInlineText, client: "gmail", lang: "es", from: "Lucía García <lucia.garcia@cliente.example>", subject: "Impresora averiada", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_it_text.eml", source: ForwardInlineText, client: "gmail", lang: "it", from: "Giulia Rossi <giulia.rossi@cliente.example>", subject: "Stampante guasta", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_nl_text.eml", source: ForwardInlineText, client: "gmail", lang: "nl", from: "Daan de Vries <daan.devries@klant.example>", subject: "Printer kapot", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_pl_text.eml", source: ForwardInlineText, client: "gmail", lang: "pl", from: "Anna Kowalska <anna.kowalska@klient.example>", subject: "Drukarka nie działa", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_ru_text.eml", source: ForwardInlineText, client: "gmail", lang: "ru", from: "Ольга Иванова <olga.ivanova@client.example>", subject: "Не работает принтер", date: "2026-11-02T10:13:00+01:00"},
	{file: "gmail_en_html.eml", source: ForwardInlineHTML, client: "gmail", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00+01:00"},
	{file: "apple_en_html.eml", source: ForwardInlineHTML, client: "apple", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:58+01:00"},
	{file: "apple_de_text.eml", source: ForwardInlineText, client: "apple", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:58+01:00"},
	{file: "apple_fr_text.eml", source: ForwardInlineText, client: "apple", lang: "fr", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-11-02T10:13:58+01:00"},
	{file: "thunderbird_en_text.eml", source: ForwardInlineText, client: "thunderbird", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:58+01:00"},
	{file: "thunderbird_de_html.eml", source: ForwardInlineHTML, client: "thunderbird", lang: "de", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:58+01:00"},
	{file: "yahoo_en_html.eml", source: ForwardInlineHTML, client: "yahoo", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:58+01:00"},
	{file: "outlookquoted_en_text.eml", source: ForwardInlineText, client: "outlook", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00Z"},
	{file: "generic_en_text.eml", source: ForwardInlineText, client: "generic", lang: "en", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:58+01:00"},
}

func TestForwardFixtures(t *testing.T) {
	t.Parallel()
	for _, fx := range inlineFixtures {
		t.Run(fx.file, func(t *testing.T) {
			t.Parallel()
			_, fs := parseForwardsFile(t, fx.file)
			if len(fs) != 1 {
				t.Fatalf("got %d forwards, want 1: %+v", len(fs), fs)
			}
			f := fs[0]
			wantNote, wantTo := "this one came in while the mailbox was down", "support@postdesk.example"
			switch fx.file {
			case "generic_en_text.eml":
				wantNote, wantTo = "FYI, bounced to me by the old alias.", "old-support@postdesk.example"
			}
			checkForward(t, f, fx.source, fx.client, fx.lang, fx.from, fx.subject, fx.date, wantTo, wantNote)
			if f.Depth != 1 {
				t.Errorf("Depth = %d", f.Depth)
			}
			if !strings.Contains(f.Text, "P-200") || strings.Contains(f.Text, fx.subject+"\n") || strings.Contains(f.Text, "mailbox was down") {
				t.Errorf("Text = %q", f.Text)
			}
			if fx.source == ForwardInlineHTML && (!strings.Contains(f.HTML, "P-200") || strings.Contains(f.HTML, "mailbox was down")) {
				t.Errorf("HTML = %q", f.HTML)
			}
		})
	}
}

func checkForward(t *testing.T, f Forward, source, client, lang, from, subject, date, to, note string) {
	t.Helper()
	if f.Source != source {
		t.Errorf("Source = %q, want %q", f.Source, source)
	}
	if f.Client != client {
		t.Errorf("Client = %q, want %q", f.Client, client)
	}
	if f.Language != lang {
		t.Errorf("Language = %q, want %q", f.Language, lang)
	}
	if got := f.From.String(); got != from {
		t.Errorf("From = %q, want %q", got, from)
	}
	if f.Subject != subject {
		t.Errorf("Subject = %q, want %q", f.Subject, subject)
	}
	want, err := time.Parse(time.RFC3339, date)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Date.Equal(want) {
		t.Errorf("Date = %v (from %q), want %v", f.Date, f.DateText, want)
	}
	if _, off := f.Date.Zone(); off != func() int { _, o := want.Zone(); return o }() {
		t.Errorf("Date zone = %v, want %v", f.Date, want)
	}
	if len(f.To) == 0 || f.To[0].Address != to {
		t.Errorf("To = %v, want %s", f.To, to)
	}
	if note == "" && f.Note != "" || !strings.Contains(f.Note, note) {
		t.Errorf("Note = %q, want %q", f.Note, note)
	}
}

func TestForwardAttached(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, client, note string }{
		{"attached_en_rfc822.eml", "outlook", "Forwarding as attachment, see the customer's mail.\n\nPaul"},
		{"attached_en_eml.eml", "gmail", "See attached, the customer wrote on Monday."},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			m, fs := parseForwardsFile(t, tc.file)
			if len(fs) != 1 {
				t.Fatalf("got %d forwards: %+v", len(fs), fs)
			}
			f := fs[0]
			checkForward(t, f, ForwardAttached, tc.client, "", "Ann Example <ann.example@customer.example>", "Printer broken",
				"2026-11-02T10:13:58+01:00", "support@postdesk.example", tc.note)
			if f.Note != tc.note {
				t.Errorf("Note = %q", f.Note)
			}
			if f.MessageID != "original-4711@customer.example" || f.DateText != "Mon, 2 Nov 2026 10:13:58 +0100" {
				t.Errorf("MessageID = %q, DateText = %q", f.MessageID, f.DateText)
			}
			if len(f.InReplyTo) != 1 || f.InReplyTo[0] != "ticket-88@postdesk.example" || len(f.References) != 2 {
				t.Errorf("InReplyTo = %v, References = %v", f.InReplyTo, f.References)
			}
			if len(f.Cc) != 1 || f.Cc[0].Address != "bob@customer.example" {
				t.Errorf("Cc = %v", f.Cc)
			}
			if !strings.Contains(f.Text, "error E42") {
				t.Errorf("Text = %q", f.Text)
			}
			if len(f.Attachments) != 1 || f.Attachments[0].Filename != "error.pdf" {
				t.Errorf("Attachments = %+v", f.Attachments)
			}
			// The outer message still lists the original as an attachment.
			if len(m.Attachments) != 1 || !strings.HasSuffix(m.Attachments[0].Filename, ".eml") {
				t.Errorf("outer Attachments = %+v", m.Attachments)
			}
		})
	}
}

func TestForwardChains(t *testing.T) {
	t.Parallel()
	ours := func(a string) bool { return strings.HasSuffix(NormalizeAddress(a), "@postdesk.example") }

	_, fs := parseForwardsFile(t, "chain_en_text.eml")
	if len(fs) != 2 {
		t.Fatalf("chain: got %d forwards: %+v", len(fs), fs)
	}
	checkForward(t, fs[0], ForwardInlineText, "outlook", "en", "Sam Sales <sam.sales@postdesk.example>", "FW: Printer broken",
		"2026-11-04T16:40:00Z", "paul.agent@postdesk.example", "Sam got this one on the sales address")
	checkForward(t, fs[1], ForwardInlineText, "outlook", "en", "Ann Example <ann.example@customer.example>", "Printer broken",
		"2026-11-02T10:13:00Z", "sales@postdesk.example", "Paul, this is for support.")
	if fs[0].Depth != 1 || fs[1].Depth != 2 {
		t.Errorf("Depths = %d, %d", fs[0].Depth, fs[1].Depth)
	}
	c, ok := PickCustomer(fs, ours)
	if !ok || c.From.Address != "ann.example@customer.example" || c.Depth != 2 || len(c.Chain) != 2 {
		t.Errorf("PickCustomer = %+v, %v", c, ok)
	}
	if !strings.HasPrefix(c.Text, "Hello,") || !strings.Contains(c.Text, "P-200") {
		t.Errorf("customer Text = %q", c.Text)
	}

	// A customer's email that forwards a vendor's stays the customer's.
	_, fs = parseForwardsFile(t, "chain_en_customer.eml")
	if len(fs) != 2 {
		t.Fatalf("customer chain: got %d forwards: %+v", len(fs), fs)
	}
	checkForward(t, fs[1], ForwardInlineText, "gmail", "en", "Vendor Billing <billing@vendor.example>", "Invoice 2026-118 wrong",
		"2026-10-30T08:00:00+01:00", "ann.example@customer.example", "the invoice below charges us twice")
	c, ok = PickCustomer(fs, ours)
	if !ok || c.From.Address != "ann.example@customer.example" || c.Depth != 1 {
		t.Errorf("PickCustomer = %+v, %v", c, ok)
	}
	if _, ok := PickCustomer(fs[:0], ours); ok {
		t.Error("PickCustomer of an empty chain")
	}
	if _, ok := PickCustomer([]Forward{{From: Address{Address: "x@postdesk.example"}}}, ours); ok {
		t.Error("PickCustomer found a customer among our own addresses")
	}
}

func TestForwardNegatives(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"noforward_en_reply.eml",
		"noforward_de_reply.eml",
		"noforward_fr_reply.eml",
		"noforward_en_outlookreply.eml",
		"noforward_en_outlookreplynoprefix.eml",
		"noforward_en_fwdsubject.eml",
		"noforward_en_quotedforward.eml",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, fs := parseForwardsFile(t, name)
			if fs != nil {
				t.Errorf("found forwards in a non-forward: %+v", fs)
			}
			if got := FindForwards(m); got != nil {
				t.Errorf("FindForwards: %+v", got)
			}
		})
	}
}

// TestForwardFixturesCovered keeps the table and the directory in step.
func TestForwardFixturesCovered(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/forward/*.eml")
	known := map[string]bool{}
	for _, fx := range inlineFixtures {
		known[fx.file] = true
	}
	for _, fx := range shapeFixtures {
		known[fx.file] = true
	}
	for _, f := range files {
		b := filepath.Base(f)
		if !known[b] && !strings.HasPrefix(b, "noforward_") && !strings.HasPrefix(b, "attached_") && !strings.HasPrefix(b, "chain_") {
			t.Errorf("fixture %s is not in a test table", b)
		}
	}
}

func TestParseFwdDate(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("", 3600)
	for _, tc := range []struct {
		in, lang, want string // want RFC 3339, "" for unparseable
		assumed        bool
	}{
		{"Monday, November 2, 2026 10:13 AM", "en", "2026-11-02T10:13:00+01:00", true},
		{"Monday, November 2, 2026 12:05 PM", "en", "2026-11-02T12:05:00+01:00", true},
		{"Monday, November 2, 2026 12:05 AM", "en", "2026-11-02T00:05:00+01:00", true},
		{"Mon, Nov 2, 2026 at 10:13\u202fPM", "en", "2026-11-02T22:13:00+01:00", true},
		{"Mon, 2 Nov 2026 10:13:58 +0100", "en", "2026-11-02T10:13:58+01:00", false},
		{"2 November 2026 at 10:13:58 CET", "en", "2026-11-02T10:13:58+01:00", false},
		{"November 2, 2026 at 10:13:58 AM EST", "en", "2026-11-02T10:13:58-05:00", false},
		{"Monday, November 2, 2026 at 10:13:58 AM GMT+1", "en", "2026-11-02T10:13:58+01:00", false},
		{"Montag, 2. November 2026 10:13", "de", "2026-11-02T10:13:00+01:00", true},
		{"2. November 2026 um 10:13:58 MESZ", "de", "2026-11-02T10:13:58+02:00", false},
		{"Mo., 2. Nov. 2026 um 10:13 Uhr", "de", "2026-11-02T10:13:00+01:00", true},
		{"lundi 2 novembre 2026 10:13", "fr", "2026-11-02T10:13:00+01:00", true},
		{"mar. 3 nov. 2026 à 10:13", "fr", "2026-11-03T10:13:00+01:00", true},
		{"2 novembre 2026 à 10:13:58 UTC+01:00", "fr", "2026-11-02T10:13:58+01:00", false},
		{"lunes, 2 de noviembre de 2026 10:13", "es", "2026-11-02T10:13:00+01:00", true},
		{"segunda-feira, 2 de novembro de 2026 10:13", "pt", "2026-11-02T10:13:00+01:00", true},
		{"poniedziałek, 2 listopada 2026 10:13", "pl", "2026-11-02T10:13:00+01:00", true},
		{"maanantai 2. marraskuuta 2026 10.13", "fi", "2026-11-02T10:13:00+01:00", true},
		{"2026. november 2., hétfő 10:13", "hu", "2026-11-02T10:13:00+01:00", true},
		{"ponedjeljak, 2. listopada 2026. 10:13", "hr", "2026-10-02T10:13:00+01:00", true},
		{"pondělí 2. listopadu 2026 10:13", "cs", "2026-11-02T10:13:00+01:00", true},
		{"2 ноября 2026 г. 10:13", "ru", "2026-11-02T10:13:00+01:00", true},
		{"пн, 2 нояб. 2026 г. в 10:13", "ru", "2026-11-02T10:13:00+01:00", true},
		{"2 листопада 2026 р. 10:13", "uk", "2026-11-02T10:13:00+01:00", true},
		{"2 Kasım 2026 Pazartesi 10:13", "tr", "2026-11-02T10:13:00+01:00", true},
		{"02.11.2026 10:13", "de", "2026-11-02T10:13:00+01:00", true},
		{"11/2/2026 10:13 AM", "en", "2026-11-02T10:13:00+01:00", true},
		{"2/11/2026 10:13", "fr", "2026-11-02T10:13:00+01:00", true},
		{"2026-11-02 10:13", "sv", "2026-11-02T10:13:00+01:00", true},
		{"Am 28.10.26, 12:46 schrieb", "de", "2026-10-28T12:46:00+01:00", true},
		{"On 10/28/26, 12:46 PM,", "en", "2026-10-28T12:46:00+01:00", true},
		{"Op 28-10-2026 12:46 heeft", "nl", "2026-10-28T12:46:00+01:00", true},
		{"Den 28.10.2026 kl. 12.46 skrev", "da", "2026-10-28T12:46:00+01:00", true},
		{"2026年11月2日(月) 18:13 JST", "ja", "2026-11-02T18:13:00+09:00", false},
		{"2026年11月2日 午後 6:13", "ja", "2026-11-02T18:13:00+01:00", true},
		{"yesterday around ten", "en", "", false},
		{"Montag, 31. Februar 2026 10:13", "de", "", false},
		{"", "en", "", false},
	} {
		got, assumed, ok := parseFwdDate(tc.in, tc.lang, cet)
		if tc.want == "" {
			if ok {
				t.Errorf("parseFwdDate(%q) = %v, want failure", tc.in, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, tc.want)
		if !ok || !got.Equal(want) || assumed != tc.assumed {
			t.Errorf("parseFwdDate(%q) = %v, %v, %v; want %v, %v", tc.in, got, assumed, ok, want, tc.assumed)
		}
	}
}

func TestClassifySubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subject, lang string
		want          subjectKind
	}{
		{"RE: FW: Printer", "en", subjReply},
		{"FW: RE: Printer", "en", subjForward},
		{"Fwd: Printer", "en", subjForward},
		{"WG: Drucker", "de", subjForward},
		{"AW: Drucker", "de", subjReply},
		{"TR: Imprimante", "fr", subjForward},
		{"RV: Impresora", "es", subjForward},
		{"I: Stampante", "it", subjForward},
		{"R: Stampante", "it", subjReply},
		{"Odp: Drukarka", "pl", subjReply},
		{"PD: Drukarka", "pl", subjForward},
		{"VS: Tulostin", "fi", subjReply},
		{"VS: Printeren", "da", subjForward},
		{"VS: Printer", "", subjNone},
		{"İLT: Yazıcı", "tr", subjForward},
		{"Перес: Принтер", "ru", subjForward},
		{"Továbbítás: Nyomtató", "hu", subjForward},
		{"[EXTERNAL] FW: Printer", "en", subjForward},
		{"[Fwd: Printer]", "en", subjForward},
		{"Re[2]: Printer", "en", subjReply},
		{"Printer broken", "en", subjNone},
		{"Meeting: tomorrow", "en", subjNone},
	} {
		if got := classifySubject(tc.subject, tc.lang); got != tc.want {
			t.Errorf("classifySubject(%q, %q) = %v, want %v", tc.subject, tc.lang, got, tc.want)
		}
	}
}

func TestMatchLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line  string
		field fwdField
		value string
	}{
		{"From: Ann <a@x.example>", fFrom, "Ann <a@x.example>"},
		{"*From:* Ann <a@x.example>", fFrom, "Ann <a@x.example>"},
		{"De\u00a0: Claire", fFrom, "Claire"},
		{"Envoyé : lundi 2 novembre 2026 10:13", fDate, "lundi 2 novembre 2026 10:13"},
		{"Másolatot kap: Bob <b@x.example>", fCc, "Bob <b@x.example>"},
		{"De la: Andrei <a@x.example>", fFrom, "Andrei <a@x.example>"},
		{"Subject: \tRe: time: 10:13", fSubject, "Re: time: 10:13"},
		{"件名：テスト", fSubject, "テスト"}, // full-width colon (Japanese clients)
		{"Note: call me", fNone, ""},
	} {
		normalized := normSpace(tc.line)
		hits, _, v := matchLabel(normalized)
		got := fNone
		if hits != nil {
			got = hits[0].field
		}
		if got != tc.field || v != tc.value {
			t.Errorf("matchLabel(%q) = %v %q, want %v %q", tc.line, got, v, tc.field, tc.value)
		}
	}
}

func TestFwdAddresses(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Ann Example [mailto:ann@x.example]":    "Ann Example <ann@x.example>",
		"Ann Example <mailto:ann@x.example>":    "Ann Example <ann@x.example>",
		"Example, Ann <ann@x.example>; Bob":     "Example, Ann <ann@x.example>",
		"Ann Example":                           "Ann Example <>", // a display name alone
		"\"Ann (Sales)\" <ann@x.example>":       "Ann (Sales) <ann@x.example>",
		"ann@x.example <ann@x.example>":         "ann@x.example",
		"=?UTF-8?Q?J=C3=BCrgen?= <j@x.example>": "Jürgen <j@x.example>",
		// Outlook.com: the person, not the mailbox it was sent on behalf of.
		"Ann<mailto:a@b.example> <a@b.example<mailto:a@b.example>> on behalf of other@b.example": "Ann <a@b.example>",
		"Ann<MAILTO:a@b.example> im Auftrag von Desk <desk@b.example>":                           "Ann <a@b.example>",
		"a@b.example<mailto:a@b.example>":                                                        "a@b.example",
		"Desk on behalf of Ann <a@b.example>":                                                    "Desk on behalf of Ann <a@b.example>",
	} {
		got := fwdAddresses(in)
		if len(got) == 0 || got[0].String() != want {
			t.Errorf("fwdAddresses(%q) = %v, want %s", in, got, want)
		}
	}
}
