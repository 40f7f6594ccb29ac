package diagnostics_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/diagnostics"
	"github.com/quayctl/quayctl/dbtools/diagnostics/diagtest"
)

// TestOpenSQLite: the file must exist (SQLite would create an empty one),
// must be a database, and is opened read-only.
func TestOpenSQLite(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "nothing.db"), "no such file or directory"},
		{"a directory", dir, "it is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := diagnostics.OpenSQLite(ctx, tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "open SQLite database ") {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	// A WAL-mode database whose server stopped (no -wal or -shm file left).
	t.Run("stopped server", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "quay.db")
		w, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(`CREATE TABLE imagestoragelocation (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO imagestoragelocation (name) VALUES ('local_us')`); err != nil {
			t.Fatal(err)
		}
		w.Close()
		s, err := diagnostics.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var name string
		if err := s.QueryRow(ctx, `SELECT name FROM imagestoragelocation`).Scan(&name); err != nil || name != "local_us" {
			t.Errorf("read %q, %v", name, err)
		}
	})
	if testing.Short() {
		t.Skip("seeds a database")
	}
	db := diagtest.SeededSQLiteDatabase(t)
	s := db.Q.(*diagnostics.SQLite)
	rows, err := s.Query(ctx, `DELETE FROM "user"`)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a write through the read-only database: %v", err)
	}
	var n int
	if err := s.QueryRow(ctx, `SELECT count(*) FROM "user" WHERE username = $1`, "alice").Scan(&n); err != nil || n != 1 {
		t.Errorf("count = %d, %v", n, err)
	}
	if err := s.QueryRow(ctx, `SELECT id FROM "user" WHERE username = $1`, "nobody").Scan(&n); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Errorf("no row: %v", err)
	}
}

// TestNoSecretsSQLite runs the functions that read Quay's tables on the
// seeded SQLite database and searches the JSON for the seed's secrets.
func TestNoSecretsSQLite(t *testing.T) {
	ctx := ctxT(t)
	if testing.Short() {
		t.Skip("seeds a database")
	}
	q := diagtest.SeededSQLiteDatabase(t).Q
	for name, f := range map[string]func() (any, error){
		"users":       func() (any, error) { return diagnostics.Users(ctx, q, append(diagtest.SuperUsers, "alice")) },
		"accounts":    func() (any, error) { return diagnostics.Accounts(ctx, q, diagtest.SuperUsers, 0) },
		"mirrors":     func() (any, error) { return diagnostics.Mirrors(ctx, q) },
		"placement":   func() (any, error) { return diagnostics.Placement(ctx, q, 100) },
		"replication": func() (any, error) { return diagnostics.Replication(ctx, q, nil, time.Now()) },
	} {
		t.Run(name, func(t *testing.T) {
			v, err := f()
			if err != nil {
				t.Fatal(err)
			}
			out := js(t, v)
			for _, secret := range []string{diagtest.Secret, "hunter2", "$2b$", "v0$$", "proxyuser", diagtest.LegacyRobotIdent} {
				if strings.Contains(out, secret) {
					t.Errorf("%q in %s", secret, out)
				}
			}
		})
	}
}
