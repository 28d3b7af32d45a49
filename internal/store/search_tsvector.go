package store

import (
	"slices"
	"strconv"
	"strings"
)

// On PostgreSQL, Postdesk writes search documents and queries in
// tsvector's and tsquery's own text forms, built here from the tokens of
// internal/search, rather than having PostgreSQL's text search parser
// split the folded text again (to_tsvector, to_tsquery). The text is
// already split: its tokens are separated by single spaces, as SQLite's
// FTS5 "ascii" tokenizer reads them. Parsing it again with the locale-aware
// parser was a fifth of PostgreSQL's CPU in a 10,000-message sync (perf:
// parsetext, make_tsvector), and the documents and queries now hold
// exactly the tokens SQLite holds. (The parser did not always split the
// folded text back into them: it reads "3e8af" as the number 3e8 and the
// word af. Schema 25 queues the documents it built to be rebuilt.)

// PostgreSQL's bounds on a tsvector (tsearch/ts_type.h): positions run
// from 1 to maxTSPos (later words share the last), and a lexeme keeps at
// most maxTSPositions of them (later ones are dropped), as to_tsvector does.
const (
	maxTSPos       = 1<<14 - 1
	maxTSPositions = 1<<8 - 1
)

// tsPart is one part of a document: folded text (search.IndexText) and
// the weight its words carry, 'A' to 'D'.
type tsPart struct {
	text   string
	weight byte
}

// tsvectorText is the tsvector of parts, in order, as text for a
// ?::tsvector parameter: each word of each part at the next position with
// its part's weight, as setweight(to_tsvector('simple', part), weight)
// joined by || gives for folded text the parser splits alike. (At the
// bounds they may differ a little, in ranking only: || lets a word that
// spans parts keep one more position, and shifts a part by the last
// position the previous one kept.)
func tsvectorText(parts ...tsPart) string {
	type posting struct {
		pos    []int
		weight []byte
	}
	lexemes := map[string]*posting{}
	pos := 0
	for _, p := range parts {
		for w := range strings.SplitSeq(p.text, " ") {
			if w == "" {
				continue
			}
			pos = min(pos+1, maxTSPos)
			e := lexemes[w]
			if e == nil {
				e = &posting{}
				lexemes[w] = e
			}
			if n := len(e.pos); n == maxTSPositions || n > 0 && e.pos[n-1] == pos {
				continue
			}
			e.pos = append(e.pos, pos)
			e.weight = append(e.weight, p.weight)
		}
	}
	words := make([]string, 0, len(lexemes))
	size := 0
	for w, e := range lexemes {
		words = append(words, w)
		size += len(w) + 4 + 6*len(e.pos)
	}
	// PostgreSQL sorts lexemes as bytes, shorter first on a common
	// prefix: Go's string order. Given in order, its sort has nothing to do.
	slices.Sort(words)
	var b strings.Builder
	b.Grow(size)
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		tsQuote(&b, w)
		e := lexemes[w]
		for j, p := range e.pos {
			if j == 0 {
				b.WriteByte(':')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(p))
			if e.weight[j] != 'D' {
				b.WriteByte(e.weight[j])
			}
		}
	}
	return b.String()
}

// tsQuote writes a lexeme quoted for tsvector and tsquery input. Tokens
// hold letters and digits only; a quote or backslash is escaped all the
// same, so that no text can add an operator.
func tsQuote(b *strings.Builder, lexeme string) {
	b.WriteByte('\'')
	for i := 0; i < len(lexeme); i++ {
		if c := lexeme[i]; c == '\'' || c == '\\' {
			b.WriteByte(c)
		}
		b.WriteByte(lexeme[i])
	}
	b.WriteByte('\'')
}
