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
	// Shape 2: Yahoo, the fields on one line (odd languages: the marker on a line of its own).
	// Shape 3: Apple Mail in Cyrillic and Romanian, the block quoted with ">" (the HTML has no ">").
	// Shape 4: Gmail with only some labels translated.
	// Shape 5: Thunderbird, a tab after the colon (its HTML is a table, without tabs).
	// Shape 6: full-width colons.
	// Shape 7: Outlook.com's mailto: decorations and "on behalf of".
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
