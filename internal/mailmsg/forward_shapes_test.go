package mailmsg

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shapeFixture is a forward in one of the layouts of issue 12, one file per
// client and language, each with a text and an HTML alternative. Every
// fixture is read three ways: as a whole (the HTML is searched first), its
// text alone and its HTML alone.
type shapeFixture struct {
	file, client, lang string
	shape              string // the layout in the text
	htmlShape          string // the layout in the HTML rendering, when it differs ("" if the same)
	from, subject      string // the original's sender ("Name <addr>") and subject
	date               string // RFC 3339: the exact instant, in the zone written or (assumed) the forward's
	assumed            bool   // the block's date had no zone
	to, cc             string // first address of To and Cc; "" when the layout has none
	note               bool   // the agent's words stand above the original
}

var shapeFixtures = []shapeFixture{
	// Shape 1: Outlook 2019 / Outlook for Mac, "On <date>, "Name" <addr> wrote:" and the original indented.
	{file: "outlookmac_en_wrote.eml", client: "outlook-mac", lang: "en", shape: ShapeWroteLine, htmlShape: "", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_de_wrote.eml", client: "outlook-mac", lang: "de", shape: ShapeWroteLine, htmlShape: "", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_fr_wrote.eml", client: "outlook-mac", lang: "fr", shape: ShapeWroteLine, htmlShape: "", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_es_wrote.eml", client: "outlook-mac", lang: "es", shape: ShapeWroteLine, htmlShape: "", from: "Lucía García <lucia.garcia@cliente.example>", subject: "Impresora averiada", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_it_wrote.eml", client: "outlook-mac", lang: "it", shape: ShapeWroteLine, htmlShape: "", from: "Giulia Rossi <giulia.rossi@cliente.example>", subject: "Stampante guasta", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_nl_wrote.eml", client: "outlook-mac", lang: "nl", shape: ShapeWroteLine, htmlShape: "", from: "Daan de Vries <daan.devries@klant.example>", subject: "Printer kapot", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_pt_wrote.eml", client: "outlook-mac", lang: "pt", shape: ShapeWroteLine, htmlShape: "", from: "João Silva <joao.silva@cliente.example>", subject: "Impressora avariada", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_pl_wrote.eml", client: "outlook-mac", lang: "pl", shape: ShapeWroteLine, htmlShape: "", from: "Anna Kowalska <anna.kowalska@klient.example>", subject: "Drukarka nie działa", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_sv_wrote.eml", client: "outlook-mac", lang: "sv", shape: ShapeWroteLine, htmlShape: "", from: "Lars Eriksson <lars.eriksson@kund.example>", subject: "Skrivaren är trasig", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_da_wrote.eml", client: "outlook-mac", lang: "da", shape: ShapeWroteLine, htmlShape: "", from: "Mette Jensen <mette.jensen@kunde.example>", subject: "Printeren virker ikke", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_fi_wrote.eml", client: "outlook-mac", lang: "fi", shape: ShapeWroteLine, htmlShape: "", from: "Mikko Virtanen <mikko.virtanen@asiakas.example>", subject: "Tulostin rikki", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_cs_wrote.eml", client: "outlook-mac", lang: "cs", shape: ShapeWroteLine, htmlShape: "", from: "Tomáš Novák <tomas.novak@zakaznik.example>", subject: "Nefunkční tiskárna", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_hu_wrote.eml", client: "outlook-mac", lang: "hu", shape: ShapeWroteLine, htmlShape: "", from: "Kovács Éva <eva.kovacs@ugyfel.example>", subject: "Nyomtató hiba", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_tr_wrote.eml", client: "outlook-mac", lang: "tr", shape: ShapeWroteLine, htmlShape: "", from: "Ayşe Yılmaz <ayse.yilmaz@musteri.example>", subject: "Yazıcı arızalı", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	{file: "outlookmac_ru_wrote.eml", client: "outlook-mac", lang: "ru", shape: ShapeWroteLine, htmlShape: "", from: "Ольга Иванова <olga.ivanova@client.example>", subject: "Не работает принтер", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: true},
	{file: "outlookmac_ro_wrote.eml", client: "outlook-mac", lang: "ro", shape: ShapeWroteLine, htmlShape: "", from: "Andrei Popescu <andrei.popescu@client.example>", subject: "Imprimantă defectă", date: "2026-10-28T12:46:00+01:00", assumed: true, to: "", cc: "", note: false},
	// Shape 2: Yahoo, the fields on one line (odd languages: the marker on a line of its own).
	{file: "yahoo_en_oneline.eml", client: "yahoo", lang: "en", shape: ShapeOneLine, htmlShape: "", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_de_oneline.eml", client: "yahoo", lang: "de", shape: ShapeOneLine, htmlShape: "", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_fr_oneline.eml", client: "yahoo", lang: "fr", shape: ShapeOneLine, htmlShape: "", from: "Claire Dubois <claire.dubois@client.example>", subject: "Imprimante en panne", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_es_oneline.eml", client: "yahoo", lang: "es", shape: ShapeOneLine, htmlShape: "", from: "Lucía García <lucia.garcia@cliente.example>", subject: "Impresora averiada", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_it_oneline.eml", client: "yahoo", lang: "it", shape: ShapeOneLine, htmlShape: "", from: "Giulia Rossi <giulia.rossi@cliente.example>", subject: "Stampante guasta", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_nl_oneline.eml", client: "yahoo", lang: "nl", shape: ShapeOneLine, htmlShape: "", from: "Daan de Vries <daan.devries@klant.example>", subject: "Printer kapot", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_pt_oneline.eml", client: "yahoo", lang: "pt", shape: ShapeOneLine, htmlShape: "", from: "João Silva <joao.silva@cliente.example>", subject: "Impressora avariada", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_pl_oneline.eml", client: "yahoo", lang: "pl", shape: ShapeOneLine, htmlShape: "", from: "Anna Kowalska <anna.kowalska@klient.example>", subject: "Drukarka nie działa", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_sv_oneline.eml", client: "yahoo", lang: "sv", shape: ShapeOneLine, htmlShape: "", from: "Lars Eriksson <lars.eriksson@kund.example>", subject: "Skrivaren är trasig", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_no_oneline.eml", client: "yahoo", lang: "no", shape: ShapeOneLine, htmlShape: "", from: "Ingrid Hansen <ingrid.hansen@kunde.example>", subject: "Skriveren virker ikke", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_da_oneline.eml", client: "yahoo", lang: "da", shape: ShapeOneLine, htmlShape: "", from: "Mette Jensen <mette.jensen@kunde.example>", subject: "Printeren virker ikke", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_fi_oneline.eml", client: "yahoo", lang: "fi", shape: ShapeOneLine, htmlShape: "", from: "Mikko Virtanen <mikko.virtanen@asiakas.example>", subject: "Tulostin rikki", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_cs_oneline.eml", client: "yahoo", lang: "cs", shape: ShapeOneLine, htmlShape: "", from: "Tomáš Novák <tomas.novak@zakaznik.example>", subject: "Nefunkční tiskárna", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_sk_oneline.eml", client: "yahoo", lang: "sk", shape: ShapeOneLine, htmlShape: "", from: "Peter Horváth <peter.horvath@zakaznik.example>", subject: "Nefunkčná tlačiareň", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_hu_oneline.eml", client: "yahoo", lang: "hu", shape: ShapeOneLine, htmlShape: "", from: "Kovács Éva <eva.kovacs@ugyfel.example>", subject: "Nyomtató hiba", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_ro_oneline.eml", client: "yahoo", lang: "ro", shape: ShapeOneLine, htmlShape: "", from: "Andrei Popescu <andrei.popescu@client.example>", subject: "Imprimantă defectă", date: "2026-11-02T10:13:58+02:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_hr_oneline.eml", client: "yahoo", lang: "hr", shape: ShapeOneLine, htmlShape: "", from: "Ivana Horvat <ivana.horvat@kupac.example>", subject: "Pisač ne radi", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_ru_oneline.eml", client: "yahoo", lang: "ru", shape: ShapeOneLine, htmlShape: "", from: "Ольга Иванова <olga.ivanova@client.example>", subject: "Не работает принтер", date: "2026-11-02T10:13:58+03:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_uk_oneline.eml", client: "yahoo", lang: "uk", shape: ShapeOneLine, htmlShape: "", from: "Олена Шевченко <olena.shevchenko@client.example>", subject: "Не працює принтер", date: "2026-11-02T10:13:58+02:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "yahoo_tr_oneline.eml", client: "yahoo", lang: "tr", shape: ShapeOneLine, htmlShape: "", from: "Ayşe Yılmaz <ayse.yilmaz@musteri.example>", subject: "Yazıcı arızalı", date: "2026-11-02T10:13:58+03:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	// Shape 3: Apple Mail in Cyrillic and Romanian, the block quoted with ">" (the HTML has no ">").
	{file: "apple_ru_quoted.eml", client: "apple", lang: "ru", shape: ShapeQuotedBlock, htmlShape: ShapeHeaderBlock, from: "Ольга Иванова <olga.ivanova@client.example>", subject: "Не работает принтер", date: "2026-11-02T10:13:58+03:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "apple_uk_quoted.eml", client: "apple", lang: "uk", shape: ShapeQuotedBlock, htmlShape: ShapeHeaderBlock, from: "Олена Шевченко <olena.shevchenko@client.example>", subject: "Не працює принтер", date: "2026-11-02T10:13:58+02:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "apple_ro_quoted.eml", client: "apple", lang: "ro", shape: ShapeQuotedBlock, htmlShape: ShapeHeaderBlock, from: "Andrei Popescu <andrei.popescu@client.example>", subject: "Imprimantă defectă", date: "2026-11-02T10:13:58+02:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	// Shape 4: Gmail with only some labels translated.
	{file: "gmail_et_mixed.eml", client: "gmail", lang: "et", shape: ShapeMixedLabels, htmlShape: "", from: "Kadri Tamm <kadri.tamm@klient.example>", subject: "Printer ei tööta", date: "2026-11-02T10:13:00+01:00", assumed: true, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "gmail_tr_mixed.eml", client: "gmail", lang: "tr", shape: ShapeMixedLabels, htmlShape: "", from: "Ayşe Yılmaz <ayse.yilmaz@musteri.example>", subject: "Yazıcı arızalı", date: "2026-11-02T10:13:00+01:00", assumed: true, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	// Shape 5: Thunderbird, a tab after the colon (its HTML is a table, without tabs).
	{file: "thunderbird_it_tab.eml", client: "thunderbird", lang: "it", shape: ShapeTabbed, htmlShape: ShapeHeaderBlock, from: "Giulia Rossi <giulia.rossi@cliente.example>", subject: "Stampante guasta", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "thunderbird_hr_tab.eml", client: "thunderbird", lang: "hr", shape: ShapeTabbed, htmlShape: ShapeHeaderBlock, from: "Ivana Horvat <ivana.horvat@kupac.example>", subject: "Pisač ne radi", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "thunderbird_pl_tab.eml", client: "thunderbird", lang: "pl", shape: ShapeTabbed, htmlShape: ShapeHeaderBlock, from: "Anna Kowalska <anna.kowalska@klient.example>", subject: "Drukarka nie działa", date: "2026-11-02T10:13:58+01:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	// Shape 6: full-width colons.
	{file: "outlook_ja_fullwidth.eml", client: "outlook", lang: "ja", shape: ShapeFullWidth, htmlShape: "", from: "山田 太郎 <taro.yamada@kokyaku.example>", subject: "プリンターの故障", date: "2026-11-02T10:13:00+01:00", assumed: true, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "hubspot_ja_fullwidth.eml", client: "gmail", lang: "ja", shape: ShapeFullWidth, htmlShape: "", from: "山田 太郎 <taro.yamada@kokyaku.example>", subject: "プリンターの故障", date: "2026-11-02T18:13:00+09:00", assumed: false, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	// Shape 7: Outlook.com's mailto: decorations and "on behalf of".
	{file: "outlookcom_en_mailto.eml", client: "outlook-web", lang: "en", shape: ShapeMailto, htmlShape: "", from: "Ann Example <ann.example@customer.example>", subject: "Printer broken", date: "2026-11-02T10:13:00+01:00", assumed: true, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
	{file: "outlookcom_de_mailto.eml", client: "outlook-web", lang: "de", shape: ShapeMailto, htmlShape: "", from: "Jürgen Müller <juergen.mueller@kunde.example>", subject: "Drucker defekt", date: "2026-11-02T10:13:00+01:00", assumed: true, to: "support@postdesk.example", cc: "bob@customer.example", note: true},
}

func TestForwardShapes(t *testing.T) {
	t.Parallel()
	for _, fx := range shapeFixtures {
		t.Run(fx.file, func(t *testing.T) {
			t.Parallel()
			m, fs := parseForwardsFile(t, fx.file)
			htmlShape := fx.htmlShape
			if htmlShape == "" {
				htmlShape = fx.shape
			}
			if len(fs) != 1 {
				t.Fatalf("ParseForwards: %d forwards, want 1: %+v", len(fs), fs)
			}
			checkShape(t, "message", fs[0], fx, ForwardInlineHTML, htmlShape)
			loc := zoneOf(m.Date)
			if fs := findInline(m.Text, "", m.Subject, loc, 1); len(fs) != 1 {
				t.Errorf("text alone: %d forwards, want 1: %+v", len(fs), fs)
			} else {
				checkShape(t, "text", fs[0], fx, ForwardInlineText, fx.shape)
			}
			if fs := findInline("", m.HTML, m.Subject, loc, 1); len(fs) != 1 {
				t.Errorf("HTML alone: %d forwards, want 1: %+v", len(fs), fs)
			} else {
				checkShape(t, "HTML", fs[0], fx, ForwardInlineHTML, htmlShape)
			}
		})
	}
}

func checkShape(t *testing.T, how string, f Forward, fx shapeFixture, source, shape string) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Helper(); t.Errorf(how+": "+format, args...) }
	if f.Source != source || f.Client != fx.client || f.Language != fx.lang || f.Shape != shape || f.Depth != 1 {
		errorf("Source, Client, Language, Shape, Depth = %q, %q, %q, %q, %d; want %q, %q, %q, %q, 1",
			f.Source, f.Client, f.Language, f.Shape, f.Depth, source, fx.client, fx.lang, shape)
	}
	if got := f.From.String(); got != fx.from {
		errorf("From = %q, want %q", got, fx.from)
	}
	if f.Subject != fx.subject {
		errorf("Subject = %q, want %q", f.Subject, fx.subject)
	}
	want, err := time.Parse(time.RFC3339, fx.date)
	if err != nil {
		t.Fatal(err)
	}
	_, wantOff := want.Zone()
	if _, off := f.Date.Zone(); !f.Date.Equal(want) || off != wantOff || f.DateZoneAssumed != fx.assumed {
		errorf("Date = %v (assumed %v, from %q), want %v (assumed %v)", f.Date, f.DateZoneAssumed, f.DateText, want, fx.assumed)
	}
	if first := firstAddress(f.To); first != fx.to {
		errorf("To = %v, want first %q", f.To, fx.to)
	}
	if first := firstAddress(f.Cc); first != fx.cc {
		errorf("Cc = %v, want first %q", f.Cc, fx.cc)
	}
	if fx.note && !strings.Contains(f.Note, "mailbox was down") || !fx.note && f.Note != "" {
		errorf("Note = %q (want the agent's words: %v)", f.Note, fx.note)
	}
	if !strings.Contains(f.Text, "P-200") || strings.Contains(f.Text, "mailbox was down") || strings.Contains(f.Text, fx.from) {
		errorf("Text = %q", f.Text)
	}
	if source == ForwardInlineHTML && (!strings.Contains(f.HTML, "P-200") || strings.Contains(f.HTML, "mailbox was down")) {
		errorf("HTML = %q", f.HTML)
	}
}

func firstAddress(list []Address) string {
	if len(list) == 0 {
		return ""
	}
	return list[0].Address
}

// TestForwardShapeNegatives reads every noforward_ fixture three ways, like
// TestForwardShapes: replies in each fixture's language (the same body
// under Re:, AW:, SV:, Odp: ...), replies that quote a forward, and the
// Outlook for Mac layout where the rule of shape 1 does not hold.
func TestForwardShapeNegatives(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/forward/noforward_*.eml")
	if len(files) < 50 {
		t.Fatalf("only %d negative fixtures", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, fs := parseForwardsFile(t, name)
			if fs != nil {
				t.Errorf("ParseForwards found %+v", fs)
			}
			loc := zoneOf(m.Date)
			if fs := findInline(m.Text, "", m.Subject, loc, 1); fs != nil {
				t.Errorf("text alone: found %+v", fs)
			}
			if fs := findInline("", m.HTML, m.Subject, loc, 1); fs != nil {
				t.Errorf("HTML alone: found %+v", fs)
			}
		})
	}
}

func TestParseWroteLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, name, addr, lang string
	}{
		{`On 28/10/2026 12:46, "Ann Example" <ann@x.example> wrote:`, "Ann Example", "ann@x.example", "en"},
		{`On 28/10/2026 12:46, Ann Example <ann@x.example> wrote:`, "Ann Example", "ann@x.example", "en"},
		{`Le 28/10/2026 12:46, « Claire Dubois » <c@x.example> a écrit :`, "Claire Dubois", "c@x.example", "fr"},
		{`Op 28-10-2026 12:46 heeft Daan de Vries <d@x.example> geschreven:`, "Daan de Vries", "d@x.example", "nl"},
		{`"Kovács Éva" <e@x.example> írta (időpont: 2026. okt. 28., 12:46):`, "Kovács Éva", "e@x.example", "hu"},
		{`On 28/10/2026 12:46, Ann Example wrote:`, "", "", ""},               // no address
		{`Please write to <ann@x.example> about it:`, "", "", ""},             // no verb
		{`On 28/10/2026, "Ann" <ann@x.example> wrote: see below`, "", "", ""}, // not the end of the line
	} {
		w, ok := parseWroteLine(tc.line)
		if tc.addr == "" {
			if ok {
				t.Errorf("parseWroteLine(%q) = %+v, want none", tc.line, w)
			}
			continue
		}
		if !ok || w.name != tc.name || w.addr != tc.addr || w.lang != tc.lang {
			t.Errorf("parseWroteLine(%q) = %+v %v, want %s <%s> (%s)", tc.line, w, ok, tc.name, tc.addr, tc.lang)
		}
	}
}
