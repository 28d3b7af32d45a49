package store

import (
	"strings"

	"github.com/postdesk/postdesk/internal/search"
)

// A search.Query's terms become the match text of one dialect: an FTS5
// MATCH expression or a PostgreSQL tsquery. Either is passed as a bind
// parameter. Tokens hold only letters and digits (search.Tokens), and each
// is quoted all the same, so no input can add an operator.

// fts5Term is one term in FTS5 syntax: a quoted phrase (a word is a phrase
// of one), '*' for a prefix, "people :" for from:.
func fts5Term(t search.Term) string {
	var b strings.Builder
	if t.Field == search.FieldFrom {
		b.WriteString("people : ")
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(strings.Join(t.Tokens, " "), `"`, `""`))
	b.WriteByte('"')
	if t.Prefix {
		b.WriteByte('*')
	}
	return b.String()
}

// fts5Match requires every term of must (at least one) and none of mustNot.
func fts5Match(must, mustNot []search.Term) string {
	parts := make([]string, len(must))
	for i, t := range must {
		parts[i] = fts5Term(t)
	}
	s := "(" + strings.Join(parts, " AND ") + ")"
	for _, t := range mustNot {
		s += " NOT " + fts5Term(t)
	}
	return s
}

// fts5Any matches any of terms.
func fts5Any(terms []search.Term) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = fts5Term(t)
	}
	return strings.Join(parts, " OR ")
}

// tsqueryTerm is one term as a tsquery: quoted lexemes joined by <->
// (followed by), ':*' for a prefix, weight B (the people column) for from:.
func tsqueryTerm(t search.Term) string {
	parts := make([]string, len(t.Tokens))
	for i, tok := range t.Tokens {
		label := ""
		if i == len(t.Tokens)-1 && t.Prefix {
			label = "*"
		}
		if t.Field == search.FieldFrom {
			label += "B"
		}
		parts[i] = "'" + strings.NewReplacer(`'`, `''`, `\`, `\\`).Replace(tok) + "'"
		if label != "" {
			parts[i] += ":" + label
		}
	}
	return "(" + strings.Join(parts, " <-> ") + ")"
}

// tsqueryMatch requires every term of must (at least one) and none of mustNot.
func tsqueryMatch(must, mustNot []search.Term) string {
	parts := make([]string, 0, len(must)+len(mustNot))
	for _, t := range must {
		parts = append(parts, tsqueryTerm(t))
	}
	for _, t := range mustNot {
		parts = append(parts, "!"+tsqueryTerm(t))
	}
	return strings.Join(parts, " & ")
}

// tsqueryAny matches any of terms.
func tsqueryAny(terms []search.Term) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = tsqueryTerm(t)
	}
	return strings.Join(parts, " | ")
}

// splitTerms separates the terms a ticket must contain from those it must not.
func splitTerms(terms []search.Term) (must, mustNot []search.Term) {
	for _, t := range terms {
		if t.Not {
			mustNot = append(mustNot, t)
		} else {
			must = append(must, t)
		}
	}
	return must, mustNot
}
