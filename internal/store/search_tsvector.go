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
	// Every occurrence of a word, by the word's number in order of first
	// appearance; then grouped by word with a counting sort (stable, so
	// each word's positions stay in order). A few slices in all, however
	// many words: this runs in the single writer.
	type occurrence struct {
		word   int32
		pos    int32
		weight byte
	}
	n := 0
	for _, p := range parts {
		n += strings.Count(p.text, " ") + 1
	}
	ids := make(map[string]int32, n/4+1)
	var words []string
	occ := make([]occurrence, 0, n)
	pos := int32(0)
	for _, p := range parts {
		for w := range strings.SplitSeq(p.text, " ") {
			if w == "" {
				continue
			}
			id, ok := ids[w]
			if !ok {
				id = int32(len(words))
				ids[w] = id
				words = append(words, w)
			}
			pos = min(pos+1, maxTSPos)
			occ = append(occ, occurrence{id, pos, p.weight})
		}
	}
	start := make([]int32, len(words)+1)
	for _, o := range occ {
		start[o.word+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	grouped := make([]occurrence, len(occ))
	next := slices.Clone(start[:len(words)])
	for _, o := range occ {
		grouped[next[o.word]] = o
		next[o.word]++
	}
	// PostgreSQL sorts lexemes as bytes, shorter first on a common
	// prefix: Go's string order. Given in order, its sort has nothing to do.
	order := make([]int32, len(words))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(words[a], words[b]) })
	var b strings.Builder
	b.Grow(len(occ)*6 + len(words)*8)
	var num [12]byte
	for i, id := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		tsQuote(&b, words[id])
		kept, last := 0, int32(0)
		for _, o := range grouped[start[id]:start[id+1]] {
			if kept == maxTSPositions || o.pos == last {
				continue // past the positions a word keeps, or the last one again
			}
			if kept == 0 {
				b.WriteByte(':')
			} else {
				b.WriteByte(',')
			}
			b.Write(strconv.AppendInt(num[:0], int64(o.pos), 10))
			if o.weight != 'D' {
				b.WriteByte(o.weight)
			}
			kept, last = kept+1, o.pos
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
