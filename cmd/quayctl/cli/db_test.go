package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestDBMigrate(t *testing.T) {
	needEmbeddedDefault(t)
	const latest = "The sqlite database is at the latest schema.\n"
	tests := []struct {
		name       string
		output     []string
		wantStdout string
		golden     string
	}{
		{name: "table", wantStdout: latest},
		{name: "json", output: []string{"-o", "json"}, golden: "db_migrate.json.golden"},
		{name: "yaml", output: []string{"-o", "yaml"}, golden: "db_migrate.yaml.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// A data directory that does not exist yet is created.
			dir := filepath.Join(t.TempDir(), "quay-data")
			args := append([]string{"db", "migrate", "--data-dir", dir}, tt.output...)
			for i, fresh := range []bool{true, false} {
				code, stdout, stderr := run(t, ctx, nil, "", args...)
				if code != ExitOK {
					t.Fatalf("run %d: exit code %d, stderr:\n%s", i+1, code, stderr)
				}
				if tt.golden != "" {
					golden(t, tt.golden, stdout)
				} else if stdout != tt.wantStdout {
					t.Errorf("run %d: stdout = %q, want %q", i+1, stdout, tt.wantStdout)
				}
				// The first run applies the migrations and says so on
				// stderr; the second has nothing to do.
				applied := strings.Count(stderr, "applied database migration")
				if fresh && applied == 0 {
					t.Errorf("run 1: no migration logged:\n%s", stderr)
				}
				if !fresh && applied != 0 {
					t.Errorf("run 2: migrations applied again:\n%s", stderr)
				}
			}
			if err := openTestStore(t, dir).Ping(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDBMigrateKeepsUsers: migrating a database in use changes no data.
func TestDBMigrateKeepsUsers(t *testing.T) {
	needEmbeddedDefault(t)
	heavy(t)
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, stderr := run(t, ctx, nil, "s3cret-pass\n", "user", "create", "alice", "--password-stdin", "--superuser", "--data-dir", dir); code != ExitOK {
		t.Fatalf("user create: %d %s", code, stderr)
	}
	before := snapshot(t, dir, "alice")
	if code, stdout, stderr := run(t, ctx, nil, "", "db", "migrate", "--data-dir", dir); code != ExitOK || stdout != "The sqlite database is at the latest schema.\n" {
		t.Fatalf("db migrate: %d %q %s", code, stdout, stderr)
	}
	if after := snapshot(t, dir, "alice"); !equalSnapshots(before, after) {
		t.Errorf("database changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestDBMigrateFails(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "DB_URI: mysql+pymysql://u:p@h/quay\n")
	code, stdout, stderr := run(t, context.Background(), nil, "", "db", "migrate", "--config", cfg, "-o", "json")
	if code != ExitError {
		t.Errorf("exit code = %d, want %d", code, ExitError)
	}
	if stdout != "" {
		t.Errorf("stdout = %q", stdout)
	}
	for _, w := range []string{"Error: the configuration is invalid", "DB_URI", "fix the keys above"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if strings.Contains(stderr, "u:p@") {
		t.Errorf("stderr shows the password:\n%s", stderr)
	}
}
