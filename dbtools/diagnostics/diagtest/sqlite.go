package diagtest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
)

// Dialects of Database.
const (
	PostgreSQL = "postgresql"
	SQLite     = "sqlite"
)

// Database is a seeded database of one dialect: the diagnostics that read
// only Quay's tables run the same cases on both.
type Database struct {
	Dialect string
	// URI is a DB_URI (sqlite:////abs/path.db for SQLite).
	URI  string
	Seed Seed
	// Q reads the database: a *pgx.Conn, or a read-only
	// diagnostics.SQLite, as the commands open it.
	Q diagnostics.Querier
	w writer
}

// Exec runs one statement ($n placeholders; time.Time arguments are
// stored as Quay stores them) or fails the test.
func (d *Database) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	d.w.exec(t, sql, args...)
}

// SeededDatabases returns Load's rows in PostgreSQL and in SQLite.
func SeededDatabases(t testing.TB) []*Database {
	t.Helper()
	uri, seed := SeededDatabase(t)
	conn := Connect(t, uri)
	pgDB := &Database{Dialect: PostgreSQL, URI: uri, Seed: seed, Q: conn, w: pgWriter{conn}}
	return []*Database{pgDB, SeededSQLiteDatabase(t)}
}

// SeededSQLite creates a SQLite database file in Quay's schema (Quay's own
// SQLite dump and enum rows) holding Load's rows, and returns its DB_URI.
func SeededSQLite(t testing.TB) (string, Seed) {
	t.Helper()
	d := SeededSQLiteDatabase(t)
	return d.URI, d.Seed
}

// SeededSQLiteDatabase is SeededSQLite as a Database.
func SeededSQLiteDatabase(t testing.TB) *Database {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quay.db")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(repoRoot(), "testdata", "quay")
	for _, f := range []string{"quay-schema-sqlite.sql", "quay-seed-data-sqlite.sql"} {
		script, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range statements(string(script)) {
			if _, err := db.Exec(st); err != nil {
				t.Fatalf("load %s into SQLite: %s: %v", f, st, err)
			}
		}
	}
	w := liteWriter{db}
	seed := load(t, w)
	q, err := diagnostics.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return &Database{Dialect: SQLite, URI: "sqlite:///" + path, Seed: seed, Q: q, w: w}
}
