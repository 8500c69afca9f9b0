// Package storetest opens a fresh, migrated database for a test: SQLite in a temporary
// directory by default, or a private schema on PostgreSQL when POSTFACH_TEST_POSTGRES holds a
// postgres:// URL. Every store-backed test in the project goes through Open, which is how the
// whole suite runs on both databases with one variable.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"postfach/internal/store"
)

// EnvPostgres names the variable that switches the suite to PostgreSQL.
const EnvPostgres = "POSTFACH_TEST_POSTGRES"

// Open returns a migrated database that is removed when the test ends.
func Open(t testing.TB) *store.DB {
	t.Helper()
	url, path := URL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url, path)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return db
}

// URL prepares an empty database and returns what store.Open takes: a postgres:// URL
// pointing at a fresh schema, or an SQLite file path (with an empty URL).
func URL(t testing.TB) (dbURL, sqlitePath string) {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		return "", filepath.Join(t.TempDir(), "postfach.db")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvPostgres, err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), ""
}

// IsPostgres reports whether the suite runs on PostgreSQL.
func IsPostgres() bool { return os.Getenv(EnvPostgres) != "" }
