package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
)

func TestDBUsersFlags(t *testing.T) {
	clear := func(o *DBUsersOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"db"}, NewCmdDBUsers, clear, []tkFlagCase[DBUsersOptions]{
		{name: "defaults", args: []string{"db", "users"}, want: DBUsersOptions{Limit: 1000, Output: "table"}},
		{name: "both tables", args: []string{"db", "users", "--federated", "--superusers", "--openshift", "-n", "quay"},
			want: DBUsersOptions{Federated: true, SuperUsers: true, Limit: 1000, Output: "table", Target: TargetOptions{Kind: TargetOpenShift, Namespace: "quay"}}},
		{name: "all accounts", args: []string{"db", "users", "--limit", "0", "--config", "/etc/quay/config.yaml", "-o", "json"},
			want: DBUsersOptions{Limit: 0, Output: "json", Target: TargetOptions{Kind: TargetDirect, ConfigPath: "/etc/quay/config.yaml"}}},
		{name: "negative limit", args: []string{"db", "users", "--limit", "-1"}, wantErr: "--limit -1: give a positive number, or 0 for all accounts"},
		{name: "not a number", args: []string{"db", "users", "--limit", "many"}, wantErr: `invalid argument "many" for "--limit" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{name: "an argument", args: []string{"db", "users", "alice"}, wantErr: "quayctl db users takes 0 argument(s): no arguments"},
		{name: "superusers without a config", args: []string{"db", "users", "--superusers", "--db", "postgresql://h/quay"},
			wantErr: "--superusers checks SUPER_USERS of config.yaml: add --config config.yaml (a copy of Quay's), or name the deployment with --podman or --openshift"},
	})
}

func TestDBUsersRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	// PostgreSQL and SQLite (quayctl serve's default) give the same output.
	for _, db := range diagtest.SeededDatabases(t) {
		t.Run(db.Dialect, func(t *testing.T) { testDBUsersRun(t, db.URI) })
	}
}

func testDBUsersRun(t *testing.T, uri string) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	conf := "DB_URI: " + uri + "\nSUPER_USERS: [" + strings.Join(diagtest.SuperUsers, ", ") + "]\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		golden     string
		wantCode   int
		wantStderr string
	}{
		{name: "accounts", args: []string{"--config", cfg}, golden: "db_users.golden"},
		{name: "superusers", args: []string{"--config", cfg, "--superusers"}, golden: "db_users_superusers.golden"},
		{name: "federated", args: []string{"--config", cfg, "--federated"}, golden: "db_users_federated.golden"},
		{name: "both", args: []string{"--config", cfg, "--superusers", "--federated"}, golden: "db_users_both.golden"},
		{name: "json", args: []string{"--config", cfg, "--superusers", "--federated", "-o", "json"}, golden: "db_users_json.golden"},
		{name: "accounts as yaml", args: []string{"--config", cfg, "-o", "yaml", "--limit", "2"}, golden: "db_users_yaml.golden",
			wantStderr: "quayctl: showing the first 2 accounts (--limit 0 shows all)\n"},
		{name: "limit", args: []string{"--db", uri, "--limit", "3"}, golden: "db_users_limit.golden",
			wantStderr: "quayctl: showing the first 3 accounts (--limit 0 shows all)\n" +
				"quayctl: SUPER_USERS is unknown (no config.yaml was read): SUPERUSER shows quayctl serve's own table only — add --config to check it\n"},
		{name: "the database from --db, SUPER_USERS from --config", args: []string{"--db", uri, "--config", cfg, "--superusers"},
			golden: "db_users_superusers.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tkRun(t, context.Background(), nil, append([]string{"db", "users"}, tt.args...)...)
			if code != tt.wantCode || stderr != tt.wantStderr {
				t.Fatalf("exit %d, want %d\nstderr %q\n  want %q", code, tt.wantCode, stderr, tt.wantStderr)
			}
			for _, secret := range []string{diagtest.Secret, "$2b$", "v0$$", diagtest.LegacyRobotIdent} {
				if strings.Contains(stdout, secret) {
					t.Errorf("%q in the output:\n%s", secret, stdout)
				}
			}
			if tt.golden == "" {
				return
			}
			out := strings.ReplaceAll(stdout, cfg, "<config.yaml>")
			if strings.HasSuffix(tt.golden, "_json.golden") {
				var res map[string]any
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatal(err)
				}
				if res["database"] != uri {
					t.Errorf("database %q, want %q", res["database"], uri)
				}
			}
			out = strings.ReplaceAll(out, uri, "<uri>")
			golden(t, tt.golden, out)
		})
	}
}
