package password_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver for assertions
	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite"

	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's real schema: testdata/quay/quay-schema-sqlite.sql (shared) and
// quay-seed-data-sqlite.sql are Quay's own SQLite dump (quay/quay
// internal/dal/schema/sqlite, the same files registry/store tests use). On
// SQLite they load as they are; on PostgreSQL diagtest.QuayDatabase
// converts them the way Quay's Alembic migrations lay the tables out.
const (
	quaySchemaFile = "../../testdata/quay/quay-schema-sqlite.sql"
	quaySeedFile   = "../../testdata/quay/quay-seed-data-sqlite.sql"
)

// fixture is a database holding Quay's schema, with helpers to add
// accounts and read them back.
type fixture struct {
	name   string
	uri    string  // DB_URI for password.Open
	db     *sql.DB // the test's own handle, for setup and assertions
	pg     bool
	pgURI  string // the plain postgres URI (PostgreSQL only)
	dbName string
	// serve is set when quayctl serve's migrations created the schema.
	serve *store.DB
}

func (f *fixture) q(s string) string {
	if !f.pg {
		return s
	}
	n := 0
	return regexp.MustCompile(`\?`).ReplaceAllStringFunc(s, func(string) string { n++; return fmt.Sprintf("$%d", n) })
}

func (f *fixture) exec(t testing.TB, s string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(f.q(s), args...); err != nil {
		t.Fatalf("%s: %s: %v", f.name, s, err)
	}
}

// account is what addUser creates.
type account struct {
	Username, Email, Password string
	Org, Robot, Superuser     bool
	InvalidLoginAttempts      int
	NoPassword                bool
}

// addUser inserts an account (through quayctl serve's store on its own
// databases, with plain SQL in Quay's columns otherwise) and returns its id.
func (f *fixture) addUser(t testing.TB, a account) int64 {
	t.Helper()
	hash := ""
	if a.Password != "" && !a.NoPassword {
		hash = cheapHash(t, a.Password)
	}
	if a.Email == "" {
		a.Email = uuid.NewString() + "@example.com"
	}
	var id int64
	if f.serve != nil {
		u, err := f.serve.CreateUser(context.Background(), store.NewUser{Username: a.Username, Email: a.Email, PasswordHash: hash,
			Verified: true, Organization: a.Org, Robot: a.Robot, Superuser: a.Superuser})
		if err != nil {
			t.Fatalf("%s: create %s: %v", f.name, a.Username, err)
		}
		id = u.ID
	} else {
		var ph any
		if hash != "" {
			ph = hash
		}
		err := f.db.QueryRow(f.q(`INSERT INTO "user" (uuid, username, password_hash, email, verified, organization, robot, invoice_email,
			invalid_login_attempts, last_invalid_login, removed_tag_expiration_s, enabled, creation_date)
			VALUES (?, ?, ?, ?, true, ?, ?, false, 0, ?, 1209600, true, ?) RETURNING id`),
			uuid.NewString(), a.Username, ph, a.Email, a.Org, a.Robot, f.ts(time.Now()), f.ts(time.Now())).Scan(&id)
		if err != nil {
			t.Fatalf("%s: insert %s: %v", f.name, a.Username, err)
		}
	}
	if a.InvalidLoginAttempts > 0 {
		f.exec(t, `UPDATE "user" SET invalid_login_attempts = ?, last_invalid_login = ? WHERE id = ?`, a.InvalidLoginAttempts, f.ts(time.Now().Add(-time.Hour)), id)
	}
	return id
}

func (f *fixture) ts(at time.Time) any {
	if f.pg {
		return at.UTC()
	}
	return at.UTC().Format("2006-01-02 15:04:05.000000")
}

// cheapHash hashes a fixture's old password at bcrypt's minimum cost: only
// the hashes reset-password writes need cost 12, and the tests check those.
func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// row is the stored state of an account.
type row struct {
	Hash     sql.NullString
	Attempts int
}

func (f *fixture) user(t testing.TB, id int64) row {
	t.Helper()
	var r row
	if err := f.db.QueryRow(f.q(`SELECT password_hash, invalid_login_attempts FROM "user" WHERE id = ?`), id).Scan(&r.Hash, &r.Attempts); err != nil {
		t.Fatalf("%s: read user %d: %v", f.name, id, err)
	}
	return r
}

// snapshot is every account's id, name, hash and attempts: byte-identical
// before and after a refused reset.
func (f *fixture) snapshot(t testing.TB) string {
	t.Helper()
	rows, err := f.db.Query(`SELECT id, username, COALESCE(password_hash, '<null>'), invalid_login_attempts FROM "user" ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int64
		var name, hash string
		var n int
		if err := rows.Scan(&id, &name, &hash, &n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d\t%q\t%s\t%d\n", id, name, hash, n)
	}
	fmt.Fprintf(&b, "audit rows: %d\n", f.auditCount(t, 0))
	return b.String()
}

// auditCount counts user_change_password rows (for account id, or all with 0).
func (f *fixture) auditCount(t testing.TB, id int64) int {
	t.Helper()
	q := `SELECT count(*) FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id WHERE k.name = 'user_change_password'`
	var args []any
	if id != 0 {
		q += ` AND l.account_id = ? AND l.performer_id = ?`
		args = append(args, id, id)
	}
	var n int
	if err := f.db.QueryRow(f.q(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: count audit rows: %v", f.name, err)
	}
	return n
}

// auditMetadata returns the metadata_json of the account's audit rows.
func (f *fixture) auditMetadata(t testing.TB, id int64) []string {
	t.Helper()
	rows, err := f.db.Query(f.q(`SELECT l.metadata_json FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id
		WHERE k.name = 'user_change_password' AND l.account_id = ? ORDER BY l.id`), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func openSQL(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// sqliteDSN escapes the path ('#' and '?' would otherwise end it).
func sqliteDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)"
}

func dbNameOf(uri string) string {
	name := uri[strings.LastIndex(uri, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	return name
}

// quayPG is a PostgreSQL database in Quay's real schema.
func quayPG(t testing.TB) *fixture {
	t.Helper()
	uri := diagtest.QuayDatabase(t)
	db := openSQL(t, "pgx", uri)
	return &fixture{name: "quay-schema/postgresql", uri: uri, db: db, pg: true, pgURI: uri, dbName: dbNameOf(uri)}
}

// servePG is a PostgreSQL database created by quayctl serve's migrations.
func servePG(t testing.TB) *fixture {
	t.Helper()
	uri := testpg.NewDatabase(t)
	st := migrated(t, uri)
	return &fixture{name: "quayctl-serve/postgresql", uri: uri, db: openSQL(t, "pgx", uri), pg: true, pgURI: uri, dbName: dbNameOf(uri), serve: st}
}

// quaySQLite is a SQLite file in Quay's real schema (mirror-registry's kind).
func quaySQLite(t testing.TB) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quay_sqlite.db")
	db := openSQL(t, "sqlite", sqliteDSN(path))
	var dump strings.Builder
	dump.WriteString("BEGIN;\n") // one transaction: one sync instead of hundreds
	for _, f := range []string{quaySchemaFile, quaySeedFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dump.Write(b)
		dump.WriteString("\n")
	}
	dump.WriteString("COMMIT;\n")
	if _, err := db.Exec(dump.String()); err != nil {
		t.Fatalf("load Quay's SQLite schema: %v", err)
	}
	return &fixture{name: "quay-schema/sqlite", uri: "sqlite:///" + path, db: db}
}

// serveSQLite is quayctl serve's embedded default database.
func serveSQLite(t testing.TB) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quay.db")
	uri := "sqlite:///" + path
	st := migrated(t, uri)
	return &fixture{name: "quayctl-serve/sqlite", uri: uri, db: openSQL(t, "sqlite", sqliteDSN(path)), serve: st}
}

func migrated(t testing.TB, uri string) *store.DB {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}
