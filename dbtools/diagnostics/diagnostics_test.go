package diagnostics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
	"github.com/quayctl/quayctl/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// The three kinds of Querier the package promises to run on.
var (
	_ diagnostics.Querier = (*pgx.Conn)(nil)
	_ diagnostics.Querier = (*pgxpool.Pool)(nil)
	_ diagnostics.Querier = pgx.Tx(nil)
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pidOf is the backend pid of conn.
func pidOf(conn *pgx.Conn) int { return int(conn.PgConn().PID()) }

// eventually polls f until it returns nil, or fails with its last error.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCleanQuery(t *testing.T) {
	long := "SELECT 1 /* " + strings.Repeat("é", 3000) + " */"
	tests := []struct {
		name, in      string
		want          string // exact, unless empty
		wantTruncated bool
		absent        []string
	}{
		{name: "plain", in: "SELECT * FROM tag WHERE id = 1", want: "SELECT * FROM tag WHERE id = 1"},
		{name: "key=value", in: "SELECT 1 /* password='hunter2' */", want: "SELECT 1 /* password='<redacted>' */"},
		{name: "role DDL", in: "ALTER ROLE quay PASSWORD 'hunter2'", want: "ALTER ROLE quay PASSWORD '<redacted>'"},
		{name: "role DDL, cut by the server", in: "CREATE ROLE quay LOGIN PASSWORD 'hunt", want: "CREATE ROLE quay LOGIN PASSWORD '<redacted>"},
		{name: "inlined bcrypt hash", in: `UPDATE "user" SET "x" = '$2b$12$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY' WHERE id = 1`,
			want: `UPDATE "user" SET "x" = '<redacted>' WHERE id = 1`},
		{name: "inlined encrypted field", in: `INSERT INTO robotaccounttoken VALUES (1, 2, 'v0$$QUJDREVGR0g=', true)`,
			want: `INSERT INTO robotaccounttoken VALUES (1, 2, '<redacted>', true)`},
		{name: "password hash column", in: `UPDATE "user" SET "password_hash" = 'whatever' WHERE id = 1`, absent: []string{"whatever"}},
		{name: "URI", in: "SELECT dblink('postgresql://quay:hunter2@db/quay', 'x')", absent: []string{"hunter2"}},
		{name: "cut at 2000 characters", in: long, wantTruncated: true},
		{name: "exactly 2000", in: strings.Repeat("x", 2000), want: strings.Repeat("x", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := diagnostics.CleanQuery(tt.in)
			if tt.want != "" && got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if truncated != tt.wantTruncated {
				t.Errorf("truncated = %v", truncated)
			}
			if n := utf8.RuneCountInString(got); n > diagnostics.MaxQueryLen || !utf8.ValidString(got) {
				t.Errorf("%d characters, valid UTF-8 %v", n, utf8.ValidString(got))
			}
			if tt.wantTruncated && utf8.RuneCountInString(got) != diagnostics.MaxQueryLen {
				t.Errorf("cut to %d characters", utf8.RuneCountInString(got))
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("%q survived: %q", a, got)
				}
			}
		})
	}
}

func TestServer(t *testing.T) {
	ctx := ctxT(t)
	uri := diagtest.QuayDatabase(t)
	conn := diagtest.Connect(t, uri)
	before, err := diagnostics.Server(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"version", strings.HasPrefix(before.Version, "PostgreSQL ")},
		{"server_version_num", before.VersionNum >= 100000},
		{"max_connections", before.MaxConnections > 0},
		{"reserved", before.SuperuserReservedConnections >= 0 && before.SuperuserReservedConnections < before.MaxConnections},
		{"database", before.Database == db},
		{"size", before.DatabaseSizeBytes > 1<<20},
		{"started", !before.StartedAt.IsZero() && before.StartedAt.Before(time.Now()) && before.StartedAt.Location() == time.UTC},
		{"uptime", before.UptimeSeconds > 0},
		{"our own connection counts", before.Connections >= 1 && before.ConnectionsByDatabase[db] >= 1 && before.ConnectionsByState["active"] >= 1},
		{"free", before.ConnectionsFree == before.MaxConnections-before.SuperuserReservedConnections-before.Connections},
		{"ratio", before.ConnectionsUsedRatio > 0 && before.ConnectionsUsedRatio < 1},
		{"superuser", before.CurrentUser == "postgres" && before.Superuser && before.ReadAllStats},
		{"primary", !before.InRecovery},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong in %+v", c.name, before)
		}
	}

	// Three more idle connections to the database.
	for i := 0; i < 3; i++ {
		diagtest.Connect(t, uri)
	}
	after, err := diagnostics.Server(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name          string
		before, after int
	}{
		{"connections", before.Connections, after.Connections},
		{"in the database", before.ConnectionsByDatabase[db], after.ConnectionsByDatabase[db]},
		{"as postgres", before.ConnectionsByUser["postgres"], after.ConnectionsByUser["postgres"]},
		{"idle", before.ConnectionsByState["idle"], after.ConnectionsByState["idle"]},
		{"free", before.ConnectionsFree, after.ConnectionsFree + 6},
	} {
		if d.after != d.before+3 {
			t.Errorf("%s: %d before, %d after 3 more connections", d.name, d.before, d.after)
		}
	}
}

func TestActivity(t *testing.T) {
	ctx := ctxT(t)
	uri := diagtest.QuayDatabase(t)
	conn := diagtest.Connect(t, uri)

	// A session left idle in a transaction, and sessions whose last
	// statements hold secrets.
	idleTx := diagtest.Connect(t, uri)
	diagtest.Exec(t, idleTx, `SET application_name = 'diag-idle-tx'`)
	tx, err := idleTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM "user"`); err != nil {
		t.Fatal(err)
	}
	secretQueries := []string{
		`SELECT 1 /* password='hunter2' */`,
		`SELECT 2 /* ALTER ROLE quay PASSWORD 'hunter2' */`,
		`SELECT '` + diagtest.PasswordHash + `'::text`,
		`SELECT '` + diagtest.MirrorPassword + `'::text`,
	}
	secretPIDs := map[int]string{}
	for _, q := range secretQueries {
		c := diagtest.Connect(t, uri)
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		secretPIDs[pidOf(c)] = q
	}
	time.Sleep(1100 * time.Millisecond)

	sessions, err := diagnostics.Activity(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int]diagnostics.Session{}
	for _, s := range sessions {
		byPID[s.PID] = s
	}
	if _, ok := byPID[pidOf(conn)]; ok {
		t.Error("Activity lists the caller's own session")
	}
	s, ok := byPID[pidOf(idleTx)]
	if !ok {
		t.Fatalf("idle-in-transaction session %d missing from %+v", pidOf(idleTx), sessions)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"state", s.State == "idle in transaction"},
		{"application", s.ApplicationName == "diag-idle-tx"},
		{"user and database", s.User == "postgres" && s.Database != ""},
		{"client", s.ClientAddr == "127.0.0.1"},
		{"transaction age", s.TransactionSeconds > 1 && s.XactStart != nil},
		{"state age", s.StateSeconds > 1 && s.StateChange != nil},
		{"query age", s.QuerySeconds > 1 && s.QueryStart != nil},
		{"query", s.Query == `SELECT count(*) FROM "user"` && !s.QueryTruncated},
		{"not blocked", s.BlockedBy != nil && len(s.BlockedBy) == 0},
		{"times in UTC", s.BackendStart.Location() == time.UTC && s.XactStart.Location() == time.UTC},
		{"oldest transaction first", sessions[0].PID == s.PID},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong in %+v", c.name, s)
		}
	}
	for pid, q := range secretPIDs {
		s, ok := byPID[pid]
		switch {
		case !ok:
			t.Errorf("session running %q missing", q)
		case s.State != "idle" || s.TransactionSeconds != 0 || s.XactStart != nil:
			t.Errorf("idle session: %+v", s)
		case strings.Contains(s.Query, "hunter2") || strings.Contains(s.Query, diagtest.Secret) || !strings.Contains(s.Query, "<redacted>"):
			t.Errorf("query %q came back as %q", q, s.Query)
		}
	}
}

func TestLocks(t *testing.T) {
	ctx := ctxT(t)
	uri := diagtest.QuayDatabase(t)
	conn := diagtest.Connect(t, uri)
	diagtest.Exec(t, conn, `CREATE TABLE locked (id int)`)

	holder := diagtest.Connect(t, uri)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE locked IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	waiter := diagtest.Connect(t, uri)
	var wg sync.WaitGroup
	wg.Add(1)
	var waitErr error
	go func() {
		defer wg.Done()
		_, waitErr = waiter.Exec(ctx, `SELECT * FROM locked /* password='hunter2' */`)
	}()
	// Release the lock before the connections close, whatever happens.
	defer func() {
		_ = tx.Rollback(context.Background())
		wg.Wait()
		if waitErr != nil {
			t.Errorf("the blocked SELECT failed: %v", waitErr)
		}
	}()

	var got diagnostics.BlockedLock
	eventually(t, "the blocked SELECT in Locks", func() error {
		locks, err := diagnostics.Locks(ctx, conn)
		if err != nil {
			return err
		}
		for _, l := range locks {
			if l.PID == pidOf(waiter) {
				got = l
				return nil
			}
		}
		return fmt.Errorf("pid %d not in %+v", pidOf(waiter), locks)
	})
	time.Sleep(300 * time.Millisecond)
	locks, err := diagnostics.Locks(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 {
		t.Fatalf("want one waiting session, got %+v", locks)
	}
	got = locks[0]
	hp := pidOf(holder)
	checks := []struct {
		name string
		ok   bool
	}{
		{"pid", got.PID == pidOf(waiter)},
		{"blocked by the holder", reflect.DeepEqual(got.BlockedBy, []int{hp})},
		{"lock", got.LockType == "relation" && got.Mode == "AccessShareLock" && got.Relation == "locked"},
		{"waited", got.WaitedSeconds > 0.2},
		{"query redacted", strings.HasPrefix(got.Query, "SELECT * FROM locked") && !strings.Contains(got.Query, "hunter2")},
		{"blocker", len(got.Blockers) == 1 && got.Blockers[0].PID == hp && got.Blockers[0].State == "idle in transaction" &&
			got.Blockers[0].BackendType == "client backend" && got.Blockers[0].TransactionSeconds > 0.2},
		{"blocker's query", len(got.Blockers) == 1 && got.Blockers[0].Query == "LOCK TABLE locked IN ACCESS EXCLUSIVE MODE"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong in %+v", c.name, got)
		}
	}
	// Activity shows the same wait.
	sessions, err := diagnostics.Activity(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.PID == pidOf(waiter) && (!reflect.DeepEqual(s.BlockedBy, []int{hp}) || s.WaitEventType != "Lock" || s.State != "active") {
			t.Errorf("Activity of the waiter: %+v", s)
		}
	}

	// Once the holder rolls back, nothing waits.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	locks, err = diagnostics.Locks(ctx, conn)
	if err != nil || len(locks) != 0 {
		t.Errorf("after the rollback: %+v, %v", locks, err)
	}
}

func TestSchema(t *testing.T) {
	quay := func(t *testing.T) *pgx.Conn { return diagtest.Connect(t, diagtest.QuayDatabase(t)) }
	tests := []struct {
		name  string
		setup func(t *testing.T) *pgx.Conn
		check func(t *testing.T, s diagnostics.SchemaReport)
	}{
		{"Quay's schema", quay, func(t *testing.T, s diagnostics.SchemaReport) {
			if !s.AlembicTable || s.AlembicVersion != "9fa37f66a9b6" || len(s.MissingTables) != 0 {
				t.Errorf("%+v", s)
			}
			if s.PgTrgmInstalled || !s.PgTrgmAvailable {
				t.Errorf("pg_trgm: installed %v, available %v", s.PgTrgmInstalled, s.PgTrgmAvailable)
			}
			if !slices.Equal(s.ExpectedTables, diagnostics.CoreTables) {
				t.Errorf("expected tables %v", s.ExpectedTables)
			}
		}},
		{"without alembic_version", func(t *testing.T) *pgx.Conn {
			c := quay(t)
			diagtest.Exec(t, c, `DROP TABLE alembic_version`)
			return c
		}, func(t *testing.T, s diagnostics.SchemaReport) {
			if s.AlembicTable || s.AlembicVersion != "" || len(s.MissingTables) != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{"empty alembic_version", func(t *testing.T) *pgx.Conn {
			c := quay(t)
			diagtest.Exec(t, c, `DELETE FROM alembic_version`)
			return c
		}, func(t *testing.T, s diagnostics.SchemaReport) {
			if !s.AlembicTable || s.AlembicVersion != "" {
				t.Errorf("%+v", s)
			}
		}},
		{"some tables missing", func(t *testing.T) *pgx.Conn {
			c := quay(t)
			diagtest.Exec(t, c, `DROP TABLE logentry3; DROP TABLE "user" CASCADE`)
			return c
		}, func(t *testing.T, s diagnostics.SchemaReport) {
			if !slices.Equal(s.MissingTables, []string{"user", "logentry3"}) {
				t.Errorf("missing %v", s.MissingTables)
			}
		}},
		{"an empty database", func(t *testing.T) *pgx.Conn { return diagtest.Connect(t, testpg.NewDatabase(t)) },
			func(t *testing.T, s diagnostics.SchemaReport) {
				if s.AlembicTable || !slices.Equal(s.MissingTables, diagnostics.CoreTables) || len(s.Extensions) != 1 || s.Extensions[0].Name != "plpgsql" {
					t.Errorf("%+v", s)
				}
			}},
		{"pg_trgm installed", func(t *testing.T) *pgx.Conn {
			c := quay(t)
			diagtest.Exec(t, c, `CREATE EXTENSION pg_trgm`)
			return c
		}, func(t *testing.T, s diagnostics.SchemaReport) {
			i := slices.IndexFunc(s.Extensions, func(e diagnostics.Extension) bool { return e.Name == "pg_trgm" })
			if !s.PgTrgmInstalled || !s.PgTrgmAvailable || i < 0 || s.Extensions[i].Version == "" {
				t.Errorf("%+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := diagnostics.Schema(ctxT(t), tt.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestSizes(t *testing.T) {
	ctx := ctxT(t)
	conn := diagtest.Connect(t, diagtest.QuayDatabase(t))
	diagtest.Exec(t, conn, `CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 5000) g`)
	diagtest.Exec(t, conn, `CREATE INDEX big_id ON big (id)`)
	diagtest.Exec(t, conn, `ANALYZE big`)
	tests := []struct {
		top, want int
	}{{0, 0}, {1, 1}, {3, 3}}
	for _, tt := range tests {
		t.Run(fmt.Sprint("top ", tt.top), func(t *testing.T) {
			s, err := diagnostics.Sizes(ctx, conn, tt.top)
			if err != nil {
				t.Fatal(err)
			}
			if s.Database == "" || s.DatabaseSizeBytes <= 0 || len(s.Tables) != tt.want {
				t.Fatalf("%+v", s)
			}
			for i, tb := range s.Tables {
				if tb.TotalBytes != tb.TableBytes+tb.IndexBytes || (i > 0 && tb.TotalBytes > s.Tables[i-1].TotalBytes) {
					t.Errorf("table %d: %+v", i, tb)
				}
			}
			if tt.want > 0 && (s.Tables[0].Name != "big" || s.Tables[0].RowEstimate != 5000 || s.Tables[0].IndexBytes == 0) {
				t.Errorf("largest: %+v", s.Tables[0])
			}
		})
	}
}

func TestBloat(t *testing.T) {
	ctx := ctxT(t)
	uri := diagtest.QuayDatabase(t)
	conn := diagtest.Connect(t, uri)
	diagtest.Exec(t, conn, `CREATE TABLE churn (id int) WITH (autovacuum_enabled = false)`)
	diagtest.Exec(t, conn, `INSERT INTO churn SELECT generate_series(1, 10000)`)
	diagtest.Exec(t, conn, `DELETE FROM churn WHERE id <= 6000`)
	diagtest.Exec(t, conn, `CREATE TABLE calm (id int) WITH (autovacuum_enabled = false)`)
	diagtest.Exec(t, conn, `INSERT INTO calm SELECT generate_series(1, 100)`)
	diagtest.Exec(t, conn, `DELETE FROM calm WHERE id <= 10`)

	// Table statistics reach the shared counters when a session goes
	// idle, at most once a second.
	eventually(t, "dead rows counted", func() error {
		got, err := diagnostics.Bloat(ctx, conn, 1)
		if err != nil {
			return err
		}
		if len(got) < 2 || got[0].Table != "churn" || got[0].DeadTuples < 6000 || got[1].Table != "calm" {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	tests := []struct {
		min    int64
		tables []string
	}{{1, []string{"churn", "calm"}}, {1000, []string{"churn"}}, {100000, nil}}
	for _, tt := range tests {
		t.Run(fmt.Sprint("min ", tt.min), func(t *testing.T) {
			got, err := diagnostics.Bloat(ctx, conn, tt.min)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, b := range got {
				names = append(names, b.Table)
			}
			if !slices.Equal(names, tt.tables) || got == nil {
				t.Fatalf("tables %v (%+v)", names, got)
			}
			if len(got) > 0 {
				b := got[0]
				if b.LiveTuples != 4000 || b.DeadTuples != 6000 || b.DeadRatio != 0.6 || b.AutovacuumEnabled || b.LastAutovacuum != nil || b.LastVacuum != nil {
					t.Errorf("%+v", b)
				}
			}
		})
	}
	// VACUUM clears the dead rows and records itself.
	diagtest.Exec(t, conn, `VACUUM churn`)
	eventually(t, "vacuum recorded", func() error {
		got, err := diagnostics.Bloat(ctx, conn, 0)
		if err != nil {
			return err
		}
		for _, b := range got {
			if b.Table == "churn" && b.DeadTuples == 0 && b.LastVacuum != nil {
				return nil
			}
		}
		return fmt.Errorf("%+v", got)
	})
}

func TestUsers(t *testing.T) {
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testUsers(t, db) })
	}
}

func testUsers(t *testing.T, db *diagtest.Database) {
	ctx := ctxT(t)
	conn, seed := db.Q, db.Seed
	r, err := diagnostics.Users(ctx, conn, diagtest.SuperUsers)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		user     diagnostics.SuperUser
		problems []string
	}{
		{diagnostics.SuperUser{Username: "quayadmin", Exists: true, Enabled: true, Verified: true, HasPassword: true, FederatedLogins: []string{}}, nil},
		{diagnostics.SuperUser{Username: "ghost", FederatedLogins: []string{}}, []string{"no account of that name"}},
		{diagnostics.SuperUser{Username: "olduser", Exists: true, Verified: true, HasPassword: true, FederatedLogins: []string{}}, []string{"disabled"}},
		{diagnostics.SuperUser{Username: "acme+bot", Exists: true, Enabled: true, Robot: true, Verified: true, FederatedLogins: []string{}},
			[]string{"a robot account, which cannot use the superuser panel"}},
		{diagnostics.SuperUser{Username: "acme", Exists: true, Enabled: true, Organization: true, Verified: true, FederatedLogins: []string{}},
			[]string{"an organization, which cannot log in"}},
		{diagnostics.SuperUser{Username: "bob", Exists: true, Enabled: true, Verified: true, FederatedLogins: []string{"github"}}, nil},
	}
	if len(r.SuperUsers) != len(want) {
		t.Fatalf("super users: %+v", r.SuperUsers)
	}
	for i, w := range want {
		t.Run("superuser "+w.user.Username, func(t *testing.T) {
			if !reflect.DeepEqual(r.SuperUsers[i], w.user) {
				t.Errorf("got  %+v\nwant %+v", r.SuperUsers[i], w.user)
			}
			if p := r.SuperUsers[i].Problems(); !slices.Equal(p, w.problems) {
				t.Errorf("problems %q, want %q", p, w.problems)
			}
		})
	}
	if want := (diagnostics.UserCounts{Users: 5, Disabled: 1, Federated: 2, WithoutPassword: 2, Robots: 2, Organizations: 1}); r.Counts != want {
		t.Errorf("counts %+v, want %+v", r.Counts, want)
	}
	wantFed := []diagnostics.FederatedIdentity{
		{Service: "github", ServiceIdent: "1234567", UserID: r.Federated[0].UserID, UserExists: true, Username: "bob", Kind: "user", Enabled: true},
		{Service: "ldap", ServiceIdent: "carol", UserID: seed.MissingUserID},
		{Service: "ldap", ServiceIdent: "alice", UserID: r.Federated[2].UserID, UserExists: true, Username: "alice", Kind: "user", Enabled: true},
	}
	if !reflect.DeepEqual(r.Federated, wantFed) || r.FederatedTruncated {
		t.Errorf("federated:\n got %+v\nwant %+v", r.Federated, wantFed)
	}
	if !slices.Equal(r.NoLogin, []string{"nologin"}) {
		t.Errorf("no login: %v", r.NoLogin)
	}

	// Without SUPER_USERS: an empty list, not null.
	r, err = diagnostics.Users(ctx, conn, nil)
	if err != nil || r.SuperUsers == nil || len(r.SuperUsers) != 0 {
		t.Errorf("%+v, %v", r.SuperUsers, err)
	}
}

func TestAccounts(t *testing.T) {
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testAccounts(t, db) })
	}
}

func testAccounts(t *testing.T, db *diagtest.Database) {
	ctx := ctxT(t)
	conn := db.Q
	all := []diagnostics.Account{
		{Username: "acme", Kind: "organization", Enabled: true, Verified: true, Superuser: true, LoginMethods: []string{}},
		{Username: "acme+bot", Kind: "robot", Enabled: true, Verified: true, Superuser: true, LoginMethods: []string{"token"}},
		{Username: "acme+reader", Kind: "robot", Enabled: true, Verified: true, LoginMethods: []string{"token"}},
		{Username: "alice", Kind: "user", Enabled: true, Verified: true, LoginMethods: []string{"password", "ldap"}},
		{Username: "bob", Kind: "user", Enabled: true, Verified: true, Superuser: true, LoginMethods: []string{"github"}},
		{Username: "nologin", Kind: "user", Enabled: true, Verified: true, LoginMethods: []string{}},
		{Username: "olduser", Kind: "user", Verified: true, Superuser: true, LoginMethods: []string{"password"}},
		{Username: "quayadmin", Kind: "user", Enabled: true, Verified: true, Superuser: true, LoginMethods: []string{"password"}},
	}
	noSuper := make([]diagnostics.Account, len(all))
	for i, a := range all {
		a.Superuser = false
		noSuper[i] = a
	}
	tests := []struct {
		name   string
		supers []string
		limit  int
		setup  []string
		want   []diagnostics.Account
	}{
		{"all", diagtest.SuperUsers, 0, nil, all},
		{"limit", diagtest.SuperUsers, 2, nil, all[:2]},
		{"no SUPER_USERS", nil, 0, nil, noSuper},
		{"quayctl serve's own superusers", nil, 0, []string{
			`CREATE TABLE quayctl_superuser (id INTEGER PRIMARY KEY, user_id int NOT NULL, created timestamp NOT NULL)`,
			`INSERT INTO quayctl_superuser (id, user_id, created) SELECT 1, id, creation_date FROM "user" WHERE username = 'alice'`},
			func() []diagnostics.Account {
				out := slices.Clone(noSuper)
				out[3].Superuser = true
				return out
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, st := range tt.setup {
				db.Exec(t, st)
			}
			got, err := diagnostics.Accounts(ctx, conn, tt.supers, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestMirrors(t *testing.T) {
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testMirrors(t, db) })
	}
}

func testMirrors(t *testing.T, db *diagtest.Database) {
	ctx := ctxT(t)
	conn := db.Q
	got, err := diagnostics.Mirrors(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := start.Add(time.Hour)
	no := false
	want := []diagnostics.Mirror{
		{Repository: "acme/mirrored", RepositoryState: "MIRROR", Enabled: true, ExternalReference: "registry.example.com/library/busybox",
			SyncStatus: "FAIL", SyncStatusCode: -1, SyncIntervalSeconds: 3600, SyncStartDate: &start, SyncRetriesRemaining: 3,
			SkopeoTimeoutSeconds: 300, TagPatterns: []string{"latest", "1.*"}, HasCredentials: true, VerifyTLS: &no, ProxyConfigured: true,
			Robot: "acme+bot", RobotEnabled: true, RobotRole: "write"},
		{Repository: "acme/readonly", RepositoryState: "MIRROR", Enabled: true, ExternalReference: "registry.example.com/library/alpine",
			SyncStatus: "SUCCESS", SyncStatusCode: 1, SyncIntervalSeconds: 3600, SyncStartDate: &later, SyncRetriesRemaining: 3,
			SkopeoTimeoutSeconds: 300, TagPatterns: []string{"3.*"}, Robot: "acme+reader", RobotEnabled: true, RobotRole: "read"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", js(t, got), js(t, want))
	}

	// The reason of the last failed sync, newest first, redacted; Quay's
	// entries carry only "message".
	for _, e := range []struct {
		at       time.Time
		metadata string
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), `{"message": "old failure"}`},
		{time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), `{"message": "sync failed", "error": "unauthorized: https://bob:hunter2@registry.example.com/v2/"}`},
	} {
		db.Exec(t, `INSERT INTO logentry3 (kind_id, account_id, repository_id, datetime, metadata_json)
			SELECT k.id, r.namespace_user_id, r.id, $1, $2
			FROM logentrykind k, repository r WHERE k.name = 'repo_mirror_sync_failed' AND r.name IN ('mirrored', 'readonly')`, e.at, e.metadata)
	}
	if got, err = diagnostics.Mirrors(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0].LastError, "unauthorized: https://bob:") || strings.Contains(got[0].LastError, "hunter2") || got[1].LastError != "" {
		t.Errorf("last errors %q, %q; want the newest, redacted, and none for a mirror that did not fail", got[0].LastError, got[1].LastError)
	}

	// The robot's role through a team, and as an admin team's member.
	tests := []struct {
		name  string
		setup []string
		role  string
	}{
		{"no permission", []string{`DELETE FROM repositorypermission WHERE user_id = (SELECT id FROM "user" WHERE username = 'acme+reader')`}, ""},
		{"through a team", []string{`INSERT INTO team (name, organization_id, role_id, description) VALUES ('pushers',
				(SELECT id FROM "user" WHERE username = 'acme'), (SELECT id FROM teamrole WHERE name = 'member'), '')`,
			`INSERT INTO teammember (user_id, team_id) VALUES ((SELECT id FROM "user" WHERE username = 'acme+reader'), (SELECT id FROM team WHERE name = 'pushers'))`,
			`INSERT INTO repositorypermission (team_id, repository_id, role_id) VALUES ((SELECT id FROM team WHERE name = 'pushers'),
				(SELECT id FROM repository WHERE name = 'readonly'), (SELECT id FROM role WHERE name = 'write'))`}, "write"},
		{"organisation admin", []string{`INSERT INTO team (name, organization_id, role_id, description) VALUES ('owners',
				(SELECT id FROM "user" WHERE username = 'acme'), (SELECT id FROM teamrole WHERE name = 'admin'), '')`,
			`INSERT INTO teammember (user_id, team_id) VALUES ((SELECT id FROM "user" WHERE username = 'acme+reader'), (SELECT id FROM team WHERE name = 'owners'))`}, "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, st := range tt.setup {
				db.Exec(t, st)
			}
			got, err := diagnostics.Mirrors(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[1].RobotRole != tt.role || got[0].RobotRole != "write" {
				t.Errorf("roles %q, %q; want write, %q", got[0].RobotRole, got[1].RobotRole, tt.role)
			}
		})
	}

	// Status names as Quay's RepoMirrorStatus.
	for code, name := range map[int]string{-2: "CANCEL", -1: "FAIL", 0: "NEVER_RUN", 1: "SUCCESS", 2: "SYNCING", 3: "SYNC_NOW", 9: "UNKNOWN(9)"} {
		if got := diagnostics.MirrorStatusName(code); got != name {
			t.Errorf("MirrorStatusName(%d) = %q, want %q", code, got, name)
		}
	}
}

func TestPlacement(t *testing.T) {
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testPlacement(t, db) })
	}
}

func testPlacement(t *testing.T, db *diagtest.Database) {
	ctx := ctxT(t)
	conn := db.Q
	tests := []struct {
		sample  int
		digests []string // first hex digit of each sampled digest
	}{{0, nil}, {2, []string{"4", "3"}}, {10, []string{"4", "3", "2", "1"}}}
	for _, tt := range tests {
		t.Run(fmt.Sprint("sample ", tt.sample), func(t *testing.T) {
			p, err := diagnostics.Placement(ctx, conn, tt.sample)
			if err != nil {
				t.Fatal(err)
			}
			locs := map[string]diagnostics.LocationPlacement{}
			for _, l := range p.Locations {
				locs[l.Name] = l
			}
			if locs["usstorage"] != (diagnostics.LocationPlacement{Name: "usstorage", Blobs: 3, Bytes: 1230}) ||
				locs["eustorage"] != (diagnostics.LocationPlacement{Name: "eustorage", Blobs: 1, Bytes: 1000}) ||
				locs["local"] != (diagnostics.LocationPlacement{Name: "local"}) {
				t.Errorf("locations %+v", p.Locations)
			}
			if p.TotalBlobs != 4 || p.TotalBytes != 1234 || p.UnplacedBlobs != 1 {
				t.Errorf("totals %d blobs, %d bytes, %d unplaced", p.TotalBlobs, p.TotalBytes, p.UnplacedBlobs)
			}
			if len(p.Sample) != len(tt.digests) || p.Sample == nil {
				t.Fatalf("sample %+v", p.Sample)
			}
			wantLocs := map[string][]string{"1": {"eustorage", "usstorage"}, "2": {"usstorage"}, "3": {"usstorage"}, "4": {}}
			wantSize := map[string]int64{"1": 1000, "2": 200, "3": 30, "4": 4}
			for i, d := range tt.digests {
				b := p.Sample[i]
				if b.Digest != "sha256:"+strings.Repeat(d, 64) || !slices.Equal(b.Locations, wantLocs[d]) || b.Locations == nil ||
					b.SizeBytes == nil || *b.SizeBytes != wantSize[d] || b.Uploading != (d == "3") || !b.CASPath || b.UUID == "" {
					t.Errorf("sample %d: %+v", i, b)
				}
			}
		})
	}
}

// TestNoSecrets runs every function on the seeded database, with sessions
// whose statements hold secrets, and searches the JSON for them.
func TestNoSecrets(t *testing.T) {
	ctx := ctxT(t)
	uri, _ := diagtest.SeededDatabase(t)
	conn := diagtest.Connect(t, uri)
	for _, q := range []string{
		`SELECT password_hash FROM "user" WHERE password_hash = '` + diagtest.PasswordHash + `'`,
		`SELECT id FROM repomirrorconfig WHERE external_registry_password = '` + diagtest.MirrorPassword + `'`,
		`SELECT 1 /* password='hunter2' */`,
	} {
		c := diagtest.Connect(t, uri)
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	results := map[string]func() (any, error){
		"server":    func() (any, error) { return diagnostics.Server(ctx, conn) },
		"activity":  func() (any, error) { return diagnostics.Activity(ctx, conn) },
		"locks":     func() (any, error) { return diagnostics.Locks(ctx, conn) },
		"sizes":     func() (any, error) { return diagnostics.Sizes(ctx, conn, 100) },
		"schema":    func() (any, error) { return diagnostics.Schema(ctx, conn) },
		"bloat":     func() (any, error) { return diagnostics.Bloat(ctx, conn, 0) },
		"users":     func() (any, error) { return diagnostics.Users(ctx, conn, append(diagtest.SuperUsers, "alice")) },
		"accounts":  func() (any, error) { return diagnostics.Accounts(ctx, conn, diagtest.SuperUsers, 0) },
		"mirrors":   func() (any, error) { return diagnostics.Mirrors(ctx, conn) },
		"placement": func() (any, error) { return diagnostics.Placement(ctx, conn, 100) },
	}
	var activity string
	for name, f := range results {
		t.Run(name, func(t *testing.T) {
			v, err := f()
			if err != nil {
				t.Fatal(err)
			}
			out := js(t, v)
			if name == "activity" {
				activity = out
			}
			for _, secret := range []string{diagtest.Secret, "hunter2", "$2b$", "v0$$", "proxyuser", diagtest.LegacyRobotIdent} {
				if strings.Contains(out, secret) {
					t.Errorf("%q in %s", secret, out)
				}
			}
		})
	}
	if !strings.Contains(activity, `external_registry_password = '<redacted>'`) || !strings.Contains(activity, "password='<redacted>'") {
		t.Errorf("the statements are not in the activity, or not redacted as expected:\n%s", activity)
	}
}

// TestInTransaction runs the functions inside a read-only transaction and
// on a pool: the Querier contract.
func TestInTransaction(t *testing.T) {
	ctx := ctxT(t)
	uri, _ := diagtest.SeededDatabase(t)
	pool, err := pgxpool.New(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := diagnostics.Users(ctx, pool, diagtest.SuperUsers); err != nil {
		t.Errorf("on a pool: %v", err)
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for name, f := range map[string]func() error{
		"server":    func() error { _, err := diagnostics.Server(ctx, tx); return err },
		"locks":     func() error { _, err := diagnostics.Locks(ctx, tx); return err },
		"schema":    func() error { _, err := diagnostics.Schema(ctx, tx); return err },
		"mirrors":   func() error { _, err := diagnostics.Mirrors(ctx, tx); return err },
		"placement": func() error { _, err := diagnostics.Placement(ctx, tx, 5); return err },
	} {
		if err := f(); err != nil {
			t.Errorf("%s in a read-only transaction: %v", name, err)
		}
	}
	// A database that is not Quay's: errors say what failed, and wrap.
	empty := diagtest.Connect(t, testpg.NewDatabase(t))
	_, err = diagnostics.Mirrors(ctx, empty)
	var pgErr interface{ SQLState() string }
	if err == nil || !strings.HasPrefix(err.Error(), "read repomirrorconfig: ") || !errors.As(err, &pgErr) || pgErr.SQLState() != "42P01" {
		t.Errorf("Mirrors on an empty database: %v", err)
	}
}

func js(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
