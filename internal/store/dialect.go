package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/url"
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
	// forNoKeyUpdate is forUpdate for a writer of a row other rows refer
	// to: it waits for other writers but not for inserts that only check
	// the row exists (a foreign key's KEY SHARE lock), so a transaction
	// that inserted a child row can still take it without a deadlock.
	forNoKeyUpdate() string

	// Full-text search (migration *_search.sql): the SQL lives in search_sql.go.
	// searchKey is the column of ticket_search that holds the ticket id.
	searchKey() string
	// searchHits is a query selecting (id, score) of the tickets that
	// match every term of must (at least one) and none of mustNot, the
	// best with the lowest score, and its arguments. Ranked, it scores the
	// searchRanked newest matches (the rest score 0, after them);
	// unranked (a count needs no rank) every score is 0.
	searchHits(must, mustNot []search.Term, ranked bool) (string, []any)
	// searchAnyIDs is a query selecting the ids of the tickets that match
	// any of terms, and its arguments.
	searchAnyIDs(terms []search.Term) (string, []any)
	// forShare ends a SELECT whose rows must not change before the
	// transaction commits (PostgreSQL); SQLite's single writer needs nothing.
	forShare() string
}

type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) rebind(q string) string { return q }
func (sqliteDialect) likeOp() string         { return "LIKE" }
func (sqliteDialect) forUpdate() string      { return "" }
func (sqliteDialect) forNoKeyUpdate() string { return "" }
func (sqliteDialect) searchKey() string      { return "rowid" }
func (sqliteDialect) searchHits(must, mustNot []search.Term, ranked bool) (string, []any) {
	return fts5Hits(must, mustNot, ranked)
}
func (sqliteDialect) searchAnyIDs(terms []search.Term) (string, []any) { return fts5AnyIDs(terms) }

func (sqliteDialect) forShare() string { return "" }
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
func (postgresDialect) forNoKeyUpdate() string {
	return " FOR NO KEY UPDATE"
}
func (postgresDialect) searchKey() string { return "ticket_id" }
func (postgresDialect) searchHits(must, mustNot []search.Term, ranked bool) (string, []any) {
	return tsqueryHits(must, mustNot, ranked)
}
func (postgresDialect) searchAnyIDs(terms []search.Term) (string, []any) { return tsqueryAnyIDs(terms) }

func (postgresDialect) forShare() string { return " FOR SHARE" }
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

// Unavailable reports whether err says the database is out of reach (it
// cannot be dialled, the connection broke, the server is shutting down or
// full), as opposed to refusing a statement: a request that failed so is
// answered 503, to be tried again, not 500.
func Unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	var ue *url.Error
	var de *net.DNSError
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &ce):
		return true // pgx could not connect (the name, the address, the server)
	case errors.As(err, &pe):
		// 08: connection exception; 53: insufficient resources (too many
		// connections, disk full); 57P: the server is shutting down or
		// starting.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "57P")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &ue), errors.As(err, &de):
		// A request that ran out of time, or an HTTP call or a name
		// lookup of Postdesk's own (a provider, a webhook): not the
		// database, whose failures to connect pgx reports above.
		return false
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &ne):
		// An open connection that broke mid-statement: pgx returns the
		// network's error, or the EOF of the reply it was reading.
		return true
	}
	return false
}
