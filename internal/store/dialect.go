package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/postdesk/postdesk/internal/search"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds every difference between SQLite and PostgreSQL.
type dialect interface {
	name() string
	rebind(query string) string
	isUniqueViolation(err error) bool
	// isTransient: the database could not do it now (connection lost,
	// busy, out of resources), not a refusal of these values.
	isTransient(err error) bool
	// likeOp is the case-insensitive LIKE operator.
	likeOp() string
	// forUpdate ends a SELECT whose rows the transaction will change, so a
	// concurrent writer waits for it (PostgreSQL); SQLite's single writer
	// needs nothing.
	forUpdate() string

	// Full-text search (migration 0014; search_expr.go, tickets.go).
	// searchKey is the column of ticket_search that holds the ticket id.
	searchKey() string
	// searchMatch compiles terms into the dialect's match text: every
	// term of must (at least one) and none of mustNot; searchAny: any term.
	searchMatch(must, mustNot []search.Term) string
	searchAny(terms []search.Term) string
	// searchHits selects (id, score) of the tickets whose document
	// matches the match text, the best with the lowest score. Ranked, it
	// takes the match text twice and scores the searchRanked most recently
	// active matches (the rest score 0, after them); unranked (a count
	// needs no rank) it takes it once and every score is 0.
	searchHits(ranked bool) string
	// searchIDs selects the ids of the tickets whose document matches.
	searchIDs() string
}

type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) rebind(q string) string { return q }
func (sqliteDialect) likeOp() string         { return "LIKE" }
func (sqliteDialect) forUpdate() string      { return "" }
func (sqliteDialect) searchKey() string      { return "rowid" }
func (sqliteDialect) searchMatch(must, mustNot []search.Term) string {
	return fts5Match(must, mustNot)
}
func (sqliteDialect) searchAny(terms []search.Term) string { return fts5Any(terms) }

// searchHits ranks with bm25, weighing a word in the subject 4 times one
// in a message (people 2, notes 1.5; size is not text).
func (d sqliteDialect) searchHits(ranked bool) string {
	if !ranked {
		return `SELECT rowid AS id, 0 AS score FROM ticket_search WHERE ticket_search MATCH ?`
	}
	return `SELECT rowid AS id, CASE WHEN rowid IN (SELECT t.id FROM tickets t WHERE t.id IN (` + d.searchIDs() + `)
		ORDER BY t.updated_at DESC LIMIT ` + strconv.Itoa(searchRanked) + `) THEN bm25(ticket_search, 4.0, 2.0, 1.0, 1.5, 0.0) ELSE 0 END AS score
		FROM ticket_search WHERE ticket_search MATCH ?`
}
func (sqliteDialect) searchIDs() string {
	return `SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?`
}

func (sqliteDialect) isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func (sqliteDialect) isTransient(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_INTERRUPT:
			return true
		}
	}
	return false
}

type postgresDialect struct {
	cache *sync.Map // query string -> rebound query string
}

func (postgresDialect) name() string      { return "postgres" }
func (postgresDialect) likeOp() string    { return "ILIKE" }
func (postgresDialect) forUpdate() string { return " FOR UPDATE" }
func (postgresDialect) searchKey() string { return "ticket_id" }
func (postgresDialect) searchMatch(must, mustNot []search.Term) string {
	return tsqueryMatch(must, mustNot)
}
func (postgresDialect) searchAny(terms []search.Term) string { return tsqueryAny(terms) }

// searchHits ranks with ts_rank and its default weights by column (subject
// 1.0, people 0.4, notes 0.2, body 0.1: the A to D labels of the tsvector).
func (postgresDialect) searchHits(ranked bool) string {
	if !ranked {
		return `SELECT ticket_id AS id, 0 AS score FROM ticket_search WHERE tsv @@ to_tsquery('simple', ?)`
	}
	return `SELECT s.ticket_id AS id, CASE WHEN s.ticket_id IN (SELECT t.id FROM tickets t JOIN ticket_search r ON r.ticket_id = t.id
		WHERE r.tsv @@ to_tsquery('simple', ?) ORDER BY t.updated_at DESC LIMIT ` + strconv.Itoa(searchRanked) + `)
		THEN -ts_rank(s.tsv, q) ELSE 0 END AS score FROM ticket_search s, to_tsquery('simple', ?) q WHERE s.tsv @@ q`
}
func (postgresDialect) searchIDs() string {
	return `SELECT ticket_id FROM ticket_search WHERE tsv @@ to_tsquery('simple', ?)`
}

func (postgresDialect) isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

func (postgresDialect) isTransient(err error) bool {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		// Class 08: connection exception; 40: transaction rollback
		// (serialization failure, deadlock); 53: insufficient resources;
		// 57: operator intervention (shutdown, cancelled statement); 58:
		// system error.
		switch e.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
	}
	return false
}

// rebind turns '?' placeholders into $1, $2, ... outside quoted strings.
func (d postgresDialect) rebind(q string) string {
	if v, ok := d.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	d.cache.Store(q, out)
	return out
}

// Transient reports whether err says the database could not do the work
// now (a lost connection, a busy or full database, a cancelled context)
// rather than that it refuses these values: work that failed transiently
// is tried again, work that was refused is quarantined.
func (db *DB) Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, driver.ErrBadConn):
		return true
	case errors.Is(err, sql.ErrConnDone):
		return true // the connection went away
	case pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &ce) {
		return true
	}
	return db.d().isTransient(err)
}
