// Package diagtest gives tests a real PostgreSQL database in Quay's own
// schema, and a small Quay deployment's worth of rows in it: people,
// superusers, a robot, an organisation, federated logins, repository
// mirrors and geo-replicated blobs. The diagnostics tests and the
// `quayctl db` command tests share it.
//
// Quay's schema comes from testdata/quay (Quay's own SQLite dump and enum
// rows), converted to PostgreSQL the way Quay's Alembic migrations lay the
// tables out there. Call testpg.Main from the package's TestMain.
package diagtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/internal/testpg"
)

// Secret values the seed stores. No diagnostics result may contain any of
// them; they share the marker Secret so that one search finds them all.
const (
	Secret            = "SEEDsecret"
	PasswordHash      = "$2b$12$SEEDsecretHashOfAlicePasswordXXXXXXXXXXXXXXXXXXXXXXX"
	MirrorPassword    = "v0$$SEEDsecretMirrorPassword"
	MirrorUsername    = "v0$$SEEDsecretMirrorUsername"
	RobotToken        = "v0$$SEEDsecretRobotToken"
	LegacyRobotIdent  = "SEEDsecretLegacyRobotToken"
	MirrorProxyConfig = `{"verify_tls": false, "proxy": {"https_proxy": "http://proxyuser:SEEDsecretProxy@proxy:3128"}}`
)

// SuperUsers is the seed's SUPER_USERS: one of each case.
var SuperUsers = []string{"quayadmin", "ghost", "olduser", "acme+bot", "acme", "bob"}

// Seed is what Load inserted.
type Seed struct {
	// MissingUserID is the user_id of the federated login whose account
	// does not exist.
	MissingUserID int64
}

var (
	ddlOnce sync.Once
	ddl     string
	ddlErr  error
)

// repoRoot finds the module's root from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// QuayDatabase returns the URI of a fresh database holding Quay's schema
// and enum rows (no accounts). It skips under -short, as testpg does.
func QuayDatabase(t testing.TB) string {
	t.Helper()
	uri := testpg.NewDatabase(t)
	ddlOnce.Do(func() { ddl, ddlErr = postgresDDL() })
	if ddlErr != nil {
		t.Fatal(ddlErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background()) // not left in pg_stat_activity
	// No arguments: pgx sends the script with the simple protocol, all
	// statements in one round trip.
	if _, err := conn.Exec(ctx, ddl); err != nil {
		t.Fatalf("load Quay's schema into PostgreSQL: %v", err)
	}
	return uri
}

// SeededDatabase is QuayDatabase with Load's rows.
func SeededDatabase(t testing.TB) (string, Seed) {
	t.Helper()
	uri := QuayDatabase(t)
	conn, err := pgx.Connect(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	return uri, Load(t, conn)
}

// Connect opens a connection closed when the test ends.
func Connect(t testing.TB, uri string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs one statement or fails the test.
func Exec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ID returns the first column of a one-row query as an int64.
func ID(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// Account describes a row of "user".
type Account struct {
	Name                          string
	PasswordHash                  string
	Robot, Organization, Disabled bool
	Unverified                    bool
}

// writer is what the seed writes through: a PostgreSQL connection or a
// SQLite database. The seed's SQL runs on both ($n placeholders,
// true/false, RETURNING); values that differ (uuids, times) are arguments.
type writer interface {
	exec(t testing.TB, sql string, args ...any)
	id(t testing.TB, sql string, args ...any) int64
	postgres() bool
}

type pgWriter struct{ c *pgx.Conn }

func (w pgWriter) exec(t testing.TB, sql string, args ...any) { t.Helper(); Exec(t, w.c, sql, args...) }
func (w pgWriter) id(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	return ID(t, w.c, sql, args...)
}
func (pgWriter) postgres() bool { return true }

type liteWriter struct{ db *sql.DB }

// liteArgs stores times as Quay does in SQLite.
func liteArgs(args []any) []any {
	out := slices.Clone(args)
	for i, a := range out {
		if v, ok := a.(time.Time); ok {
			out[i] = v.UTC().Format("2006-01-02 15:04:05.000000")
		}
	}
	return out
}

func (w liteWriter) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := w.db.Exec(sql, liteArgs(args)...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (w liteWriter) id(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := w.db.QueryRow(sql, liteArgs(args)...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func (liteWriter) postgres() bool { return false }

// newUUID is a random version-4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// AddAccount inserts an account with Quay's column defaults and returns
// its id.
func AddAccount(t testing.TB, conn *pgx.Conn, a Account) int64 {
	t.Helper()
	return addAccount(t, pgWriter{conn}, a)
}

func addAccount(t testing.TB, w writer, a Account) int64 {
	t.Helper()
	var hash any
	if a.PasswordHash != "" {
		hash = a.PasswordHash
	}
	now := time.Now().UTC()
	return w.id(t, `INSERT INTO "user" (uuid, username, password_hash, email, verified, organization, robot, invoice_email,
		invalid_login_attempts, last_invalid_login, removed_tag_expiration_s, enabled, creation_date)
		VALUES ($1, $2, $3, $4, $5, $6, $7, false, 0, $8, 1209600, $9, $8) RETURNING id`,
		newUUID(), a.Name, hash, a.Name+"@example.com", !a.Unverified, a.Organization, a.Robot, now, !a.Disabled)
}

// AddFederated links an account to a login service.
func AddFederated(t testing.TB, conn *pgx.Conn, userID int64, service, ident string) {
	t.Helper()
	addFederated(t, pgWriter{conn}, userID, service, ident)
}

func addFederated(t testing.TB, w writer, userID int64, service, ident string) {
	t.Helper()
	w.exec(t, `INSERT INTO federatedlogin (user_id, service_id, service_ident, metadata_json)
		VALUES ($1, (SELECT id FROM loginservice WHERE name = $2), $3, '{}')`, userID, service, ident)
}

// AddRepository creates namespace/name with the given state (2: MIRROR).
func AddRepository(t testing.TB, conn *pgx.Conn, namespaceID int64, name string, state int) int64 {
	t.Helper()
	return addRepository(t, pgWriter{conn}, namespaceID, name, state)
}

func addRepository(t testing.TB, w writer, namespaceID int64, name string, state int) int64 {
	t.Helper()
	return w.id(t, `INSERT INTO repository (namespace_user_id, name, visibility_id, badge_token, kind_id, trust_enabled, state)
		VALUES ($1, $2, (SELECT id FROM visibility WHERE name = 'private'), $3, 1, false, $4) RETURNING id`,
		namespaceID, name, newUUID(), state)
}

// Grant gives an account a role (admin, write, read) on a repository.
func Grant(t testing.TB, conn *pgx.Conn, userID, repoID int64, role string) {
	t.Helper()
	grant(t, pgWriter{conn}, userID, repoID, role)
}

func grant(t testing.TB, w writer, userID, repoID int64, role string) {
	t.Helper()
	w.exec(t, `INSERT INTO repositorypermission (user_id, repository_id, role_id) VALUES ($1, $2, (SELECT id FROM role WHERE name = $3))`,
		userID, repoID, role)
}

// Mirror describes a repomirrorconfig row.
type Mirror struct {
	RepoID, RobotID int64
	Status          int
	External        string
	Tags            string // rule_value
	Username        string
	Password        string
	Config          string
	Start           time.Time
}

// AddMirror inserts a mirror configuration and its root rule.
func AddMirror(t testing.TB, conn *pgx.Conn, m Mirror) {
	t.Helper()
	addMirror(t, pgWriter{conn}, m)
}

func addMirror(t testing.TB, w writer, m Mirror) {
	t.Helper()
	now := time.Now().UTC()
	rule := w.id(t, `INSERT INTO repomirrorrule (uuid, repository_id, creation_date, rule_type, rule_value)
		VALUES ($1, $2, $3, 1, $4) RETURNING id`, newUUID(), m.RepoID, now, m.Tags)
	var user, pw any
	if m.Username != "" {
		user = m.Username
	}
	if m.Password != "" {
		pw = m.Password
	}
	if m.Config == "" {
		m.Config = "{}"
	}
	w.exec(t, `INSERT INTO repomirrorconfig (repository_id, creation_date, is_enabled, mirror_type, internal_robot_id,
		external_registry_username, external_registry_config, sync_interval, sync_start_date, sync_retries_remaining,
		sync_status, root_rule_id, external_reference, external_registry_password, skopeo_timeout)
		VALUES ($1, $10, true, 1, $2, $3, $4, 3600, $5, 3, $6, $7, $8, $9, 300)`,
		m.RepoID, m.RobotID, user, m.Config, m.Start, m.Status, rule, m.External, pw, now)
}

// AddLocation adds an imagestoragelocation and returns its id.
func AddLocation(t testing.TB, conn *pgx.Conn, name string) int64 {
	t.Helper()
	return addLocation(t, pgWriter{conn}, name)
}

func addLocation(t testing.TB, w writer, name string) int64 {
	t.Helper()
	return w.id(t, `INSERT INTO imagestoragelocation (name) VALUES ($1) RETURNING id`, name)
}

// AddBlob adds an imagestorage row placed in locations.
func AddBlob(t testing.TB, conn *pgx.Conn, digest string, size int64, uploading bool, locations ...int64) int64 {
	t.Helper()
	return addBlob(t, pgWriter{conn}, digest, size, uploading, locations...)
}

func addBlob(t testing.TB, w writer, digest string, size int64, uploading bool, locations ...int64) int64 {
	t.Helper()
	id := w.id(t, `INSERT INTO imagestorage (uuid, image_size, uploading, cas_path, content_checksum)
		VALUES ($1, $2, $3, true, $4) RETURNING id`, newUUID(), size, uploading, digest)
	for _, l := range locations {
		w.exec(t, `INSERT INTO imagestorageplacement (storage_id, location_id) VALUES ($1, $2)`, id, l)
	}
	return id
}

// Load inserts the seed: accounts of every kind, federated logins (one of
// them pointing at no account), two mirrors and geo-replicated blobs.
//
//	quayadmin  superuser with a password
//	alice      password + ldap
//	bob        github only (a superuser without a password)
//	olduser    disabled, with a password
//	nologin    neither password nor federated login
//	acme       organisation; acme+bot (write on acme/mirrored), acme+reader (read on acme/readonly)
//	ghost      in SUPER_USERS, not in the database
//
// Mirrors: acme/mirrored (FAIL, credentials, robot with write) and
// acme/readonly (SUCCESS, robot with read only). Locations usstorage and
// eustorage: blob 1 in both, blob 2 in usstorage, blob 3 uploading in
// usstorage, blob 4 nowhere.
func Load(t testing.TB, conn *pgx.Conn) Seed {
	t.Helper()
	return load(t, pgWriter{conn})
}

func load(t testing.TB, w writer) Seed {
	t.Helper()
	addAccount(t, w, Account{Name: "quayadmin", PasswordHash: "$2b$12$quayadminHashIsNotSecretInThisFixtureOnlyAlicesIsXX"})
	alice := addAccount(t, w, Account{Name: "alice", PasswordHash: PasswordHash})
	bob := addAccount(t, w, Account{Name: "bob"})
	addAccount(t, w, Account{Name: "olduser", PasswordHash: "$2b$12$olduserHashXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", Disabled: true})
	addAccount(t, w, Account{Name: "nologin"})
	acme := addAccount(t, w, Account{Name: "acme", Organization: true})
	bot := addAccount(t, w, Account{Name: "acme+bot", Robot: true})
	reader := addAccount(t, w, Account{Name: "acme+reader", Robot: true})

	addFederated(t, w, alice, "ldap", "alice")
	addFederated(t, w, bob, "github", "1234567")
	addFederated(t, w, bot, "quayrobot", fmt.Sprintf("robot:%d", bot))
	addFederated(t, w, reader, "quayrobot", LegacyRobotIdent) // older Quay kept the robot's token here
	w.exec(t, `INSERT INTO robotaccounttoken (robot_account_id, token, fully_migrated) VALUES ($1, $2, true)`, bot, RobotToken)
	// A federated login whose account is gone: only a database without
	// its foreign keys (a partial restore) holds one. SQLite enforces
	// them only when asked to (the seed's connection does not).
	if w.postgres() {
		w.exec(t, `ALTER TABLE federatedlogin DROP CONSTRAINT fk_federatedlogin_user_id_user`)
	}
	missing := int64(999999)
	addFederated(t, w, missing, "ldap", "carol")

	mirrored := addRepository(t, w, acme, "mirrored", 2)
	readonly := addRepository(t, w, acme, "readonly", 2)
	grant(t, w, bot, mirrored, "write")
	grant(t, w, reader, readonly, "read")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	addMirror(t, w, Mirror{RepoID: mirrored, RobotID: bot, Status: -1, External: "registry.example.com/library/busybox",
		Tags: `["latest", "1.*"]`, Username: MirrorUsername, Password: MirrorPassword, Config: MirrorProxyConfig, Start: start})
	addMirror(t, w, Mirror{RepoID: readonly, RobotID: reader, Status: 1, External: "registry.example.com/library/alpine",
		Tags: `["3.*"]`, Start: start.Add(time.Hour)})

	us := addLocation(t, w, "usstorage")
	eu := addLocation(t, w, "eustorage")
	addBlob(t, w, "sha256:"+strings.Repeat("1", 64), 1000, false, us, eu)
	addBlob(t, w, "sha256:"+strings.Repeat("2", 64), 200, false, us)
	addBlob(t, w, "sha256:"+strings.Repeat("3", 64), 30, true, us)
	addBlob(t, w, "sha256:"+strings.Repeat("4", 64), 4, false)
	return Seed{MissingUserID: missing}
}

// Quay's SQLite dump → PostgreSQL --------------------------------------------

// bigIDTables have BIGINT ids on PostgreSQL (quay-facts §1.1).
var bigIDTables = map[string]bool{"logentry3": true, "uploadedblob": true, "manifestblob": true}

var (
	createTableRE = regexp.MustCompile(`(?is)^CREATE TABLE (?:IF NOT EXISTS )?"?([a-z0-9_]+)"?\s*\((.*)\)$`)
	insertRE      = regexp.MustCompile(`(?s)^INSERT INTO "?([a-z0-9_]+)"? VALUES\((.*)\)$`)
	refUserRE     = regexp.MustCompile(`REFERENCES user\b`)
	onUserRE      = regexp.MustCompile(`\bON user\s*\(`)
	boolDefaultRE = regexp.MustCompile(`(?i)DEFAULT\s+\(?'?([01])'?\)?`)
)

// postgresDDL converts Quay's SQLite schema and enum rows to one
// PostgreSQL script: SERIAL/BIGSERIAL ids, TIMESTAMP for DATETIME, BYTEA
// for BLOB, booleans as true/false, "user" quoted, foreign keys added after
// every table exists (the dump orders tables by history, not dependency),
// sequences moved past the seeded ids.
func postgresDDL() (string, error) {
	root := filepath.Join(repoRoot(), "testdata", "quay")
	schema, err := os.ReadFile(filepath.Join(root, "quay-schema-sqlite.sql"))
	if err != nil {
		return "", err
	}
	seed, err := os.ReadFile(filepath.Join(root, "quay-seed-data-sqlite.sql"))
	if err != nil {
		return "", err
	}
	var creates, indexes, fks, inserts, sequences []string
	boolCols := map[string][]bool{} // table → per column: is BOOLEAN
	for _, st := range statements(string(schema)) {
		m := createTableRE.FindStringSubmatch(st)
		if m == nil {
			indexes = append(indexes, onUserRE.ReplaceAllString(st, `ON "user" (`))
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
			return "", fmt.Errorf("unexpected seed statement %q", st)
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
	all := append(creates, indexes...)
	all = append(all, fks...)
	all = append(all, inserts...)
	all = append(all, sequences...)
	return strings.Join(all, ";\n") + ";\n", nil
}

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
