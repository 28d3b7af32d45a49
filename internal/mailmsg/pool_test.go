package mailmsg

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCRLFToLF(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"no breaks":          "no breaks",
		"a\r\nb\r\n":         "a\nb\n",
		"a\r\r\nb":           "a\r\nb",
		"lone\r and \n\r ok": "lone\r and \n\r ok",
		"ends\r":             "ends\r",
		"\r\n\r\n":           "\n\n",
	} {
		if got := string(crlfToLF([]byte(in))); got != want {
			t.Errorf("crlfToLF(%q) = %q, want %q", in, got, want)
		}
		if got := strings.ReplaceAll(in, "\r\n", "\n"); got != want {
			t.Errorf("%q: want %q, strings.ReplaceAll gives %q", in, want, got)
		}
	}
}

// A body of one part is kept as its part's string; parts appended, a
// replaced alternative and the cap behave as when every part was copied.
func TestBodySlot(t *testing.T) {
	var s bodySlot
	s.add("first", 0, 100)
	s.add("second", 0, 100)
	s.add("", 0, 100)
	if got := s.String(); got != "first\nsecond" {
		t.Errorf("appended = %q", got)
	}
	s = bodySlot{}
	s.add("plain", 7, 100)
	s.add("rich", 7, 100)
	if got := s.String(); got != "rich" {
		t.Errorf("alternative = %q", got)
	}
	s = bodySlot{}
	s.add(strings.Repeat("x", 10), 0, 8)
	s.add("more", 0, 8)
	if got := s.String(); got != "xxxxxxxx\n" || !s.truncated { // as before: the separator, then nothing fits
		t.Errorf("capped = %q, truncated %v", got, s.truncated)
	}
	s = bodySlot{}
	s.add("abc", 0, 6)
	s.add("defgh", 0, 6)
	if got := s.String(); got != "abc\nde" || !s.truncated {
		t.Errorf("capped when appended = %q, truncated %v", got, s.truncated)
	}
}

// Pooled readers come back empty and reading their new source.
func TestPooledReader(t *testing.T) {
	br, pooled := getReader(strings.NewReader("one"), 4<<10)
	br.ReadByte()
	putReader(br, pooled)
	br, pooled = getReader(strings.NewReader("two"), 4<<10)
	got, _ := br.ReadString(0)
	putReader(br, pooled)
	if got != "two" {
		t.Errorf("read %q from a reused reader", got)
	}
	big, _ := getReader(bytes.NewReader(nil), 64<<10)
	if same, pooled := getReader(big, 8<<10); same != big || pooled {
		t.Error("a large enough bufio.Reader was not used as it is")
	}
}

// A quoted-printable body that encodes a CR before its line breaks (=0D,
// as some Windows mailers write): "\r\r\n" once decoded, "\r\n" in the
// text whatever the charset (one pass of CRLF to LF, as always).
func TestCRBeforeCRLF(t *testing.T) {
	for _, cs := range []string{"utf-8", "us-ascii", "iso-8859-1", "windows-1252"} {
		raw := "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=" + cs + "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"line one=0D\r\nline two=0D\r\n"
		m, err := Parse(strings.NewReader(raw), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := "line one\r\nline two\r\n"; m.Text != want {
			t.Errorf("charset %s: Text = %q, want %q", cs, m.Text, want)
		}
	}
}

// Parses running at once share the pools and still each give what a
// parse alone gives (run with -race: the buffers one hands back are not
// read by another).
func TestParseConcurrently(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	parse := func(raw []byte) string {
		var atts [][]byte
		m, fs, err := ParseForwards(bytes.NewReader(raw), ParseOptions{MaxBodyBytes: 3000, Attachment: func(a *Attachment, r io.Reader) error {
			b, err := io.ReadAll(r)
			atts = append(atts, b)
			return err
		}})
		spans, _ := PartSpans(bytes.NewReader(raw))
		return fmt.Sprintf("%+v %+v %v %q %+v", m, fs, err, atts, spans)
	}
	var raws [][]byte
	var want []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raws, want = append(raws, raw), append(want, parse(raw))
	}
	if len(raws) == 0 {
		t.Fatal("no fixtures")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i, raw := range raws {
				if got := parse(raw); got != want[i] {
					t.Errorf("%s parsed beside others differs from parsed alone", files[i])
				}
			}
		})
	}
	wg.Wait()
}
