package mailmsg

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	mcharset "github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/transform"
)

// charsetDecoder finds a decoder for a MIME charset label. It prefers the
// WHATWG labels (so "iso-8859-1" means windows-1252, as in browsers and mail
// clients), then the IANA registry of go-message's charset package. It
// returns nil, true for UTF-8 and its stand-ins (no conversion), and
// nil, false for a charset nobody knows.
func charsetDecoder(label string) (decode func([]byte) ([]byte, error), ok bool) {
	if utf8Label(label) {
		return nil, true
	}
	l := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	if e, err := htmlindex.Get(l); err == nil && e != nil && e != encoding.Replacement {
		return func(b []byte) ([]byte, error) {
			out, _, err := transform.Bytes(e.NewDecoder(), b)
			return out, err
		}, true
	}
	if _, err := mcharset.Reader(l, bytes.NewReader(nil)); err != nil {
		return nil, false
	}
	return func(b []byte) ([]byte, error) {
		r, err := mcharset.Reader(l, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}, true
}

// utf8Label reports whether a charset label means UTF-8 or one of its
// stand-ins, which decodeText reads as UTF-8 (else as windows-1252).
func utf8Label(label string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`)) {
	case "", "utf-8", "utf8", "x-utf-8", "unicode-1-1-utf-8",
		// Undeclared 8-bit text in practice is windows-1252 or UTF-8;
		// decodeText tries UTF-8 first.
		"us-ascii", "ascii", "ansi_x3.4-1968", "iso-ir-6", "646", "default", "x-unknown", "unknown-8bit", "x-user-defined":
		return true
	}
	return false
}

// decodeText converts b from the declared charset to valid UTF-8. It never
// fails: an unknown charset, or bytes that are not valid in the declared one,
// are decoded best-effort and reported through problem.
func decodeText(b []byte, label string, problem func(string)) string {
	dec, ok := charsetDecoder(label)
	if !ok {
		problem(fmt.Sprintf("unknown charset %q, decoded as UTF-8 or windows-1252", label))
	}
	if dec != nil {
		out, err := dec(b)
		if err == nil {
			return fixUTF8(string(out))
		}
		problem(fmt.Sprintf("charset %q: %v", label, err))
	}
	if utf8.Valid(b) {
		return string(b)
	}
	if ok && label != "" && !isASCIILabel(label) {
		problem(fmt.Sprintf("text declared %q has invalid bytes, decoded as windows-1252", label))
	}
	return fixUTF8(string(b))
}

func isASCIILabel(l string) bool {
	l = strings.ToLower(strings.TrimSpace(l))
	return l == "us-ascii" || l == "ascii"
}

// fixUTF8 returns s with every byte that is not part of a valid UTF-8
// sequence decoded as windows-1252: raw latin1 in headers or undeclared 8-bit
// bodies come out readable, and valid UTF-8 around them is kept.
func fixUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(win1252(s[i]))
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func win1252(c byte) rune {
	r := charmap.Windows1252.DecodeByte(c)
	if r == utf8.RuneError || r < 0x20 && c >= 0x80 {
		return utf8.RuneError
	}
	return r
}

// headerCharsetReader is a mime.WordDecoder CharsetReader that never fails:
// unknown charsets fall back to UTF-8 / windows-1252 and are reported.
func headerCharsetReader(problem func(string)) func(string, io.Reader) (io.Reader, error) {
	return func(label string, in io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(io.LimitReader(in, 1<<20))
		if err != nil {
			return nil, err
		}
		return strings.NewReader(decodeText(b, label, problem)), nil
	}
}
