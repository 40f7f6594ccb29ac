package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
	"github.com/quayctl/quayctl/internal/testpg"
)

// TestMain starts a PostgreSQL cluster for the package on first use (the
// db activity and db users tests), and stops it at the end.
func TestMain(m *testing.M) { testpg.Main(m) }

func TestDBActivityFlags(t *testing.T) {
	clear := func(o *DBActivityOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"db"}, NewCmdDBActivity, clear, []tkFlagCase[DBActivityOptions]{
		{name: "defaults", args: []string{"db", "activity"}, want: DBActivityOptions{Output: "table"}},
		{name: "all, json, a database", args: []string{"db", "activity", "--all", "-o", "json", "--db", "postgresql://u:p@h/quay"},
			want: DBActivityOptions{All: true, Output: "json", Target: TargetOptions{Kind: TargetDirect, DBURI: "postgresql://u:p@h/quay"}}},
		{name: "podman", args: []string{"db", "activity", "--podman", "-o", "yaml"},
			want: DBActivityOptions{Output: "yaml", Target: TargetOptions{Kind: TargetPodman}}},
		{name: "bad output", args: []string{"db", "activity", "-o", "csv"}, wantErr: `--output "csv" is not one of table, json, yaml`},
		{name: "an argument", args: []string{"db", "activity", "quay"}, wantErr: "quayctl db activity takes 0 argument(s): no arguments"},
		{name: "db with podman", args: []string{"db", "activity", "--podman", "--db", "postgresql://h/q"},
			wantErr: "--config and --db describe a direct target; with --podman quayctl reads the deployment's own (drop them, or give the file to config validate as an argument)"},
	})
}

// activityScene is a database with a session holding a lock in an open
// transaction, a session waiting for it, and an idle one whose last
// statement holds a password. names maps their pids to names, for
// normalising the output.
type activityScene struct {
	uri   string
	names map[int]string
}

func newActivityScene(t *testing.T) *activityScene {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uri := diagtest.QuayDatabase(t)
	sc := &activityScene{uri: uri, names: map[int]string{}}
	session := func(name string) *pgx.Conn {
		c := diagtest.Connect(t, uri)
		diagtest.Exec(t, c, "SET application_name = '"+name+"'")
		sc.names[int(c.PgConn().PID())] = name
		return c
	}
	observer := session("observer")
	diagtest.Exec(t, observer, `CREATE TABLE locked (id int)`)

	holder := session("holder")
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE locked IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	waiter := session("waiter")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = waiter.Exec(context.Background(), "SELECT count(*)\n  FROM locked /* password='hunter2' */")
	}()
	// Cleanups run last-in first-out: release the lock before the
	// connections close.
	t.Cleanup(func() {
		_ = tx.Rollback(context.Background())
		wg.Wait()
	})
	idler := session("idler")
	diagtest.Exec(t, idler, `SELECT 1 /* ALTER ROLE quay PASSWORD 'hunter2' */`)

	deadline := time.Now().Add(15 * time.Second)
	for {
		locks, err := diagnostics.Locks(ctx, observer)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter never waited: %+v", locks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // ages above a second
	return sc
}

var ageRE = regexp.MustCompile(`^(\d+ms|\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)$`)

// normaliseTable replaces pids by session names and ages by <age> in
// tab-separated output.
func (sc *activityScene) normaliseTable(out string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		for i, f := range fields {
			switch {
			case i == 0 || i == 6:
				var names []string
				for _, p := range strings.Split(f, ",") {
					if pid, err := strconv.Atoi(p); err == nil {
						p = sc.name(pid)
					}
					names = append(names, p)
				}
				fields[i] = strings.Join(names, ",")
			case (i == 4 || i == 5) && ageRE.MatchString(f):
				fields[i] = "<age>"
			}
		}
		b.WriteString(strings.Join(fields, "\t"))
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (sc *activityScene) name(pid int) string {
	if n, ok := sc.names[pid]; ok {
		return n
	}
	return "<pid>"
}

// normaliseJSON replaces what changes from run to run: pids by names,
// times, durations, the database's name and the server's figures.
func (sc *activityScene) normaliseJSON(t *testing.T, out string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if key == "server" { // the cluster's figures: only the schema is stable
					x[k] = "<" + jsonType(e) + ">"
					continue
				}
				x[k] = walk(k, e)
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(key, e)
			}
			return x
		case float64:
			switch {
			case key == "pid" || key == "blocked_by":
				return sc.name(int(x))
			case strings.HasSuffix(key, "_seconds") && x > 0:
				return "<seconds>"
			}
		case string:
			switch {
			case strings.HasSuffix(key, "_start") || key == "state_change":
				if _, err := time.Parse(time.RFC3339Nano, x); err == nil {
					return "<time>"
				}
			case key == "database" && strings.HasPrefix(x, "t_"):
				return "<test database>"
			case key == "database" && strings.HasPrefix(x, "postgres"):
				return "<uri>"
			}
		}
		return v
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(walk("", v)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func jsonType(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "null"
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDBActivityRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	sc := newActivityScene(t)
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("DB_URI: "+sc.uri+"\nSUPER_USERS: [quayadmin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		golden string
		json   bool
	}{
		{"active sessions", []string{"db", "activity", "--db", sc.uri}, "db_activity.golden", false},
		{"all sessions", []string{"db", "activity", "--db", sc.uri, "--all"}, "db_activity_all.golden", false},
		{"from the config", []string{"db", "activity", "--config", cfg}, "db_activity.golden", false},
		{"json", []string{"db", "activity", "--db", sc.uri, "-o", "json"}, "db_activity_json.golden", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tkRun(t, ctx, nil, tt.args...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if strings.Contains(stdout, "hunter2") {
				t.Errorf("a password in the output:\n%s", stdout)
			}
			got := sc.normaliseTable(stdout)
			if tt.json {
				got = sc.normaliseJSON(t, stdout)
				var res dbActivityResult
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatal(err)
				}
				if res.Server.Connections != 5 || res.Server.ConnectionsByState["idle in transaction"] != 1 {
					t.Errorf("server: %+v (want 5 connections: 4 sessions and the command's own)", res.Server)
				}
			}
			golden(t, tt.golden, got)
		})
	}

	// The longest-running first, whatever the order pg_stat_activity
	// gives: transaction age, then query age.
	t.Run("order", func(t *testing.T) {
		_, stdout, _ := tkRun(t, ctx, nil, "db", "activity", "--db", sc.uri, "--all", "-o", "json")
		var res dbActivityResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		ok := sort.SliceIsSorted(res.Sessions, func(i, j int) bool {
			a, b := res.Sessions[i], res.Sessions[j]
			return a.TransactionSeconds > b.TransactionSeconds || a.TransactionSeconds == b.TransactionSeconds && a.QuerySeconds > b.QuerySeconds
		})
		if !ok || len(res.Sessions) != 4 {
			t.Errorf("sessions not longest-running first: %+v", res.Sessions)
		}
	})
}

func TestDBActivityErrors(t *testing.T) {
	closed := closedPort(t)
	dir := t.TempDir()
	noURI := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(noURI, []byte("SERVER_HOSTNAME: quay.example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stderr []string // substrings, in order
	}{
		{"unreachable", []string{"--db", "postgresql://quayuser:SEEDpw@" + closed + "/quay?sslmode=disable&connect_timeout=3"},
			[]string{"Error: cannot connect to postgresql://quayuser:xxxxx@" + closed + "/quay", "connection refused", "forward the port"}},
		{"SQLite", []string{"--db", "sqlite:///quay-data/quay.db"},
			[]string{"Error: the registry's database is SQLite (sqlite:///quay-data/quay.db): quayctl db activity reads PostgreSQL's statistics", "point --db at the PostgreSQL database"}},
		{"MySQL", []string{"--db", "mysql+pymysql://quay:SEEDpw@db/quay"}, []string{"Error: cannot use the database URI: DB_URI uses MySQL"}},
		{"config without DB_URI", []string{"--config", noURI}, []string{"Error: " + noURI + " has no DB_URI — pass the database with --db URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range []string{"activity", "users"} {
				if tt.name == "SQLite" && cmd == "users" {
					continue // db users reads SQLite too (TestDBUsersRun)
				}
				code, stdout, stderr := tkRun(t, context.Background(), nil, append([]string{"db", cmd}, tt.args...)...)
				if code != ExitError || stdout != "" || strings.Contains(stderr, "SEED") {
					t.Errorf("db %s: exit %d\nstdout %q\nstderr %q", cmd, code, stdout, stderr)
				}
				rest := stderr
				for _, want := range tt.stderr {
					i := strings.Index(rest, want)
					if i < 0 {
						t.Errorf("db %s: stderr lacks %q:\n%s", cmd, want, stderr)
						break
					}
					rest = rest[i+len(want):]
				}
			}
		})
	}
}

func TestFormatSeconds(t *testing.T) {
	for _, tt := range []struct {
		s    float64
		want string
	}{
		{0.85, "850ms"}, {42.9, "42s"}, {185, "3m05s"}, {7620, "2h07m"}, {47 * 3600, "47h00m"}, {3*86400 + 4*3600 + 60, "3d04h"},
	} {
		if got := formatSeconds(tt.s); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"\n  SELECT 1\nFROM x", "SELECT 1"},
		{strings.Repeat("é", 100), strings.Repeat("é", 79) + "…"},
	} {
		if got := firstLine(tt.in, 80); got != tt.want {
			t.Errorf("firstLine(%q) = %q", tt.in, got)
		}
	}
}
