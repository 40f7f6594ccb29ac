package store

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
)

// ourTables is every table the migrations create, as the brief lists them.
var ourTables = []string{
	"user", "federatedlogin", "loginservice", "teamrole", "team", "teammember", "role", "repositorypermission",
	"visibility", "repositorykind", "repository", "mediatype", "manifest", "manifestblob", "manifestchild",
	"tagkind", "tag", "imagestorage", "imagestoragelocation", "imagestorageplacement", "uploadedblob",
	"blobupload", "logentrykind", "logentry3", "servicekeyapproval", "servicekey", "robotaccounttoken",
	"robotaccountmetadata", "oauthapplication", "oauthaccesstoken", "appspecificauthtoken", "deletedrepository",
	"queueitem", "userorganizationquota", "quotatype", "quotalimits", "quotanamespacesize", "quotarepositorysize",
	"quotaregistrysize", "namespaceautoprunepolicy", "repositoryautoprunepolicy", "autoprunetaskstatus",
	"repomirrorconfig", "repomirrorrule",
	"externalnotificationevent", "externalnotificationmethod", "notificationkind", "notification", "repositorynotification",
}

// quayReference builds a SQLite database from Quay's own schema dump and
// enum rows (testdata/quay at the repository root, from quay/quay internal/dal/schema/sqlite).
func quayReference(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quay-reference.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, f := range []string{"../../testdata/quay/quay-schema-sqlite.sql", "../../testdata/quay/quay-seed-data-sqlite.sql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("load %s: %v", f, err)
		}
	}
	return db, path
}

func sqliteColumns(t *testing.T, q queryer, table string) map[string]string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), `SELECT name, type, "notnull" FROM pragma_table_info(?)`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols := map[string]string{}
	for rows.Next() {
		var name, typ string
		var notNull bool
		if err := rows.Scan(&name, &typ, &notNull); err != nil {
			t.Fatal(err)
		}
		cols[name] = strings.ToUpper(typ) + map[bool]string{true: " NOT NULL", false: ""}[notNull]
	}
	return cols
}

func names(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// testSchemaMatchesQuay (both dialects): our tables are the expected ones and
// have exactly the columns of Quay's tables of the same name.
func testSchemaMatchesQuay(t *testing.T, db *DB) {
	ctx := context.Background()
	ref, _ := quayReference(t)
	var tableQuery string
	if db.d.pg {
		tableQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	} else {
		tableQuery = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.r.QueryContext(ctx, tableQuery)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(n, "quayctl_") { // our own tables
			tables = append(tables, n)
		}
	}
	rows.Close()
	sort.Strings(tables)
	want := append([]string(nil), ourTables...)
	sort.Strings(want)
	if !reflect.DeepEqual(tables, want) {
		t.Errorf("tables = %q\nwant %q", tables, want)
	}
	for _, table := range tables {
		quay := names(sqliteColumns(t, ref, table))
		if len(quay) == 0 {
			t.Errorf("table %s does not exist in Quay's schema", table)
			continue
		}
		var ours []string
		if db.d.pg {
			quayTypes := sqliteColumns(t, ref, table)
			rows, err := db.r.QueryContext(ctx, `SELECT column_name, data_type, COALESCE(character_maximum_length, 0), is_nullable
				FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, table)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var c, typ, nullable string
				var length int
				if err := rows.Scan(&c, &typ, &length, &nullable); err != nil {
					t.Fatal(err)
				}
				ours = append(ours, c)
				got := pgTypeAsSQLite(typ, length) + map[bool]string{true: "", false: " NOT NULL"}[nullable == "YES"]
				want := quayTypes[c]
				if c == "id" && (table == "logentry3" || table == "uploadedblob" || table == "manifestblob") {
					want = "BIGINT NOT NULL" // Quay's BigAutoField on PostgreSQL
				}
				if want != "" && got != want {
					t.Errorf("%s.%s is %s on PostgreSQL, Quay has %s", table, c, got, want)
				}
			}
			rows.Close()
			sort.Strings(ours)
		} else {
			ours = names(sqliteColumns(t, db.r, table))
		}
		if !reflect.DeepEqual(ours, quay) {
			t.Errorf("table %s columns:\n ours %q\n quay %q", table, ours, quay)
		}
	}
}

// pgTypeAsSQLite spells a PostgreSQL column type as Quay's SQLite dump does.
func pgTypeAsSQLite(typ string, length int) string {
	switch typ {
	case "integer":
		return "INTEGER"
	case "bigint":
		return "BIGINT"
	case "boolean":
		return "BOOLEAN"
	case "text":
		return "TEXT"
	case "timestamp without time zone":
		return "DATETIME"
	case "character varying":
		return "VARCHAR(" + strconv.Itoa(length) + ")"
	}
	return typ
}

// TestQuaySchemaCompat compares our SQLite schema with Quay's in detail:
// column types and NOT NULL, and every index (name, uniqueness, columns,
// partial or not).
func TestQuaySchemaCompat(t *testing.T) {
	ref, _ := quayReference(t)
	db := openMigrated(t, backends[0])
	for _, table := range ourTables {
		ours, quay := sqliteColumns(t, db.r, table), sqliteColumns(t, ref, table)
		if !reflect.DeepEqual(ours, quay) {
			t.Errorf("table %s:\n ours %v\n quay %v", table, ours, quay)
		}
		if o, q := sqliteIndexes(t, db.r, table), sqliteIndexes(t, ref, table); !reflect.DeepEqual(o, q) {
			t.Errorf("indexes of %s:\n ours %q\n quay %q", table, o, q)
		}
		od, qd := sqliteDefaults(t, db.r, table), sqliteDefaults(t, ref, table)
		if table == "blobupload" {
			// Quay's dump froze the migration's server_default (the time the
			// dump was made); we always write created.
			delete(qd, "created")
		}
		if !reflect.DeepEqual(od, qd) {
			t.Errorf("defaults of %s:\n ours %v\n quay %v", table, od, qd)
		}
	}
}

// sqliteDefaults lists column defaults, spelled alike: '0', (0) and false
// are all 0 to SQLite.
func sqliteDefaults(t *testing.T, q queryer, table string) map[string]string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), `SELECT name, dflt_value FROM pragma_table_info(?) WHERE dflt_value IS NOT NULL`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, d string
		if err := rows.Scan(&name, &d); err != nil {
			t.Fatal(err)
		}
		d = strings.Trim(d, "()")
		if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' && d != "''" {
			d = d[1 : len(d)-1]
		}
		switch strings.ToLower(d) {
		case "false":
			d = "0"
		case "true":
			d = "1"
		}
		out[name] = d
	}
	return out
}

func sqliteIndexes(t *testing.T, q queryer, table string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := q.QueryContext(ctx, `SELECT name, "unique", partial FROM pragma_index_list(?) WHERE origin = 'c'`, table)
	if err != nil {
		t.Fatal(err)
	}
	type idx struct {
		name            string
		unique, partial bool
	}
	var list []idx
	for rows.Next() {
		var i idx
		if err := rows.Scan(&i.name, &i.unique, &i.partial); err != nil {
			t.Fatal(err)
		}
		list = append(list, i)
	}
	rows.Close()
	var out []string
	for _, i := range list {
		crows, err := q.QueryContext(ctx, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, i.name)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		}
		crows.Close()
		s := i.name + "(" + strings.Join(cols, ",") + ")"
		if i.unique {
			s = "UNIQUE " + s
		}
		if i.partial {
			s += " WHERE …"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestOnQuaySchema runs the store against a database created by Quay's own
// schema and enum rows: Migrate must leave it as it is (only adding our
// bookkeeping table) and the queries must work on it.
func TestOnQuaySchema(t *testing.T) {
	ctx := context.Background()
	ref, path := quayReference(t)
	ref.Close()
	db := openURI(t, "sqlite:///"+path)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate on Quay's schema: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM imagestoragelocation WHERE name = 'local_us'`); n != 1 {
		t.Errorf("local_us rows = %d", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM logentrykind`); n != 146 {
		t.Errorf("logentrykind rows = %d, want Quay's 146 (nothing added twice)", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM alembic_version`); n != 1 {
		t.Errorf("alembic_version touched: %d rows", n)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", true)
	p := image(t, db, r.ID, "one", "latest")
	m := mustPut(t, db, p)
	if got, _, err := db.ManifestByTag(ctx, r.ID, "latest"); err != nil || got.ID != m.ID {
		t.Errorf("ManifestByTag = %+v, %v", got, err)
	}
	if role, err := db.RepositoryRole(ctx, alice.ID, r.ID); err != nil || role != RoleAdmin {
		t.Errorf("role = %q, %v", role, err)
	}
	if err := db.Log(ctx, LogEntry{Kind: "push_repo", AccountID: alice.ID}); err != nil {
		t.Errorf("Log: %v", err)
	}
	if err := db.PutServiceKey(ctx, ServiceKey{Kid: "k", Service: "quay", Name: "n", JWK: []byte("{}")}); err != nil {
		t.Errorf("PutServiceKey: %v", err)
	}
	if err := db.DeleteManifest(ctx, r.ID, m.Digest); err != nil {
		t.Errorf("DeleteManifest: %v", err)
	}
}

// TestConcurrentMigrate: replicas starting together all succeed and the
// migrations are applied once.
func TestConcurrentMigrate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		uri := b.uri(t)
		const n = 4
		dbs := make([]*DB, n)
		for i := range dbs {
			dbs[i] = openURI(t, uri)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, db := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.Migrate(context.Background())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		ms, _ := loadMigrations()
		if got := count(t, dbs[0], "SELECT COUNT(*) FROM "+migrationsTable); got != len(ms) {
			t.Errorf("migrations recorded %d times, want %d", got, len(ms))
		}
		if got := count(t, dbs[0], "SELECT COUNT(*) FROM role"); got != 3 {
			t.Errorf("role rows = %d", got)
		}
	})
}

func TestOpenURIs(t *testing.T) {
	ctx := context.Background()
	// A loopback port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	t.Run("sqlite relative", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(dir)
		db := openURI(t, "sqlite:///data/quay.db")
		if db.Dialect() != "sqlite" {
			t.Errorf("Dialect = %q", db.Dialect())
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "quay.db")); err != nil {
			t.Errorf("database not created relative to the working directory: %v", err)
		}
		var mode string
		if err := db.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v", mode, err)
		}
		var fk int
		if err := db.r.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("reader foreign_keys = %d, %v", fk, err)
		}
	})
	t.Run("sqlite absolute", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "abs.db")
		openURI(t, "sqlite:///"+path)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("absolute path not used: %v", err)
		}
	})
	t.Run("postgresql forms", func(t *testing.T) {
		uri := testpg.NewDatabase(t)
		rest := strings.TrimPrefix(uri, "postgres://")
		for _, scheme := range []string{"postgres://", "postgresql://", "postgresql+psycopg2://"} {
			db := openURI(t, scheme+rest)
			if db.Dialect() != "postgresql" {
				t.Errorf("%s: Dialect = %q", scheme, db.Dialect())
			}
		}
	})
	for _, tc := range []struct {
		name, uri string
		want      []string // substrings of the error
	}{
		{"no scheme", "quay.db", []string{"invalid DB_URI"}},
		{"mysql", "mysql+pymysql://u:hunter2pw@db/quay", []string{"MySQL"}},
		{"unknown", "oracle://u:hunter2pw@db/quay", []string{"unsupported", "xxxxx"}},
		{"sqlite missing dir", "sqlite:////nonexistent-dir-quayctl/q.db", []string{"/nonexistent-dir-quayctl", "does not exist"}},
		{"sqlite memory", "sqlite:///:memory:", []string{"in-memory"}},
		{"sqlite no path", "sqlite://", []string{"sqlite:////absolute"}},
		{"postgres unreachable", "postgresql://quay:hunter2pw@" + closed + "/quay?connect_timeout=5&sslmode=disable",
			[]string{"cannot reach database at " + closed, "is PostgreSQL running", "DB_URI", "xxxxx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.uri)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2pw") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
	t.Run("postgres missing database", func(t *testing.T) {
		uri := testpg.NewDatabase(t)
		i := strings.LastIndex(uri, "/")
		j := strings.Index(uri[i:], "?")
		missing := uri[:i] + "/no_such_db" + uri[i+j:]
		_, err := Open(ctx, missing)
		if err == nil || !strings.Contains(err.Error(), `"no_such_db" does not exist`) {
			t.Errorf("err = %v", err)
		}
	})
}

// TestMigrateWithoutExtensionPrivilege: a role that may not create pg_trgm
// still migrates; only the trigram indexes are missing.
func TestMigrateWithoutExtensionPrivilege(t *testing.T) {
	ctx := context.Background()
	super := testpg.NewDatabase(t)
	admin := openURI(t, super)
	role := "r_" + randomString(12)
	for _, s := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"REVOKE CREATE ON DATABASE " + currentDB(t, admin) + " FROM PUBLIC",
		"GRANT CREATE, USAGE ON SCHEMA public TO " + role,
	} {
		mustExec(t, admin, s)
	}
	t.Cleanup(func() {
		for _, s := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := admin.w.Exec(s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	limited := openURI(t, strings.Replace(super, "postgres://postgres@", "postgres://"+role+"@", 1))
	if err := limited.Migrate(ctx); err != nil {
		t.Fatalf("Migrate without the right to create extensions: %v", err)
	}
	if n := count(t, limited, `SELECT COUNT(*) FROM pg_extension WHERE extname = 'pg_trgm'`); n != 0 {
		t.Fatalf("pg_trgm got installed anyway; the test does not test anything")
	}
	if n := count(t, limited, `SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE '%__fulltext'`); n != 0 {
		t.Errorf("%d fulltext indexes without pg_trgm", n)
	}
	// A superuser's later Migrate installs the extension and the indexes.
	if err := admin.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, admin, `SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE '%\_\_fulltext' AND indexdef LIKE '%gin%gin_trgm_ops%'`); n != 2 {
		t.Errorf("GIN trigram indexes = %d, want 2", n)
	}
}

func currentDB(t *testing.T, db *DB) string {
	var name string
	if err := db.r.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://quay:s3cret@db:5432/quay":      "postgresql://quay:xxxxx@db:5432/quay",
		"postgresql://quay@db/quay":                  "postgresql://quay@db/quay",
		"sqlite:////data/quay.db":                    "sqlite:////data/quay.db",
		"postgresql://quay:p%40ss@db/quay?sslmode=x": "postgresql://quay:xxxxx@db/quay?sslmode=x",
		"postgresql://quay:bad pw%zz@db/quay":        "postgresql://xxxxx@db/quay",
		"quay:s3cret@db/quay":                        "xxxxx@db/quay",
	} {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	d := &dialect{pg: true}
	for in, want := range map[string]string{
		`SELECT * FROM "user" WHERE a = ? AND b = ?`:  `SELECT * FROM "user" WHERE a = $1 AND b = $2`,
		`SELECT '?', "a?b", ? FROM t WHERE x = '''?'`: `SELECT '?', "a?b", $1 FROM t WHERE x = '''?'`,
		`SELECT 1`: `SELECT 1`,
	} {
		if got := d.rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&dialect{}).rebind("a = ?"); got != "a = ?" {
		t.Errorf("SQLite rebind changed the query: %q", got)
	}
}

func TestAdvisoryKey(t *testing.T) {
	// Values computed independently: int.from_bytes(sha256(s)[:8], "big", signed=True).
	for s, want := range map[string]int64{
		"retarget_tag:1":  6389721433979953103,
		"retarget_tag:42": -7022194054569095283,
	} {
		if got := advisoryKey(s); got != want {
			t.Errorf("advisoryKey(%q) = %d, want %d", s, got, want)
		}
	}
	if retargetLockName(42) != "retarget_tag:42" {
		t.Error(retargetLockName(42))
	}
}

func TestNullTime(t *testing.T) {
	want := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	for _, src := range []any{
		want, want.In(time.FixedZone("x", 3600)), "2024-05-06 07:08:09.123456", []byte("2024-05-06T07:08:09.123456Z"),
	} {
		var n nullTime
		if err := n.Scan(src); err != nil || !n.Valid || !n.Time.Equal(want) {
			t.Errorf("Scan(%v) = %v %v, %v", src, n.Time, n.Valid, err)
		}
	}
	var n nullTime
	if err := n.Scan(nil); err != nil || n.Valid {
		t.Errorf("Scan(nil) = %+v, %v", n, err)
	}
	if err := n.Scan("not a time"); err == nil {
		t.Error("Scan of garbage succeeded")
	}
}

func TestUniqueViolationMapping(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db := openMigrated(t, b)
		_, err := db.exec(context.Background(), db.w, `INSERT INTO role (name) VALUES ('admin')`)
		if !isUniqueViolation(err) {
			t.Errorf("duplicate role: isUniqueViolation(%v) = false", err)
		}
		if isUniqueViolation(errors.New("UNIQUE constraint failed")) || isUniqueViolation(nil) {
			t.Error("plain errors are not unique violations")
		}
		_, err = db.exec(context.Background(), db.w, `INSERT INTO team (name, organization_id, role_id, description) VALUES ('x', 999, 999, '')`)
		if err == nil || isUniqueViolation(err) {
			t.Errorf("foreign key failure: %v (unique: %v)", err, isUniqueViolation(err))
		}
	})
}
