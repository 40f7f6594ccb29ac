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

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's real schema: testdata/quay/quay-schema-sqlite.sql (shared) and
// quay-seed-data-sqlite.sql are Quay's own SQLite dump (quay/quay
// internal/dal/schema/sqlite, the same files registry/store tests use).
// On SQLite they load as they are; for PostgreSQL, quayPostgresDDL converts
// them the way Quay's Alembic migrations lay the tables out there.
const (
	quaySchemaFile = "../../testdata/quay/quay-schema-sqlite.sql"
	quaySeedFile   = "../../testdata/quay/quay-seed-data-sqlite.sql"
)

// bigIDTables have BIGINT ids on PostgreSQL (quay-facts §1.1).
var bigIDTables = map[string]bool{"logentry3": true, "uploadedblob": true, "manifestblob": true}

var (
	createTableRE = regexp.MustCompile(`(?is)^CREATE TABLE (?:IF NOT EXISTS )?"?([a-z0-9_]+)"?\s*\((.*)\)$`)
	insertRE      = regexp.MustCompile(`(?s)^INSERT INTO "?([a-z0-9_]+)"? VALUES\((.*)\)$`)
	refUserRE     = regexp.MustCompile(`REFERENCES user\b`)
	onUserRE      = regexp.MustCompile(`\bON user\s*\(`)
	boolDefaultRE = regexp.MustCompile(`(?i)DEFAULT\s+\(?'?([01])'?\)?`)
)

// splitTop splits s at sep outside parentheses and single quotes.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			if c == '\'' {
				inQuote = false
			}
		case c == '\'':
			inQuote = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// statements splits a SQL dump into statements ending with ";" at a line end.
func statements(sqlText string) []string {
	var out []string
	for _, st := range strings.Split(sqlText, ";\n") {
		if st = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(st), ";")); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// quayPostgresDDL converts Quay's SQLite schema and enum rows to PostgreSQL:
// SERIAL/BIGSERIAL ids, TIMESTAMP for DATETIME, BYTEA for BLOB, boolean
// defaults and values as true/false, "user" quoted, and foreign keys added
// after every table exists (the dump orders tables by creation history, not
// dependency). Sequences are moved past the seeded ids.
func quayPostgresDDL(t testing.TB) []string {
	t.Helper()
	schema, err := os.ReadFile(quaySchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(quaySeedFile)
	if err != nil {
		t.Fatal(err)
	}
	var creates, indexes, fks, inserts, sequences []string
	boolCols := map[string][]bool{} // table -> per column position: is BOOLEAN
	for _, st := range statements(string(schema)) {
		m := createTableRE.FindStringSubmatch(st)
		if m == nil {
			st = onUserRE.ReplaceAllString(st, `ON "user" (`)
			indexes = append(indexes, st)
			continue
		}
		table, body := m[1], m[2]
		var cols []string
		for _, item := range splitTop(body, ',') {
			item = strings.TrimSpace(item)
			upper := strings.ToUpper(item)
			switch {
			case strings.HasPrefix(upper, "CONSTRAINT") && strings.Contains(upper, "FOREIGN KEY"):
				fks = append(fks, fmt.Sprintf(`ALTER TABLE %q ADD %s`, table, refUserRE.ReplaceAllString(item, `REFERENCES "user"`)))
				continue
			case strings.HasPrefix(upper, "CONSTRAINT"), strings.HasPrefix(upper, "PRIMARY KEY"), strings.HasPrefix(upper, "UNIQUE"):
				cols = append(cols, item)
				continue
			}
			fields := strings.Fields(item)
			name, typ := strings.Trim(fields[0], `"`), strings.ToUpper(fields[1])
			rest := strings.Join(fields[2:], " ")
			boolCols[table] = append(boolCols[table], typ == "BOOLEAN")
			switch {
			case name == "id" && (typ == "INTEGER" || typ == "BIGINT"):
				if typ == "BIGINT" || bigIDTables[table] {
					typ = "BIGSERIAL"
				} else {
					typ = "SERIAL"
				}
			case typ == "DATETIME":
				typ = "TIMESTAMP WITHOUT TIME ZONE"
			case typ == "BLOB":
				typ = "BYTEA"
			case typ == "BOOLEAN":
				rest = boolDefaultRE.ReplaceAllStringFunc(rest, func(s string) string {
					if boolDefaultRE.FindStringSubmatch(s)[1] == "1" {
						return "DEFAULT true"
					}
					return "DEFAULT false"
				})
			}
			cols = append(cols, strings.TrimSpace(fmt.Sprintf("%q %s %s", name, typ, rest)))
		}
		creates = append(creates, fmt.Sprintf("CREATE TABLE %q (\n\t%s\n)", table, strings.Join(cols, ",\n\t")))
		if strings.Contains(body, "PRIMARY KEY (id)") {
			sequences = append(sequences, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%q', 'id'), COALESCE((SELECT max(id) FROM %q), 0) + 1, false)`, table, table))
		}
	}
	for _, st := range statements(string(seed)) {
		m := insertRE.FindStringSubmatch(st)
		if m == nil {
			t.Fatalf("unexpected seed statement %q", st)
		}
		table, vals := m[1], splitTop(m[2], ',')
		for i, v := range vals {
			v = strings.TrimSpace(v)
			if i < len(boolCols[table]) && boolCols[table][i] {
				v = map[string]string{"0": "false", "1": "true"}[v]
			}
			vals[i] = v
		}
		inserts = append(inserts, fmt.Sprintf("INSERT INTO %q VALUES (%s)", table, strings.Join(vals, ", ")))
	}
	out := append(creates, indexes...)
	out = append(out, fks...)
	out = append(out, inserts...)
	return append(out, sequences...)
}

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
	uri := testpg.NewDatabase(t)
	db := openSQL(t, "pgx", uri)
	for _, st := range quayPostgresDDL(t) {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("load Quay's schema into PostgreSQL: %v\n%s", err, st)
		}
	}
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
