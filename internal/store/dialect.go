package store

import (
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds every difference between SQLite and PostgreSQL.
type dialect interface {
	name() string
	rebind(query string) string
	isUniqueViolation(err error) bool
	// likeOp is the case-insensitive LIKE operator.
	likeOp() string
	// forUpdate ends a SELECT whose rows the transaction will change, so a
	// concurrent writer waits for it (PostgreSQL); SQLite's single writer
	// needs nothing.
	forUpdate() string
}

type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) rebind(q string) string { return q }
func (sqliteDialect) likeOp() string         { return "LIKE" }
func (sqliteDialect) forUpdate() string      { return "" }
func (sqliteDialect) isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

type postgresDialect struct {
	cache *sync.Map // query string -> rebound query string
}

func (postgresDialect) name() string      { return "postgres" }
func (postgresDialect) likeOp() string    { return "ILIKE" }
func (postgresDialect) forUpdate() string { return " FOR UPDATE" }
func (postgresDialect) isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
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
