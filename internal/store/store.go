// Package store is Postdesk's database: embedded migrations per dialect,
// hand-written queries, transactions as closures, and the content-addressed
// blobs that keep raw messages (files beside SQLite, rows of PostgreSQL;
// see Blobs). An attachment is a part of its raw message (OpenAttachment).
//
// One code path serves two dialects. SQLite (modernc.org/sqlite, no cgo) is
// the default; a postgres:// URL selects PostgreSQL through pgx. Queries are
// written once with '?' placeholders and rebound for PostgreSQL; every
// dialect difference lives in dialect.go.
//
// Invariants:
//   - Every change that must be atomic happens inside one Write closure. On
//     SQLite all writes go through a single connection (BEGIN IMMEDIATE), so
//     writers never see SQLITE_BUSY; reads use a separate pool.
//   - A missing row is ErrNotFound, never a nil value.
//   - Times are stored as Unix milliseconds (UTC) in both dialects.
//   - Every string a query sends passes CleanText (no NUL, valid UTF-8), so
//     a value decoded from an email stores the same on both dialects.
//   - Values from an email that are indexed have a bounded length:
//     Message-IDs through MessageIDKey and DedupeKey, addresses by
//     mailmsg.NormalizeAddress (at most 320 bytes).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would violate a uniqueness rule.
var ErrConflict = errors.New("already exists")

// Config says where the data lives.
type Config struct {
	// DataDir holds the SQLite file (when DatabaseURL is empty) and the blob folder.
	DataDir string
	// DatabaseURL selects PostgreSQL when it starts with postgres:// or postgresql://.
	DatabaseURL string
	Logger      *slog.Logger
}

// DB is an open database. Its read methods are promoted from conn and use
// the read pool; writes happen in Write.
type DB struct {
	conn
	write *sql.DB
	read  *sql.DB
	// writeStmts, on SQLite, keeps statements prepared on the writer
	// connection across transactions.
	writeStmts *sharedStmts
	blobs      *Blobs
	log        *slog.Logger
	dataDir    string
	// checkpoints, on SQLite, copies the write-ahead log into the database
	// file off the writers' path.
	checkpoints *checkpointer
	// onEvents, when set, runs after the commit of every transaction that
	// added events (the dispatcher's wake-up).
	onEvents atomic.Pointer[func()]
	// searchQueued is signalled after the commit of a transaction that
	// queued tickets in the search backlog (Tx.BulkLoad).
	searchQueued chan struct{}
	// settingsChanged: see MailboxesChanged.
	settingsChanged chan struct{}
}

// Tx is a write transaction. Read methods see the transaction's own changes.
type Tx struct {
	conn
	tx *sql.Tx
	db *DB
	// after runs, in order, once the transaction has committed.
	after []func()
	// eventsAdded: AddEvent has registered the events wake-up already.
	eventsAdded bool
	// search holds the search documents written at commit (see
	// search_defer.go), searchBytes the text of the whole documents among
	// them.
	search      map[int64]*searchChange
	searchBytes int
	// bulk: see BulkLoad.
	bulk bool
	// recovered: see MayHoldRecovered (0 not asked yet).
	recovered recoveredState
	// unflushed: places of packed blobs its rows name, not yet known to be
	// on disk (keepPacked); the commit waits for them.
	unflushed []blobPlace
	// absentKeys: dedupe keys known absent (PrefetchDedupeKeys).
	absentKeys map[dedupeSlot]bool
}

// AfterCommit registers f to run once the transaction has committed; it
// never runs when the transaction rolls back. Use it for effects outside the
// database that must follow only committed work (metrics, log lines).
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn carries the read methods shared by DB and Tx.
type conn struct {
	q querier
	d dialect
	// stmts, on SQLite, keeps statements prepared (modernc's SQLite would
	// compile each statement's text again at every call): for the read
	// pool across calls, for a transaction until it ends.
	stmts *stmtCache
	// detached: ctx is checked before each statement rather than watched
	// while it runs (see Write).
	detached bool
}

// stmtContext is the context a statement runs with: ctx itself, unless
// the connection is detached and ctx is still live.
func (c conn) stmtContext(ctx context.Context) context.Context {
	if c.detached && ctx.Err() == nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stmtCache prepares each query once.
type stmtCache struct {
	prepare func(ctx context.Context, query string) (*sql.Stmt, error)
	mu      sync.Mutex
	m       map[string]*sql.Stmt
}

func newStmtCache(prepare func(ctx context.Context, query string) (*sql.Stmt, error)) *stmtCache {
	return &stmtCache{prepare: prepare, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query (nil if it cannot be
// prepared: the plain call then reports the error).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	return st
}

// sharedStmts keeps statements prepared on the writer pool of SQLite (a
// single connection) for every transaction to reuse through
// Tx.StmtContext: modernc's SQLite compiles a statement's text again at
// each prepare, and a transaction's own statements end with it.
//
// A statement is prepared on the pool only between transactions (Write
// does it before BEGIN, holding no connection): preparing on the pool
// while a transaction holds its only connection would wait for that
// transaction forever. Inside a transaction a statement not yet shared is
// prepared on the transaction and noted as wanted.
type sharedStmts struct {
	pool   *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

// maxSharedStmts bounds the statements kept (a query built with a
// variable number of placeholders has one text per count).
const maxSharedStmts = 256

func newSharedStmts(pool *sql.DB) *sharedStmts {
	return &sharedStmts{pool: pool, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// lookup returns the shared statement for query, or nil after noting it
// as wanted.
func (s *sharedStmts) lookup(query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[query]; ok {
		return st
	}
	if len(s.m)+len(s.wanted) < maxSharedStmts {
		s.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the wanted statements on the pool. Call it only
// while holding none of the pool's connections; the lock is not held
// while preparing (a transaction may be looking up statements meanwhile).
// A statement that could not be prepared is wanted again at its next use.
func (s *sharedStmts) prepareWanted(ctx context.Context) {
	s.mu.Lock()
	if len(s.wanted) == 0 {
		s.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(s.wanted))
	for q := range s.wanted {
		queries = append(queries, q)
	}
	clear(s.wanted)
	s.mu.Unlock()
	for _, q := range queries {
		st, err := s.pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if _, dup := s.m[q]; dup {
			st.Close() // prepared by another Write meanwhile
		} else {
			s.m[q] = st
		}
		s.mu.Unlock()
	}
}

// forTx returns the statement cache of a transaction: shared statements
// bound to it, others prepared on it.
func (s *sharedStmts) forTx(tx *sql.Tx) *stmtCache {
	return newStmtCache(func(ctx context.Context, query string) (*sql.Stmt, error) {
		if st := s.lookup(query); st != nil {
			return tx.StmtContext(ctx, st), nil
		}
		return tx.PrepareContext(ctx, query)
	})
}

func (s *sharedStmts) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = map[string]*sql.Stmt{}
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// Open opens (creating if needed) the database and blob folder. It does not
// migrate; call Migrate, or CheckSchema before serving.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("open store: data folder is not set")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	db := &DB{log: log, dataDir: cfg.DataDir, searchQueued: make(chan struct{}, 1), settingsChanged: make(chan struct{}, 1)}
	var err error
	switch {
	case cfg.DatabaseURL == "":
		path := filepath.Join(cfg.DataDir, "postdesk.db")
		if db.blobs, err = OpenBlobs(filepath.Join(cfg.DataDir, "blobs")); err != nil {
			return nil, err
		}
		if err := db.openSQLite(ctx, path); err != nil {
			return nil, err
		}
		db.blobs.index = db.read
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		if err := db.openPostgres(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
		if db.blobs, err = openDatabaseBlobs(cfg.DataDir, db.read); err != nil {
			db.read.Close()
			return nil, err
		}
	default:
		return nil, fmt.Errorf("open store: database URL must start with postgres:// (or be empty for SQLite in the data folder), got %q", redactURL(cfg.DatabaseURL))
	}
	db.conn = conn{q: db.read, d: db.d()}
	if db.d().name() == "sqlite" {
		db.conn.stmts = newStmtCache(db.read.PrepareContext)
		db.writeStmts = newSharedStmts(db.write)
	}
	return db, nil
}

func (db *DB) d() dialect { return db.conn.d }

func (db *DB) openSQLite(ctx context.Context, path string) error {
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	// The writer's statement journals stay in memory: a statement's
	// journal past 64 KB (FTS5's writes of a batch's search documents)
	// went to a temporary file opened for it. temp_store covers every
	// temporary structure of the writer, so the sort of a CREATE INDEX in a
	// migration is held in memory too: a migration that indexes a large
	// table should build its index in steps, or set temp_store back to
	// FILE while it runs.
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_txlock=immediate"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(writerAutoCheckpoint)+")&_pragma=temp_store(MEMORY)")
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer connection: SQLite allows one writer at a time, and River's
	// SQLite driver asks for a single connection too.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	// As many kept idle: with database/sql's default of two, ingest's
	// parse workers and the web opened and closed connections all along,
	// each reading the schema again (a fifth of a second of CPU in a
	// 10,000-message fetch).
	r.SetMaxIdleConns(4)
	c, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxIdleTime(0)
	db.checkpoints = newCheckpointer(c, db.log)
	if err := os.Chmod(path, 0o600); err != nil {
		db.log.Warn("restrict database file mode", "path", path, "err", err)
	}
	db.write, db.read = w, r
	db.conn.d = sqliteDialect{}
	return nil
}

func (db *DB) openPostgres(ctx context.Context, url string) error {
	p, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("open postgres %s: %w", redactURL(url), err)
	}
	p.SetMaxOpenConns(20)
	p.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.PingContext(pingCtx); err != nil {
		p.Close()
		return fmt.Errorf("connect to postgres %s: %w", redactURL(url), err)
	}
	var version string
	if err := p.QueryRowContext(pingCtx, `SELECT current_setting('server_version_num')`).Scan(&version); err != nil {
		p.Close()
		return fmt.Errorf("ask postgres %s its version: %w", redactURL(url), err)
	}
	if err := supportedPostgres(version); err != nil {
		p.Close()
		return fmt.Errorf("postgres %s: %w", redactURL(url), err)
	}
	db.write, db.read = p, p
	db.conn.d = postgresDialect{cache: new(sync.Map)}
	return nil
}

// minPostgres is the oldest PostgreSQL the schema runs on (as
// server_version_num): schema 24 names lz4 column compression (ALTER
// COLUMN ... SET COMPRESSION, PostgreSQL 14; PL/pgSQL checks the syntax
// of a branch that does not run too), and schema 25 drops generated
// expressions (PostgreSQL 13). Tests and benchmarks run on Debian's
// PostgreSQL 15.
const minPostgres = 140000

// supportedPostgres says why a server of version (server_version_num)
// cannot hold Postdesk's schema, or nil if it can. An older server would
// otherwise fail partway through the migrations with a syntax error.
func supportedPostgres(version string) error {
	n, err := strconv.Atoi(version)
	if err != nil {
		return fmt.Errorf("unexpected server_version_num %q", version)
	}
	if n < minPostgres {
		release := fmt.Sprintf("%d.%d", n/10000, n%10000) // 12.15
		if n < 100000 {
			release = fmt.Sprintf("%d.%d.%d", n/10000, n/100%100, n%100) // 9.6.24
		}
		return fmt.Errorf("PostgreSQL %s is too old: Postdesk needs PostgreSQL %d or newer", release, minPostgres/10000)
	}
	return nil
}

// Close closes the pools.
func (db *DB) Close() error {
	db.conn.stmts.close()
	db.writeStmts.close()
	if db.blobs != nil && db.blobs.lookup != nil {
		db.blobs.lookup.Close()
	}
	err := db.checkpoints.close()
	err = errors.Join(err, db.write.Close())
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Dialect names the database in use: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d().name() }

// SQL returns the writer pool, for the job engine (River), which must share
// the database and, on SQLite, its single writer connection.
func (db *DB) SQL() *sql.DB { return db.write }

// Blobs returns the content-addressed blob store.
func (db *DB) Blobs() *Blobs { return db.blobs }

// DataDir is the data folder.
func (db *DB) DataDir() string { return db.dataDir }

// Write runs fn in one transaction, committing when fn returns nil.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) (err error) {
	if db.writeStmts != nil {
		db.writeStmts.prepareWanted(ctx) // before BEGIN: see sharedStmts
	}
	// On SQLite, a statement run with a context that can end costs a
	// goroutine (modernc's, to interrupt it): 70,000 of them in a
	// 10,000-message fetch. The writer's statements take milliseconds, so
	// ctx is checked before each and before the commit instead (stmtContext),
	// and a transaction whose ctx ends rolls back as before (database/sql
	// still watches the transaction's own context, and the wait for the
	// writer's connection stops with it).
	detached := db.d().name() == "sqlite"
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	tx := &Tx{conn: conn{q: sqlTx, d: db.d(), detached: detached}, tx: sqlTx, db: db}
	if db.writeStmts != nil {
		tx.conn.stmts = db.writeStmts.forTx(sqlTx)
	}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := tx.flushSearch(ctx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := tx.awaitBlobs(); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = sqlTx.Rollback()
		return fmt.Errorf("commit: %w", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.checkpoints.wrote()
	for _, f := range tx.after {
		f()
	}
	return nil
}

// SQLTx is the underlying transaction, for inserting jobs in it.
func (tx *Tx) SQLTx() *sql.Tx { return tx.tx }

// Blobs returns the content-addressed blob store.
func (tx *Tx) Blobs() *Blobs { return tx.db.blobs }

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = c.d.rebind(query)
	args = cleanArgs(args)
	ctx = c.stmtContext(ctx)
	if st := c.stmts.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, query, args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = c.d.rebind(query)
	args = cleanArgs(args)
	ctx = c.stmtContext(ctx)
	if st := c.stmts.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, query, args...)
}

// scanInt64s reads a query's one int64 column (ids) and closes rows.
func scanInt64s(rows *sql.Rows) ([]int64, error) { return scanColumn[int64](rows) }

// scanColumn reads a query's one column and closes rows.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = c.d.rebind(query)
	args = cleanArgs(args)
	ctx = c.stmtContext(ctx)
	if st := c.stmts.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, query, args...)
}

// insert runs an INSERT ... RETURNING id and returns the id.
func (c conn) insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := c.queryRow(ctx, query+" RETURNING id", args...).Scan(&id)
	if err != nil {
		if c.d.isUniqueViolation(err) {
			return 0, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return 0, err
	}
	return id, nil
}

// one maps sql.ErrNoRows to ErrNotFound.
func one(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// ms converts a time to stored Unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts stored milliseconds back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// nullMS converts a nullable stored time.
func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "***" + u[at:]
}

// Savepoint runs fn inside a savepoint of tx: when fn fails, its writes
// (and the work it registered for the commit) are undone and the
// transaction goes on, usable, without them; fn's error is returned.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	after, searchBytes, eventsAdded, unflushed := len(tx.after), tx.searchBytes, tx.eventsAdded, len(tx.unflushed)
	search := make(map[int64]searchChange, len(tx.search))
	for id, c := range tx.search {
		search[id] = *c
	}
	if _, err := tx.tx.ExecContext(tx.stmtContext(ctx), `SAVEPOINT pd_sp`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	ferr := fn()
	if ferr == nil {
		if _, err := tx.tx.ExecContext(tx.stmtContext(ctx), `RELEASE SAVEPOINT pd_sp`); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	if _, err := tx.tx.ExecContext(tx.stmtContext(ctx), `ROLLBACK TO SAVEPOINT pd_sp`); err != nil {
		return errors.Join(ferr, fmt.Errorf("roll back to savepoint: %w", err))
	}
	if _, err := tx.tx.ExecContext(tx.stmtContext(ctx), `RELEASE SAVEPOINT pd_sp`); err != nil {
		return errors.Join(ferr, fmt.Errorf("release savepoint: %w", err))
	}
	tx.after, tx.eventsAdded = tx.after[:after], eventsAdded // its wake-up was among the dropped
	tx.unflushed = tx.unflushed[:unflushed]                  // no row names them now
	tx.searchBytes = searchBytes
	tx.search = make(map[int64]*searchChange, len(search))
	for id, c := range search {
		tx.search[id] = &c
	}
	return ferr
}
