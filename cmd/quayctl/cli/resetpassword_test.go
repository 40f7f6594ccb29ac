package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/dbtools/password"
	"github.com/quayctl/quayctl/registry/server"
	"github.com/quayctl/quayctl/registry/store"
)

// --- argv → options ------------------------------------------------------

func TestResetPasswordFlags(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		tty     bool
		want    func(*ResetPasswordOptions) bool
		code    int
		wantErr string
	}{
		{"direct with stdin", []string{"quayadmin", "--db", "postgresql://u:p@h/quay", "--password-stdin", "--yes", "-o", "json", "--via", "direct", "--print-hash", "--verify"}, false,
			func(o *ResetPasswordOptions) bool {
				return o.Username == "quayadmin" && o.Target.Kind == TargetDirect && o.Target.DBURI == "postgresql://u:p@h/quay" && o.PasswordStdin &&
					o.Yes && o.Output == "json" && o.Via == "direct" && o.PrintHash && o.Verify == verifyFromConfig && !o.Generate && !o.DryRun
			}, 0, ""},
		{"podman, prompt on a terminal", []string{"quayadmin", "--podman", "--verify=https://quay.example.com", "--verify-insecure"}, true,
			func(o *ResetPasswordOptions) bool {
				return o.Target.Kind == TargetPodman && o.Verify == "https://quay.example.com" && o.VerifyInsecure && !o.Yes
			}, 0, ""},
		{"openshift, generate", []string{"quayadmin", "--openshift", "-n", "quay", "--generate", "-y", "--via", "exec"}, false,
			func(o *ResetPasswordOptions) bool {
				return o.Target.Kind == TargetOpenShift && o.Target.Namespace == "quay" && o.Generate && o.Yes && o.Via == "exec"
			}, 0, ""},
		{"dry run needs no --yes", []string{"quayadmin", "--config", "/etc/quay/config.yaml", "--password-stdin", "--dry-run"}, false,
			func(o *ResetPasswordOptions) bool { return o.DryRun && o.Target.ConfigPath == "/etc/quay/config.yaml" }, 0, ""},
		{"no username", []string{"--db", "x"}, false, nil, ExitUsage, "takes 1 argument(s): USERNAME"},
		{"two usernames", []string{"a", "b", "--db", "x"}, false, nil, ExitUsage, "takes 1 argument(s)"},
		{"bad via", []string{"a", "--via", "ssh", "--generate", "--yes", "--db", "x"}, false, nil, ExitUsage, `--via "ssh" is not one of direct, sqlite, exec`},
		{"two sources", []string{"a", "--password-stdin", "--generate", "--db", "x"}, false, nil, ExitUsage, "exclude each other"},
		{"dry run and verify", []string{"a", "--generate", "--dry-run", "--verify=http://x", "--db", "x"}, false, nil, ExitUsage, "drop one of them"},
		{"verify URL after a space", []string{"a", "--generate", "--yes", "--db", "x", "--verify", "https://quay.example.com"}, false, nil, ExitUsage, "--verify=https://quay.example.com"},
		{"exec on a direct target", []string{"a", "--generate", "--yes", "--db", "x", "--via", "exec"}, false, nil, ExitUsage, "name the deployment with --podman or --openshift"},
		{"db with podman", []string{"a", "--generate", "--yes", "--db", "x", "--podman"}, false, nil, ExitUsage, "--config and --db describe a direct target"},
		{"no terminal, no source", []string{"a", "--db", "x", "--yes"}, false, nil, ExitError, "no new password: standard input is not a terminal, so quayctl cannot prompt — pipe it in with --password-stdin, or use --generate"},
		{"no terminal, no --yes", []string{"a", "--db", "x", "--password-stdin"}, false, nil, ExitError, "without confirmation: there is no terminal to ask on — check the user first with --dry-run, then add --yes"},
		{"bad output", []string{"a", "--db", "x", "--generate", "--yes", "-o", "xml"}, false, nil, ExitUsage, `--output "xml"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ios, _, errOut := testIO("")
			ios.InTTY = c.tty
			f := testFactory(ios, nil)
			var got *ResetPasswordOptions
			cmd := NewCmdResetPassword(f, func(o *ResetPasswordOptions) error { got = o; return nil })
			code := execute(context.Background(), withCmd(t, f, cmd), append([]string{"reset-password"}, c.args...), ios.ErrOut)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, errOut)
			}
			if c.want != nil && (got == nil || !c.want(got)) {
				t.Errorf("options: %+v", got)
			}
			if c.wantErr != "" && !strings.Contains(errOut.String(), c.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, c.wantErr)
			}
		})
	}
}

// --- runs against real databases -------------------------------------------

// rpDB is quayctl serve's embedded default database with accounts.
type rpDB struct {
	path, uri string
	st        *store.DB
	raw       *sql.DB
	ids       map[string]int64
}

func newRPDB(t *testing.T) *rpDB {
	t.Helper()
	dir := t.TempDir()
	d := &rpDB{path: filepath.Join(dir, "quay.db"), ids: map[string]int64{}}
	d.uri = "sqlite:///" + d.path
	ctx := context.Background()
	st, err := store.Open(ctx, d.uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	d.st = st
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: d.path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	d.raw = raw
	for _, a := range []struct {
		name, pw   string
		org, robot bool
		super      bool
	}{
		{"quayadmin", "old-password-1", false, false, true},
		{"alice", "old-password-2", false, false, false},
		{"devs", "", true, false, false},
		{"devs+ci", "", false, true, false},
	} {
		hash := ""
		if a.pw != "" {
			// Minimum cost: only the hashes reset-password writes need 12.
			h, err := bcrypt.GenerateFromPassword([]byte(a.pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			hash = string(h)
		}
		u, err := st.CreateUser(ctx, store.NewUser{Username: a.name, Email: a.name + "@example.com", PasswordHash: hash, Verified: true,
			Organization: a.org, Robot: a.robot, Superuser: a.super})
		if err != nil {
			t.Fatal(err)
		}
		d.ids[a.name] = u.ID
	}
	d.exec(t, `UPDATE "user" SET invalid_login_attempts = 4 WHERE username = 'quayadmin'`)
	return d
}

func (d *rpDB) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := d.raw.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

func (d *rpDB) hash(t *testing.T, name string) string {
	t.Helper()
	var h sql.NullString
	if err := d.raw.QueryRow(`SELECT password_hash FROM "user" WHERE id = ?`, d.ids[name]).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h.String
}

// snapshot is every row of user and logentry3 as text: byte-identical
// before and after anything refused.
func (d *rpDB) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id || '|' || username || '|' || COALESCE(password_hash, '-') || '|' || invalid_login_attempts FROM "user" ORDER BY id`,
		`SELECT id || '|' || kind_id || '|' || metadata_json FROM logentry3 ORDER BY id`,
	} {
		rows, err := d.raw.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		rows.Close()
	}
	return b.String()
}

func (d *rpDB) audits(t *testing.T, name string) int {
	t.Helper()
	var n int
	if err := d.raw.QueryRow(`SELECT count(*) FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id
		WHERE k.name = 'user_change_password' AND l.account_id = ? AND l.performer_id = ?`, d.ids[name], d.ids[name]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rpRun runs `quayctl reset-password args…` through the real command tree.
// prep may adjust the options after parsing (fakes, a terminal stub).
func rpRun(t *testing.T, stdin string, tty bool, prep func(*ResetPasswordOptions), args ...string) (int, string, string) {
	t.Helper()
	ios, out, errOut := testIO(stdin)
	ios.InTTY = tty
	f := testFactory(ios, nil)
	cmd := NewCmdResetPassword(f, func(o *ResetPasswordOptions) error {
		if prep != nil {
			prep(o)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return resetPasswordRun(ctx, o)
	})
	code := execute(context.Background(), withCmd(t, f, cmd), append([]string{"reset-password"}, args...), ios.ErrOut)
	return code, out.String(), errOut.String()
}

// terminal answers prompts: the hidden reads in order.
func terminal(lines ...string) func(*ResetPasswordOptions) {
	return func(o *ResetPasswordOptions) {
		i := 0
		o.ReadHidden = func() (string, error) {
			if i >= len(lines) {
				return "", io.EOF
			}
			i++
			return lines[i-1], nil
		}
	}
}

func checkReset(t *testing.T, d *rpDB, name, pw, old string) {
	t.Helper()
	h := d.hash(t, name)
	if !strings.HasPrefix(h, "$2b$12$") || !password.Matches(h, pw) || password.Matches(h, old) {
		t.Errorf("stored hash %q: new matches %v, old matches %v", h, password.Matches(h, pw), password.Matches(h, old))
	}
	var n int
	if err := d.raw.QueryRow(`SELECT invalid_login_attempts FROM "user" WHERE id = ?`, d.ids[name]).Scan(&n); err != nil || n != 0 {
		t.Errorf("invalid_login_attempts = %d, %v", n, err)
	}
	if got := d.audits(t, name); got != 1 {
		t.Errorf("audit rows = %d, want 1", got)
	}
}

func TestResetPasswordStdin(t *testing.T) {
	d := newRPDB(t)
	code, out, errOut := rpRun(t, "New-passw0rd;'\\\n", false, nil, "quayadmin", "--db", d.uri, "--password-stdin", "--yes")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkReset(t, d, "quayadmin", "New-passw0rd;'\\", "old-password-1")
	for _, s := range []string{"Password of quayadmin reset.", "Username:      quayadmin", "Email:         quayadmin@example.com",
		"Superuser:     yes (quayctl_superuser)", "Enabled:       yes", "Failed logins: 4", "Failed logins: reset to 0 (was 4)",
		"Audit:         logentry3, kind user_change_password", "sqlite:///" + d.path + " (sqlite)",
		"Warning: SUPER_USERS is unknown"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out+errOut, "New-passw0rd") || strings.Contains(out+errOut, "$2b$") {
		t.Errorf("the output shows the password or the hash:\n%s\n%s", out, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestResetPasswordGenerateJSON(t *testing.T) {
	d := newRPDB(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("DB_URI: "+d.uri+"\nSUPER_USERS: [alice]\nAUTHENTICATION_TYPE: Database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := rpRun(t, "", false, nil, "alice", "--config", cfg, "--generate", "--yes", "--print-hash", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Username          string            `json:"username"`
		User              password.UserInfo `json:"user"`
		Via               string            `json:"via"`
		Config            string            `json:"config"`
		SuperUsersKnown   bool              `json:"super_users_known"`
		Changed           bool              `json:"changed"`
		Change            password.Change   `json:"change"`
		PasswordHash      string            `json:"password_hash"`
		GeneratedPassword string            `json:"generated_password"`
		Warnings          []string          `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Username != "alice" || res.Via != "sqlite" || res.Config != cfg || !res.SuperUsersKnown || !res.Changed ||
		!res.User.Superuser || res.User.SuperuserSources[0] != "SUPER_USERS" || !res.Change.Audited || res.Change.RowsUpdated != 1 || len(res.Warnings) != 0 {
		t.Errorf("result: %+v", res)
	}
	if res.PasswordHash != d.hash(t, "alice") || len(res.GeneratedPassword) != password.GenerateLength {
		t.Errorf("hash %q (stored %q), generated %q", res.PasswordHash, d.hash(t, "alice"), res.GeneratedPassword)
	}
	checkReset(t, d, "alice", res.GeneratedPassword, "old-password-2")
	if strings.Count(out, res.GeneratedPassword) != 1 {
		t.Error("the generated password is not shown exactly once")
	}
}

func TestResetPasswordTerminal(t *testing.T) {
	t.Run("confirmed", func(t *testing.T) {
		d := newRPDB(t)
		code, out, errOut := rpRun(t, "y\n", true, terminal("Typed-passw0rd", "Typed-passw0rd"), "quayadmin", "--db", d.uri)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		checkReset(t, d, "quayadmin", "Typed-passw0rd", "old-password-1")
		for _, s := range []string{"The password of this account will be reset:\n  Username:      quayadmin\n", "New password for quayadmin: ",
			"Repeat the new password: ", `Reset the password of "quayadmin" in sqlite:///`} {
			if !strings.Contains(errOut, s) {
				t.Errorf("stderr lacks %q:\n%s", s, errOut)
			}
		}
		if !strings.Contains(out, "Password of quayadmin reset.") {
			t.Errorf("stdout: %s", out)
		}
	})
	t.Run("dry run prints the hash", func(t *testing.T) {
		d := newRPDB(t)
		before := d.snapshot(t)
		code, out, errOut := rpRun(t, "", true, terminal("Typed-passw0rd", "Typed-passw0rd"), "quayadmin", "--db", d.uri, "--dry-run", "--print-hash")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		m := regexp.MustCompile(`Hash:\s+(\$2b\$12\$\S{53})`).FindStringSubmatch(out)
		if m == nil || !password.Matches(m[1], "Typed-passw0rd") {
			t.Errorf("no usable hash in:\n%s", out)
		}
		if !strings.Contains(out, "Dry run: the password of quayadmin would be reset; nothing was changed.") || strings.Contains(errOut, "[y/N]") {
			t.Errorf("stdout %s\nstderr %s", out, errOut)
		}
		if d.snapshot(t) != before {
			t.Error("a dry run changed the database")
		}
	})
}

// TestResetPasswordRefusals: bad input leaves the database byte-identical
// and says what to do.
func TestResetPasswordRefusals(t *testing.T) {
	d := newRPDB(t)
	// A damaged database: duplicate usernames.
	d.exec(t, `DROP INDEX user_username`)
	d.exec(t, `INSERT INTO "user" (uuid, username, password_hash, email, verified, organization, robot, invoice_email, invalid_login_attempts,
		last_invalid_login, removed_tag_expiration_s, enabled) SELECT 'dup-uuid', username, password_hash, 'twin@example.com', verified, organization,
		robot, invoice_email, 0, last_invalid_login, removed_tag_expiration_s, enabled FROM "user" WHERE username = 'alice'`)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	before := d.snapshot(t)
	for _, c := range []struct {
		name  string
		stdin string
		tty   bool
		prep  func(*ResetPasswordOptions)
		args  []string
		want  []string
	}{
		{"unknown user", "New-passw0rd\n", false, nil, []string{"quayadmn", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{`no user "quayadmn" in the database — did you mean "quayadmin"?`, "(nothing was changed)"}},
		{"organization", "New-passw0rd\n", false, nil, []string{"devs", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{`"devs" is an organization`, "reset the password of one of its administrators instead"}},
		{"robot", "New-passw0rd\n", false, nil, []string{"devs+ci", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{`"devs+ci" is a robot account`, "regenerate its token"}},
		{"duplicate usernames", "New-passw0rd\n", false, nil, []string{"alice", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{`2 rows of the user table are named "alice"`, "repair the duplicates first"}},
		{"too short", "short7!\n", false, nil, []string{"quayadmin", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{"it is shorter than 8 characters", "--generate"}},
		{"whitespace", "has space inside\n", false, nil, []string{"quayadmin", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{"it contains whitespace"}},
		{"the username", "quayadmin\n", false, nil, []string{"quayadmin", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{"it is the username"}},
		{"empty stdin", "", false, nil, []string{"quayadmin", "--db", d.uri, "--password-stdin", "--yes"},
			[]string{"no password on standard input (it was empty)", "--password-stdin --yes"}},
		{"declined", "n\n", true, terminal("Typed-passw0rd", "Typed-passw0rd"), []string{"quayadmin", "--db", d.uri},
			[]string{"not confirmed: nothing was changed — answer y"}},
		{"no answer", "", true, terminal("Typed-passw0rd", "Typed-passw0rd"), []string{"quayadmin", "--db", d.uri},
			[]string{"not confirmed: nothing was changed"}},
		{"passwords differ", "y\n", true, terminal("Typed-passw0rd", "Typed-passw0rX"), []string{"quayadmin", "--db", d.uri},
			[]string{"the two passwords differ: nothing was changed"}},
		{"short typed", "y\n", true, terminal("short"), []string{"quayadmin", "--db", d.uri},
			[]string{"shorter than 8 characters", "(nothing was changed)"}},
		{"database unreachable", "New-passw0rd\n", false, nil, []string{"quayadmin", "--db", "postgresql://quayuser:S3cretDBpw@" + closed + "/quay?sslmode=disable", "--password-stdin", "--yes"},
			[]string{"cannot reach the registry's database: cannot connect to postgresql://quayuser:xxxxx@" + closed + "/quay", "connection refused", "is the database running"}},
		{"wrong sqlite path", "New-passw0rd\n", false, nil, []string{"quayadmin", "--db", "sqlite:////sqlite/quay_sqlite.db", "--password-stdin", "--yes"},
			[]string{"the file does not exist on this host", "podman volume inspect sqlite-storage"}},
		{"config without DB_URI", "New-passw0rd\n", false, nil, []string{"quayadmin", "--config", writeTemp(t, "SUPER_USERS: [quayadmin]\n"), "--password-stdin", "--yes"},
			[]string{"has no DB_URI — pass --db URI"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := rpRun(t, c.stdin, c.tty, c.prep, c.args...)
			if code != ExitError {
				t.Fatalf("exit %d, want 1; stdout %s stderr %s", code, out, errOut)
			}
			for _, s := range c.want {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if strings.Contains(errOut, "S3cretDBpw") || strings.Contains(errOut, "New-passw0rd") {
				t.Errorf("stderr shows a password: %s", errOut)
			}
			if after := d.snapshot(t); after != before {
				t.Fatalf("the database changed:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

// TestResetPasswordHashOnly: the manual fallback — with --dry-run
// --print-hash, an unreachable database still gives the hash to apply by
// hand, with the reason the account was not checked.
func TestResetPasswordHashOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	db := "postgresql://quayuser:S3cretDBpw@" + closed + "/quay?sslmode=disable"
	code, out, errOut := rpRun(t, "New-passw0rd\n", false, nil, "quayadmin", "--db", db, "--password-stdin", "--dry-run", "--print-hash")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`Hash:\s+(\$2b\$12\$\S{53})`).FindStringSubmatch(out)
	if m == nil || !password.Matches(m[1], "New-passw0rd") {
		t.Fatalf("no usable hash:\n%s", out)
	}
	for _, s := range []string{"Dry run: nothing was changed, and the account quayadmin was not checked.",
		"Warning: the account was not checked, because the database could not be reached", "connection refused", "docs/reset-password.md"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out+errOut, "S3cretDBpw") {
		t.Error("the output shows the database password")
	}
	// Without --print-hash the same run is an error.
	if code, _, _ := rpRun(t, "New-passw0rd\n", false, nil, "quayadmin", "--db", db, "--password-stdin", "--dry-run"); code != ExitError {
		t.Errorf("dry run against an unreachable database: exit %d, want 1", code)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResetPasswordVerify: --verify logs in to a running quayctl serve on
// the same database through the token flow; against a registry on another
// database the login fails, is reported exactly, and exits 1.
func TestResetPasswordVerify(t *testing.T) {
	d := newRPDB(t)
	addr := rpServe(t, d.uri)
	code, out, errOut := rpRun(t, "New-passw0rd\n", false, nil, "quayadmin", "--db", d.uri, "--password-stdin", "--yes", "--verify=http://"+addr)
	if code != 0 || !strings.Contains(out, "Login check at http://"+addr+": OK — logged in with the new password") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}

	// The URL from --url when --verify is bare.
	other := newRPDB(t)
	otherAddr := rpServe(t, other.uri)
	code, out, errOut = rpRun(t, "Second-passw0rd\n", false, nil, "quayadmin", "--db", d.uri, "--password-stdin", "--yes", "--verify", "--url", "http://"+otherAddr, "-o", "json")
	if code != ExitError {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Changed bool                  `json:"changed"`
		Verify  password.Verification `json:"verify"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Verify.OK || res.Verify.Status != 401 || res.Verify.Method != "token" || res.Verify.Service != otherAddr {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(errOut, "the password was reset, but logging in with it failed: the registry refused the new password (401: UNAUTHORIZED") {
		t.Errorf("stderr: %s", errOut)
	}
	checkPW := d.hash(t, "quayadmin")
	if !password.Matches(checkPW, "Second-passw0rd") {
		t.Error("the second reset did not store its password")
	}
}

func rpServe(t *testing.T, dbURI string) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Settings{
		DBURI:          dbURI,
		Locations:      map[string]server.Location{"default": {Driver: "LocalStorage", Params: map[string]any{"storage_path": filepath.Join(dir, "storage")}}},
		Preference:     []string{"default"},
		ServerHostname: addr,
		AuthType:       "Database",
		DiskPaths:      []string{dir},
	}, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv.SetSelfURL("http://" + addr)
	srv.Start(ctx)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
		cancel()
		_ = srv.Close()
	})
	return addr
}

// --- a deployment: config from the quay component, exec fallback ----------

// rpDeployment is a deployment whose quay component serves config.yaml and
// whose database component answers psql with canned lines, recording what
// it was sent.
type rpDeployment struct {
	kind   string
	config string // "" = ReadFile fails
	comps  []collectors.Component
	answer func(stdin string) (string, int)

	mu    sync.Mutex
	argv  [][]string
	stdin []string
}

func (d *rpDeployment) Kind() string { return d.kind }
func (d *rpDeployment) Name() string { return "unix:///run/podman/podman.sock" }
func (d *rpDeployment) Components(context.Context) ([]collectors.Component, error) {
	return d.comps, nil
}
func (d *rpDeployment) Logs(context.Context, string, collectors.LogOptions, io.Writer) error {
	return collectors.ErrNotSupported
}
func (d *rpDeployment) ReadFile(_ context.Context, component, path string) (io.ReadCloser, error) {
	if component != "quay" || path != "/conf/stack/config.yaml" || d.config == "" {
		return nil, fmt.Errorf("read %s in %s: %w", path, component, fs.ErrNotExist)
	}
	return io.NopCloser(strings.NewReader(d.config)), nil
}
func (d *rpDeployment) Stats(context.Context, string) (collectors.Stats, error) {
	return collectors.Stats{}, collectors.ErrNotSupported
}
func (d *rpDeployment) Exec(_ context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	b, _ := io.ReadAll(opts.Stdin)
	d.mu.Lock()
	d.argv = append(d.argv, argv)
	d.stdin = append(d.stdin, string(b))
	d.mu.Unlock()
	if component != "database" {
		return -1, errors.New("wrong component " + component)
	}
	out, code := d.answer(string(b))
	io.WriteString(opts.Stdout, out)
	return code, nil
}

func TestResetPasswordExecFallback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	const userRow = `{"row" : "user", "id" : 1, "username" : "quayadmin", "email" : "admin@example.com", "organization" : false, "robot" : false, "enabled" : true, "verified" : true, "invalid_login_attempts" : 3, "last_invalid_login" : "2024-03-01T11:00:00", "has_password" : true}` + "\n"
	dep := &rpDeployment{
		kind: "podman",
		// The config's DB_URI names a host this machine cannot reach.
		config: "DB_URI: postgresql://quayuser:S3cretDBpw@" + closed + "/quay?sslmode=disable\nSUPER_USERS: [quayadmin]\nSERVER_HOSTNAME: quay.example.com\n",
		comps: []collectors.Component{
			{Name: "database", Instance: "postgresql-quay", State: "running", Env: map[string]string{"POSTGRESQL_USER": "quayuser", "POSTGRESQL_DATABASE": "quay", "POSTGRESQL_PASSWORD": "REDACTED"}},
			{Name: "quay", Instance: "quay", State: "running"},
		},
		answer: func(stdin string) (string, int) {
			if strings.HasPrefix(stdin, `\set hash`) {
				return `{"row" : "result", "user_id" : 1, "rows" : 1, "audit" : 1}` + "\n", 0
			}
			return userRow, 0
		},
	}
	useDep := func(o *ResetPasswordOptions) {
		o.Deployment = func(context.Context) (collectors.Deployment, error) { return dep, nil }
	}
	code, out, errOut := rpRun(t, "New-passw0rd\n", false, useDep, "quayadmin", "--podman", "--password-stdin", "--yes")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "Note: direct did not work (cannot connect to postgresql://quayuser:xxxxx@"+closed+"/quay") || !strings.Contains(errOut, "using exec.") {
		t.Errorf("stderr: %s", errOut)
	}
	for _, s := range []string{"Superuser:     yes (SUPER_USERS)", "Failed logins: 3, the last at 2024-03-01 11:00:00 UTC",
		"psql in the database (postgresql-quay) component of podman deployment unix:///run/podman/podman.sock as quayuser on database quay (exec)",
		"Config:        podman (unix:///run/podman/podman.sock) quay component, /conf/stack/config.yaml"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out+errOut, "S3cretDBpw") {
		t.Error("the output shows the database password")
	}
	if len(dep.argv) != 2 || strings.Join(dep.argv[1], " ") != "psql -X -w -q -A -t -v ON_ERROR_STOP=1 -U quayuser -d quay -v username=quayadmin" {
		t.Errorf("exec argv: %q", dep.argv)
	}
	m := regexp.MustCompile(`^\\set hash '(\$2b\$12\$[./A-Za-z0-9]{53})'\n`).FindStringSubmatch(dep.stdin[1])
	if m == nil || !password.Matches(m[1], "New-passw0rd") || !strings.HasSuffix(dep.stdin[1], password.ApplyScript) {
		t.Errorf("exec stdin: %q", dep.stdin[1])
	}
	for _, s := range append(dep.stdin, strings.Join(dep.argv[0], " ")) {
		if strings.Contains(s, "New-passw0rd") {
			t.Error("the plain password was sent to the container")
		}
	}

	// Without the config file, exec still works from the component's
	// environment, and says SUPER_USERS is unknown.
	dep.config = ""
	code, out, errOut = rpRun(t, "New-passw0rd\n", false, useDep, "quayadmin", "--podman", "--password-stdin", "--yes")
	if code != 0 || !strings.Contains(out, "Warning: cannot read /conf/stack/config.yaml from the quay component") || !strings.Contains(out, "Superuser:     no (SUPER_USERS unknown)") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}

	// A deployment that cannot be reached.
	code, _, errOut = rpRun(t, "New-passw0rd\n", false, func(o *ResetPasswordOptions) {
		o.Deployment = func(context.Context) (collectors.Deployment, error) {
			return nil, &UserError{Msg: "cannot reach the podman deployment", Err: errors.New("connection refused")}
		}
	}, "quayadmin", "--podman", "--password-stdin", "--yes")
	if code != ExitError || !strings.Contains(errOut, "cannot reach the podman deployment") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
