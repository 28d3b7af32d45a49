package store

import (
	"slices"
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

// fts5ID is a part's ticket id (search_parts.go).
var fts5ID = "rowid & " + strconv.FormatInt(searchIDMask, 10)

// fts5Any matches a part that has any of terms.
func fts5Any(terms []search.Term) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = fts5Term(t)
	}
	return strings.Join(parts, " OR ")
}

// fts5IDs selects the tickets that have every term of must (at least one)
// in some part of their document, each term in any part, and none of
// mustNot in any.
func fts5IDs(must, mustNot []search.Term) (string, []any) {
	one := `SELECT ` + fts5ID + ` AS id FROM ticket_search WHERE ticket_search MATCH ?`
	if len(must) == 1 && len(mustNot) == 0 {
		return `SELECT DISTINCT ` + one[len("SELECT "):], []any{fts5Term(must[0])}
	}
	q := make([]string, len(must))
	args := make([]any, 0, len(must)+1)
	for i, t := range must {
		q[i] = one
		args = append(args, fts5Term(t))
	}
	s := strings.Join(q, " INTERSECT ")
	if len(mustNot) > 0 {
		s += " EXCEPT " + one
		args = append(args, fts5Any(mustNot))
	}
	return s, args
}

// fts5Hits ranks with bm25, weighing a word in the subject 4 times one in a
// message (people 2, notes 1.5; size is not text), a ticket by its best
// part. bm25 reads every scored part's sizes and positions, so it runs
// only for the searchRanked newest matches (by ticket id).
func fts5Hits(must, mustNot []search.Term, ranked bool) (string, []any) {
	ids, args := fts5IDs(must, mustNot)
	if !ranked {
		return `SELECT id, 0 AS score FROM (` + ids + `)`, args
	}
	// bm25 cannot be an aggregate's argument: the parts are scored in a
	// subquery that LIMIT keeps from being merged into the grouping.
	q := `SELECT h.id AS id, COALESCE(s.score, 0) AS score FROM (` + ids + `) h LEFT JOIN (
		SELECT id, MIN(score) AS score FROM (
			SELECT ` + fts5ID + ` AS id, bm25(ticket_search, 4.0, 2.0, 1.0, 1.5, 0.0) AS score FROM ticket_search
			WHERE ticket_search MATCH ? AND ` + fts5ID + ` IN (SELECT id FROM (` + ids + `) ORDER BY id DESC LIMIT ` + rankedLimit + `)
			LIMIT -1)
		GROUP BY id) s ON s.id = h.id`
	all := slices.Concat(args, []any{fts5Any(must)}, args)
	return q, all
}

// fts5AnyIDs selects the tickets that match any of terms.
func fts5AnyIDs(terms []search.Term) (string, []any) {
	return `SELECT ` + fts5ID + ` FROM ticket_search WHERE ticket_search MATCH ?`, []any{fts5Any(terms)}
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
