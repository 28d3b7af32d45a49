package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxTokenRunes bounds one token: a longer run of letters and digits (a
// base64 blob, a hash) is cut to its first MaxTokenRunes runes, on both the
// indexed and the query side, so the two still meet. PostgreSQL refuses
// lexemes over 2047 bytes; 100 runes is at most 400.
const MaxTokenRunes = 100

// Tokens splits s into search tokens: compatibility-decomposed (NFKD, so
// "ﬁ" is "fi" and "²" is "2"), without combining marks (so "café" is
// "cafe"), lower-cased, and cut at every rune that is not a letter or a
// decimal digit. The same function tokenizes what is indexed and what is
// searched for, so both databases see the same words.
func Tokens(s string) []string {
	var out []string
	appendTokens(s, func(tok string) bool {
		out = append(out, tok)
		return true
	})
	return out
}

// IndexText is s as the databases index it: its tokens joined by single
// spaces, at most maxBytes long (cut at a token boundary). Either
// database's tokenizer (SQLite FTS5 "ascii", PostgreSQL "simple") splits
// that back into exactly these tokens. It gives what Tokens gives, joined;
// runs of ASCII (most of most emails) are tokenized byte by byte, without
// the normalisation that cannot change them, straight into the result.
func IndexText(s string, maxBytes int) string {
	if maxBytes <= 0 {
		return ""
	}
	t := indexer{max: maxBytes, start: -1, buf: make([]byte, 0, min(len(s), maxBytes)+1)}
	for i := 0; i < len(s) && !t.done; {
		c := s[i]
		if c >= utf8.RuneSelf {
			j := i + 1
			for j < len(s) && s[j] >= utf8.RuneSelf {
				j++
			}
			// NFKD only decomposes and reorders combining marks, and an
			// ASCII byte is neither: a run without ASCII normalises alone.
			t.unicode(s[i:j])
			i = j
			continue
		}
		switch {
		case asciiWord[c]:
			// A run of ASCII letters and digits at once.
			j := i + 1
			for j < len(s) && asciiWord[s[j]] {
				j++
			}
			t.ascii(s[i:j])
			i = j
			continue
		case c == 0:
			// Dropped, as store.CleanText drops it from what is stored.
		default:
			t.flush()
		}
		i++
	}
	t.flush()
	return string(t.buf)
}

// indexer builds IndexText's result.
type indexer struct {
	buf   []byte
	max   int
	start int // where the token being read begins in buf (its space included); -1: none
	runes int // the token's runes so far
	done  bool
}

// letter adds r, a lower-cased letter or digit, to the token being read.
func (t *indexer) letter(r rune) {
	if t.runes >= MaxTokenRunes {
		return
	}
	if t.start < 0 {
		t.start = len(t.buf)
		if len(t.buf) > 0 {
			t.buf = append(t.buf, ' ')
		}
	}
	t.buf = utf8.AppendRune(t.buf, r)
	t.runes++
}

// asciiWord marks the ASCII letters and digits.
var asciiWord = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

// ascii adds run, ASCII letters and digits, to the token being read, in
// lower case: what letter does for each of them.
func (t *indexer) ascii(run string) {
	room := MaxTokenRunes - t.runes
	if room <= 0 {
		return
	}
	if len(run) > room {
		run = run[:room]
	}
	if t.start < 0 {
		t.start = len(t.buf)
		if len(t.buf) > 0 {
			t.buf = append(t.buf, ' ')
		}
	}
	n := len(t.buf)
	t.buf = append(t.buf, run...)
	for k := n; k < len(t.buf); k++ {
		if c := t.buf[k]; 'A' <= c && c <= 'Z' {
			t.buf[k] = c + 'a' - 'A'
		}
	}
	t.runes += len(run)
}

// flush ends the token being read; one that does not fit ends the text.
func (t *indexer) flush() {
	if t.start < 0 {
		return
	}
	if len(t.buf) > t.max {
		t.buf, t.done = t.buf[:t.start], true
	}
	t.start, t.runes = -1, 0
}

// unicode tokenizes s, a run without ASCII, as appendTokens does.
func (t *indexer) unicode(s string) {
	var it norm.Iter
	it.InitString(norm.NFKD, s)
	for !it.Done() && !t.done {
		seg := it.Next()
		for len(seg) > 0 && !t.done {
			r, size := utf8.DecodeRune(seg)
			seg = seg[size:]
			switch {
			case r == 0, unicode.Is(unicode.Mn, r):
			case unicode.IsLetter(r) || unicode.IsDigit(r):
				t.letter(unicode.ToLower(r))
			default:
				t.flush()
			}
		}
	}
}

// appendTokens calls emit with each token of s until it returns false.
func appendTokens(s string, emit func(string) bool) {
	var tok strings.Builder
	runes := 0
	flush := func() bool {
		if tok.Len() == 0 {
			return true
		}
		ok := emit(tok.String())
		tok.Reset()
		runes = 0
		return ok
	}
	var it norm.Iter
	it.InitString(norm.NFKD, s)
	for !it.Done() {
		seg := it.Next()
		for len(seg) > 0 {
			r, size := utf8.DecodeRune(seg)
			seg = seg[size:]
			switch {
			case r == 0:
				// Dropped, as store.CleanText drops it from what is stored.
			case unicode.Is(unicode.Mn, r):
				// A combining mark (an accent once decomposed) joins
				// its base letter's token without being kept.
			case unicode.IsLetter(r) || unicode.IsDigit(r):
				if runes < MaxTokenRunes {
					tok.WriteRune(unicode.ToLower(r))
					runes++
				}
			default:
				if !flush() {
					return
				}
			}
		}
	}
	flush()
}

// Unquoted is an email's text without its quoted lines (those that start
// with '>', RFC 3676 4.5): the earlier messages they repeat are indexed
// once, as themselves, and a long thread does not index its history again
// with every answer.
func Unquoted(s string) string {
	if !strings.Contains(s, ">") {
		return s
	}
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), ">") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
