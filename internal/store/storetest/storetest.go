// Package storetest opens fresh, migrated databases for tests: SQLite in a
// temporary folder always, and PostgreSQL when POSTDESK_TEST_POSTGRES_URL
// names a server (the test command, scripts/test, starts one). Under CI a
// missing PostgreSQL is a failure, not a skip, so no store test silently
// runs on one database only.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
)

// EnvPostgres names the variable holding an admin URL of a test PostgreSQL.
const EnvPostgres = "POSTDESK_TEST_POSTGRES_URL"

// Dialects are the databases every store test runs on.
var Dialects = []string{"sqlite", "postgres"}

// Each runs fn as a subtest on a fresh database of each dialect.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated database of the dialect, closed at cleanup.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	ctx := context.Background()
	cfg := store.Config{DataDir: t.TempDir()}
	if dialect == "postgres" {
		cfg.DatabaseURL = NewPostgresDatabase(t)
	}
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s store: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s store: %v", dialect, err)
	}
	return db
}

// NewPostgresDatabase creates an empty database on the test server and
// returns its URL; it is dropped at cleanup. Without a server it skips the
// test, or fails it when CI is set.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the tests with scripts/test, which starts PostgreSQL", EnvPostgres)
		}
		t.Skipf("%s is not set: skipping PostgreSQL (scripts/test starts one)", EnvPostgres)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "pd_test_" + hex.EncodeToString(b)
	adb, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	if _, err := adb.Exec("CREATE DATABASE " + name); err != nil {
		adb.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		defer adb.Close()
		if _, err := adb.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return fmt.Sprint(u)
}

// PutBlob stores content as a blob (spooled until a row naming it commits,
// on PostgreSQL) and returns its name.
func PutBlob(t testing.TB, db *store.DB, content string) string {
	t.Helper()
	sum, _, err := db.Blobs().Put(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// LoseBlobStatement is the statement (one argument: the blob's name) that
// loses a stored blob behind the store's back, as a test of a missing blob
// needs: a row naming a blob that is not there cannot be committed.
func LoseBlobStatement(db *store.DB) string {
	if db.Blobs().InDatabase() {
		return `DELETE FROM blobs WHERE sha256 = $1`
	}
	return `DELETE FROM blob_locations WHERE sha256 = ?`
}
