package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/auth"
	"github.com/quayctl/quayctl/registry/store"
)

// openTestStore opens the embedded default's database in dir.
func openTestStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:///"+dir+"/quay.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// dbSnapshot is what a failed user create must leave untouched.
type dbSnapshot struct {
	Users      int64
	Superusers []string
	Logs       int
	Hashes     map[string]string // username → password_hash of known users
}

func snapshot(t *testing.T, dir string, names ...string) dbSnapshot {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t, dir)
	defer st.Close()
	var s dbSnapshot
	var err error
	if s.Users, err = st.CountUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Superusers, err = st.Superusers(ctx); err != nil {
		t.Fatal(err)
	}
	logs, err := st.Logs(ctx, store.LogQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s.Logs = len(logs)
	s.Hashes = map[string]string{}
	for _, n := range names {
		u, err := st.UserByName(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		s.Hashes[n] = u.PasswordHash
	}
	return s
}

func TestUserCreate(t *testing.T) {
	needEmbeddedDefault(t)
	heavy(t)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		password   string
		wantStdout string // exact; empty means compare with golden
		golden     string
		email      string
		superuser  bool
	}{
		{name: "table superuser", args: []string{"alice", "--email", "alice@example.com", "--superuser"}, stdin: "s3cret-pass\n", password: "s3cret-pass",
			wantStdout: "Created user alice (superuser) in the sqlite database.\n", email: "alice@example.com", superuser: true},
		{name: "table plain user, CRLF and no email", args: []string{"bob"}, stdin: "an0ther-pass\r\n", password: "an0ther-pass",
			wantStdout: "Created user bob in the sqlite database.\n"},
		{name: "no trailing newline", args: []string{"carol.ops"}, stdin: "n0-newline!", password: "n0-newline!",
			wantStdout: "Created user carol.ops in the sqlite database.\n"},
		{name: "json", args: []string{"alice", "--email", "alice@example.com", "--superuser", "-o", "json"}, stdin: "s3cret-pass\n", password: "s3cret-pass",
			golden: "user_create.json.golden", email: "alice@example.com", superuser: true},
		{name: "yaml", args: []string{"alice", "--email", "alice@example.com", "--superuser", "-o", "yaml"}, stdin: "s3cret-pass\n", password: "s3cret-pass",
			golden: "user_create.yaml.golden", email: "alice@example.com", superuser: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := append([]string{"user", "create", "--password-stdin", "--data-dir", dir}, tt.args...)
			code, stdout, stderr := run(t, context.Background(), nil, tt.stdin, args...)
			if code != ExitOK {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, stdout)
			} else if stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			// Logs go to the command's stderr, not the process's; a fresh
			// database shows its migrations there.
			if !strings.Contains(stderr, "applied database migration") {
				t.Errorf("stderr lacks the migration log:\n%s", stderr)
			}
			if strings.Contains(stderr+stdout, tt.password) {
				t.Error("the password was printed")
			}

			ctx := context.Background()
			st := openTestStore(t, dir)
			name := args[5]
			u, err := st.UserByName(ctx, name)
			if err != nil {
				t.Fatalf("user %s not in the database: %v", name, err)
			}
			if !strings.HasPrefix(u.PasswordHash, "$2a$12$") && !strings.HasPrefix(u.PasswordHash, "$2b$12$") {
				t.Errorf("password_hash = %q, want bcrypt cost 12", u.PasswordHash)
			}
			if !auth.ComparePassword(u.PasswordHash, tt.password) {
				t.Error("password_hash does not verify the password")
			}
			if auth.ComparePassword(u.PasswordHash, tt.stdin) && tt.stdin != tt.password {
				t.Error("the line ending was hashed with the password")
			}
			if !u.Verified || !u.Enabled || u.Organization || u.Robot {
				t.Errorf("user row = %+v, want a verified, enabled person", u)
			}
			if tt.email != "" && u.Email != tt.email {
				t.Errorf("email = %q, want %q", u.Email, tt.email)
			}
			sus, err := st.Superusers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(sus, name); got != tt.superuser {
				t.Errorf("superusers = %v; %s in it = %v, want %v", sus, name, got, tt.superuser)
			}
			logs, err := st.Logs(ctx, store.LogQuery{AccountID: u.ID, Kind: "user_create"})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != 1 {
				t.Errorf("user_create audit rows = %d, want 1", len(logs))
			}
		})
	}
}

// TestUserCreateNewDataDir: like serve, user create on a fresh machine
// creates the embedded default's data directory.
func TestUserCreateNewDataDir(t *testing.T) {
	needEmbeddedDefault(t)
	heavy(t)
	dir := filepath.Join(t.TempDir(), "quay-data")
	code, stdout, stderr := run(t, context.Background(), nil, "s3cret-pass\n", "user", "create", "alice", "--password-stdin", "--data-dir", dir)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	if stdout != "Created user alice in the sqlite database.\n" {
		t.Errorf("stdout = %q", stdout)
	}
	if _, err := openTestStore(t, dir).UserByName(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestUserCreateBadInput(t *testing.T) {
	needEmbeddedDefault(t)
	const existing = "alice"
	tests := []struct {
		name     string
		existing bool // alice (alice@example.com) exists before
		args     []string
		stdin    string
		wantErr  []string // substrings of stderr
	}{
		{name: "empty stdin", args: []string{"bob"}, stdin: "",
			wantErr: []string{"Error: no password on standard input", "echo -n PASSWORD | quayctl user create NAME --password-stdin"}},
		{name: "empty line", args: []string{"bob"}, stdin: "\n", wantErr: []string{"no password on standard input"}},
		{name: "short password", args: []string{"bob"}, stdin: "short7!\n",
			wantErr: []string{"the password is not acceptable", "must be at least 8 characters long"}},
		{name: "password with a space", args: []string{"bob"}, stdin: "has a space\n",
			wantErr: []string{"the password is not acceptable", "must not contain whitespace"}},
		{name: "password with a tab", args: []string{"bob"}, stdin: "tab\tinside-it\n", wantErr: []string{"must not contain whitespace"}},
		{name: "password only on the second line", args: []string{"bob"}, stdin: "\ns3cret-pass\n", wantErr: []string{"no password on standard input"}},
		{name: "password equals username", args: []string{"bob-the-builder"}, stdin: "bob-the-builder\n", wantErr: []string{"must differ from the username"}},
		{name: "password over 72 bytes", args: []string{"bob"}, stdin: strings.Repeat("x", 73) + "\n",
			wantErr: []string{"the password is not acceptable", "72 bytes"}},
		{name: "invalid username", args: []string{"Bad_Name!"}, stdin: "s3cret-pass\n",
			wantErr: []string{`invalid username "Bad_Name!"`, "lowercase letters, digits"}},
		{name: "one-letter username", args: []string{"b"}, stdin: "s3cret-pass\n", wantErr: []string{`invalid username "b"`, "2 to 255 characters"}},
		{name: "invalid email", args: []string{"bob", "--email", "not-an-address"}, stdin: "s3cret-pass\n",
			wantErr: []string{`invalid e-mail address "not-an-address"`}},
		{name: "duplicate user", existing: true, args: []string{existing}, stdin: "other-pass-1\n",
			wantErr: []string{"Error: user alice already exists", "quayctl reset-password"}},
		{name: "duplicate user as superuser", existing: true, args: []string{existing, "--superuser", "--email", "new@example.com"}, stdin: "other-pass-1\n",
			wantErr: []string{"user alice already exists"}},
		{name: "email of another user", existing: true, args: []string{"bob", "--email", "alice@example.com", "--superuser"}, stdin: "s3cret-pass\n",
			wantErr: []string{"the e-mail address alice@example.com is already used by another user"}},
		{name: "bad username on an existing database", existing: true, args: []string{"Alice"}, stdin: "s3cret-pass\n",
			wantErr: []string{`invalid username "Alice"`}},
	}
	// One database with alice (alice@example.com), copied for each case.
	var template string
	if !testing.Short() {
		template = t.TempDir()
		code, _, stderr := run(t, context.Background(), nil, "alice-pass-1\n", "user", "create", existing, "--password-stdin", "--email", "alice@example.com", "--data-dir", template)
		if code != ExitOK {
			t.Fatalf("setup: exit code %d: %s", code, stderr)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.existing {
				heavy(t)
			}
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			var before dbSnapshot
			if tt.existing {
				copyDB(t, template, dir)
				before = snapshot(t, dir, existing)
			}
			args := append([]string{"user", "create", "--password-stdin", "--data-dir", dir}, tt.args...)
			code, stdout, stderr := run(t, ctx, nil, tt.stdin, args...)
			if code != ExitError {
				t.Errorf("exit code = %d, want %d", code, ExitError)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "Run 'quayctl --help'") {
				t.Errorf("a user error printed the usage hint:\n%s", stderr)
			}
			if !tt.existing {
				// Input is checked before the database is opened.
				if _, err := os.Stat(filepath.Join(dir, "quay.db")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("quay.db was created (stat: %v)", err)
				}
				return
			}
			after := snapshot(t, dir, existing)
			if !equalSnapshots(before, after) {
				t.Errorf("database changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if !auth.ComparePassword(after.Hashes[existing], "alice-pass-1") {
				t.Error("alice's password changed")
			}
		})
	}
}

func equalSnapshots(a, b dbSnapshot) bool {
	if a.Users != b.Users || a.Logs != b.Logs || !slices.Equal(a.Superusers, b.Superusers) || len(a.Hashes) != len(b.Hashes) {
		return false
	}
	for k, v := range a.Hashes {
		if b.Hashes[k] != v {
			return false
		}
	}
	return true
}
