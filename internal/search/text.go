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
// that back into exactly these tokens.
func IndexText(s string, maxBytes int) string {
	var b strings.Builder
	appendTokens(s, func(tok string) bool {
		n := len(tok)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxBytes {
			return false
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
		return true
	})
	return b.String()
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
