package store

import (
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/search"
)

// A search.Query's terms become the match text of one dialect, an FTS5
// MATCH expression or PostgreSQL tsqueries, always passed as bind
// parameters. Tokens hold only letters and digits (search.Tokens), and each
// is quoted all the same, so no input can add an operator.

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

// rankedLimit is the LIMIT of the matches that are ranked.
var rankedLimit = strconv.Itoa(searchRanked)

// --- SQLite: FTS5 -------------------------------------------------------

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

// fts5Hits ranks with bm25, weighing a word in the subject 4 times one in a
// message (people 2, notes 1.5; size is not text). bm25 reads every match's
// sizes and positions, so it runs only for the searchRanked newest matches
// (by ticket id, the order of FTS5's doclists, which the subquery that
// picks them reads backwards).
func fts5Hits(must, mustNot []search.Term, ranked bool) (string, []any) {
	match := fts5Match(must, mustNot)
	if !ranked {
		return `SELECT rowid AS id, 0 AS score FROM ticket_search WHERE ticket_search MATCH ?`, []any{match}
	}
	return `SELECT rowid AS id, CASE WHEN rowid IN (SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?
		ORDER BY rowid DESC LIMIT ` + rankedLimit + `) THEN bm25(ticket_search, 4.0, 2.0, 1.0, 1.5, 0.0) ELSE 0 END AS score
		FROM ticket_search WHERE ticket_search MATCH ?`, []any{match, match}
}

// fts5AnyIDs selects the tickets that match any of terms.
func fts5AnyIDs(terms []search.Term) (string, []any) {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = fts5Term(t)
	}
	return `SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?`, []any{strings.Join(parts, " OR ")}
}

// --- PostgreSQL: tsquery ------------------------------------------------

// tsqueryTerm is one term as a tsquery: quoted lexemes joined by <->
// (followed by), ':*' for a prefix.
func tsqueryTerm(t search.Term) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, tok := range t.Tokens {
		if i > 0 {
			b.WriteString(" <-> ")
		}
		tsQuote(&b, tok)
	}
	if t.Prefix && len(t.Tokens) > 0 {
		b.WriteString(":*")
	}
	b.WriteByte(')')
	return b.String()
}

// tsqueryFields splits terms by the column they look in: tsv (every
// column) or people_tsv (from:), each a tsquery that requires every term of
// must and none of mustNot ("" when the field has no term). pos says
// whether all has a term that must be there.
func tsqueryFields(must, mustNot []search.Term) (all, people string, pos bool) {
	var a, p []string
	add := func(t search.Term, s string) {
		if t.Field == search.FieldFrom {
			p = append(p, s)
		} else {
			a = append(a, s)
		}
	}
	for _, t := range must {
		add(t, tsqueryTerm(t))
		pos = pos || t.Field != search.FieldFrom
	}
	for _, t := range mustNot {
		add(t, "!"+tsqueryTerm(t))
	}
	return strings.Join(a, " & "), strings.Join(p, " & "), pos
}

// tsqueryHits ranks with ts_rank and its default weights by column
// (subject 1.0, people 0.4, notes 0.2, body 0.1: the A to D labels of the
// tsvector), or by the people alone for a search of from: only. The GIN
// indexes find the matches without reading a tsvector; ts_rank reads each
// one (TOASTed), so only the searchRanked newest matches are ranked.
func tsqueryHits(must, mustNot []search.Term, ranked bool) (string, []any) {
	all, people, pos := tsqueryFields(must, mustNot)
	var where []string
	var args []any
	if all != "" {
		where = append(where, `s.tsv @@ ?::tsquery`)
		args = append(args, all)
	}
	if people != "" {
		where = append(where, `s.people_tsv @@ ?::tsquery`)
		args = append(args, people)
	}
	cond := strings.Join(where, " AND ")
	if !ranked {
		return `SELECT s.ticket_id AS id, 0 AS score FROM ticket_search s WHERE ` + cond, args
	}
	col, rankBy := "s.tsv", all
	if !pos {
		col, rankBy = "s.people_tsv", people
	}
	return `SELECT x.id, CASE WHEN x.rn <= ` + rankedLimit + ` THEN -ts_rank(x.v, r.q) ELSE 0 END AS score FROM (
		SELECT s.ticket_id AS id, ` + col + ` AS v, row_number() OVER (ORDER BY s.ticket_id DESC) AS rn
		FROM ticket_search s WHERE ` + cond + `) x, (SELECT ?::tsquery AS q) r`, append(args, rankBy)
}

// tsqueryAnyIDs selects the tickets that match any of terms.
func tsqueryAnyIDs(terms []search.Term) (string, []any) {
	var a, p []string
	for _, t := range terms {
		if t.Field == search.FieldFrom {
			p = append(p, tsqueryTerm(t))
		} else {
			a = append(a, tsqueryTerm(t))
		}
	}
	var or []string
	var args []any
	if len(a) > 0 {
		or = append(or, `tsv @@ ?::tsquery`)
		args = append(args, strings.Join(a, " | "))
	}
	if len(p) > 0 {
		or = append(or, `people_tsv @@ ?::tsquery`)
		args = append(args, strings.Join(p, " | "))
	}
	return `SELECT ticket_id FROM ticket_search WHERE ` + strings.Join(or, " OR "), args
}
