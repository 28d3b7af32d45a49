package mailmsg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzFindForwards seeds with every forward fixture: all shapes and
// languages of issue 12 and the negatives.
func FuzzFindForwards(f *testing.F) {
	files, err := filepath.Glob("testdata/forward/*.eml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no forward fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, fs, err := ParseForwards(bytes.NewReader(raw), ParseOptions{MaxBodyBytes: 64 << 10})
		if err != nil {
			t.Fatalf("ParseForwards: %v", err)
		}
		checkForwards(t, fs)
		// The same bytes as a body, without MIME in the way.
		checkForwards(t, findInline(string(raw), "", m.Subject, time.UTC, 1))
		checkForwards(t, findInline("", string(raw), "Fwd: x", time.UTC, 1))
		// Under a forward prefix a body is also read for Outlook for Mac's "wrote:" layout.
		checkForwards(t, findInline(string(raw), "", "VS: x", time.UTC, 1))
		for _, l := range toLines(string(raw)) {
			if parts := oneLineParts(l.text); parts != nil && len(parts) > maxOneLineFields+1 {
				t.Fatalf("one line split into %d parts", len(parts))
			}
		}
	})
}

func checkForwards(t *testing.T, fs []Forward) {
	t.Helper()
	if len(fs) > 1000 {
		t.Fatalf("%d forwards", len(fs))
	}
	for i, f := range fs {
		if f.Depth < 1 || f.Depth > maxForwardDepth+1 {
			t.Errorf("forward %d: Depth %d", i, f.Depth)
		}
		if i == 0 && f.Depth != 1 {
			t.Errorf("first forward has Depth %d", f.Depth)
		}
		if i > 0 && f.Depth > fs[i-1].Depth+1 {
			t.Errorf("forward %d: Depth %d after %d", i, f.Depth, fs[i-1].Depth)
		}
		if f.Source != ForwardAttached && f.Source != ForwardInlineText && f.Source != ForwardInlineHTML {
			t.Errorf("forward %d: Source %q", i, f.Source)
		}
		if f.Client == "" {
			t.Errorf("forward %d: no Client", i)
		}
		if !f.Date.IsZero() && !plausibleDate(f.Date) {
			t.Errorf("forward %d: Date %v", i, f.Date)
		}
		for name, s := range map[string]string{"Subject": f.Subject, "Note": f.Note, "From": f.From.String(), "DateText": f.DateText} {
			if f.Source != ForwardAttached && !utf8.ValidString(s) {
				t.Errorf("forward %d: %s is not valid UTF-8: %q", i, name, s)
			}
		}
	}
	if c, ok := PickCustomer(fs, func(string) bool { return true }); ok && c.From.Address != "" {
		t.Errorf("PickCustomer chose %v although every address is ours", c.From)
	}
}
