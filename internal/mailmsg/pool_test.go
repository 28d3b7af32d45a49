package mailmsg

import (
	"bytes"
	"strings"
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
