package mailmsg

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

func addFixtures(f *testing.F) [][]byte { return addFixturesB(f) }

func addFixturesB(f testing.TB) [][]byte {
	f.Helper()
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var all [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, b)
	}
	return all
}

// FuzzParse's committed corpus (testdata/fuzz/FuzzParse) holds the
// hostile messages of issue 8 (internal/mailtest.Hostile): NUL variants,
// a 6,000-byte Message-ID, 3,000 addresses, forwards cut off at several
// depths, Python's edge cases. (The 2 MB header block is left to
// internal/ingest's TestHostileMessagesAreStored: the fuzzer would spend
// its minutes minimizing it.)
func FuzzParse(f *testing.F) {
	for _, b := range addFixtures(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(bytes.NewReader(raw), ParseOptions{
			MaxBodyBytes: 64 << 10,
			Attachment: func(a *Attachment, r io.Reader) error {
				_, err := io.Copy(io.Discard, io.LimitReader(r, 100))
				return err
			},
		})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		// As ingest reads: every attachment to its end, forwards searched.
		if _, _, err := ParseForwards(bytes.NewReader(raw), ParseOptions{MaxBodyBytes: 64 << 10,
			Attachment: func(a *Attachment, r io.Reader) error {
				_, err := io.Copy(io.Discard, r)
				return err
			}}); err != nil {
			t.Fatalf("ParseForwards: %v", err)
		}
		for _, p := range m.Problems {
			if strings.HasPrefix(p, "panic") {
				t.Fatalf("recovered %s", p)
			}
		}
		for name, s := range map[string]string{"Subject": m.Subject, "Text": m.Text, "HTML": m.HTML} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not valid UTF-8: %q", name, s)
			}
		}
		if int64(len(m.Text)) > 64<<10 && m.HTML == "" {
			t.Errorf("Text is %d bytes, over the cap", len(m.Text))
		}
		for _, a := range m.Attachments {
			if a.Filename == "" || strings.ContainsAny(a.Filename, "/\\\x00\r\n") || !utf8.ValidString(a.Filename) {
				t.Errorf("bad filename %q", a.Filename)
			}
		}
	})
}

func FuzzSanitizeHTML(f *testing.F) {
	for _, b := range addFixtures(f) {
		if m, err := Parse(bytes.NewReader(b), ParseOptions{}); err == nil && m.HTML != "" {
			f.Add(m.HTML, false)
		}
	}
	f.Add(`<img src=x onerror=alert(1)><a href="java&#x09;script:alert(1)">x</a>`, true)
	f.Add(`<p style="background:url(javascript:alert(1))">x</p>`, false)
	f.Fuzz(func(t *testing.T, in string, allowRemote bool) {
		s := SanitizeHTML(in, SanitizeOptions{AllowRemoteImages: allowRemote, CIDURL: func(c string) string { return "/i/" + c }})
		checkSafeHTML(t, in, s.HTML, allowRemote)
		// Sanitizing again must not find anything new to remove.
		if again := SanitizeHTML(s.HTML, SanitizeOptions{}); again.BlockedImages != 0 && !allowRemote {
			t.Errorf("remote images left: %q -> %q", in, s.HTML)
		}
	})
}

// checkSafeHTML tokenizes sanitized output and fails on any element,
// attribute or URL the sanitizer must remove.
func checkSafeHTML(t *testing.T, in, out string, allowRemote bool) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		switch tok.Data {
		case "script", "iframe", "object", "embed", "form", "input", "meta", "style", "link", "base", "svg", "math":
			t.Fatalf("element <%s> in %q -> %q", tok.Data, in, out)
		}
		for _, a := range tok.Attr {
			v := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
			if strings.HasPrefix(a.Key, "on") || strings.Contains(v, "javascript:") || strings.Contains(v, "vbscript:") ||
				strings.Contains(v, "expression(") {
				t.Fatalf("attribute %s=%q in %q -> %q", a.Key, a.Val, in, out)
			}
			if a.Key == "src" || a.Key == "background" {
				remote := strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "//")
				if !(strings.HasPrefix(v, "/i/") || strings.HasPrefix(v, "data:image/") || remote && allowRemote) {
					t.Fatalf("%s=%q in %q -> %q", a.Key, a.Val, in, out)
				}
			}
			if a.Key == "href" && strings.HasPrefix(v, "data:") {
				t.Fatalf("href=%q in %q -> %q", a.Val, in, out)
			}
		}
	}
}
