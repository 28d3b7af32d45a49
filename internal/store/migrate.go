package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func (db *DB) migrations() ([]migration, error) {
	dir := path.Join("migrations", db.d().name())
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must count up from 1 without gaps", m.name)
		}
	}
	return out, nil
}

// SchemaVersion is the newest migration this binary knows.
func (db *DB) SchemaVersion() (int, error) {
	ms, err := db.migrations()
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

func (db *DB) appliedVersion(ctx context.Context) (int, error) {
	if _, err := db.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	var v int
	err := db.write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Migrate applies every migration not yet applied, each in its own
// transaction, and returns how many it applied.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	return db.migrateTo(ctx, -1)
}

// migrateTo applies the migrations not yet applied up to version upTo
// (all when negative).
func (db *DB) migrateTo(ctx context.Context, upTo int) (int, error) {
	all, err := db.migrations()
	if err != nil {
		return 0, err
	}
	if upTo >= 0 && upTo < len(all) {
		all = all[:upTo]
	}
	if db.d().name() == "postgres" {
		// Serialise concurrent migrators (several serve processes starting at once).
		c, err := db.write.Conn(ctx)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(7436152)`); err != nil {
			return 0, fmt.Errorf("take migration lock: %w", err)
		}
		defer c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7436152)`)
	}
	have, err := db.appliedVersion(ctx)
	if err != nil {
		return 0, err
	}
	if have > len(all) && upTo < 0 {
		return 0, fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade postdesk", have, len(all))
	}
	applied := 0
	for _, m := range all[min(have, len(all)):] {
		err := db.Write(ctx, func(tx *Tx) error {
			if _, err := tx.tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		db.log.Info("applied migration", "version", m.version, "name", m.name)
		applied++
	}
	return applied, nil
}

// ErrSchemaOutdated means the database needs `postdesk migrate`.
var ErrSchemaOutdated = errors.New("database schema is not up to date")

// CheckSchema fails unless the database is at exactly the version this
// binary knows: serve refuses to run on a schema it does not know.
func (db *DB) CheckSchema(ctx context.Context) error {
	want, err := db.SchemaVersion()
	if err != nil {
		return err
	}
	have, err := db.appliedVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case have < want:
		return fmt.Errorf("%w: at version %d, this binary needs %d (run postdesk migrate)", ErrSchemaOutdated, have, want)
	case have > want:
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade postdesk", have, want)
	}
	return nil
}
