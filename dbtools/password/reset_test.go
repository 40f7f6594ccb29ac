package password_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/dbtools/password"
)

// way opens a Target on a fixture one way.
type way struct {
	name string
	open func(t *testing.T, f *fixture) password.Target
}

func openVia(via string) func(t *testing.T, f *fixture) password.Target {
	return func(t *testing.T, f *fixture) password.Target {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tg, failed, err := password.Open(ctx, password.OpenOptions{Via: via, DBURI: f.uri})
		if err != nil {
			t.Fatalf("open %s via %s: %v", f.name, via, err)
		}
		if len(failed) != 0 || tg.Via() != via {
			t.Fatalf("open via %s: got %s after %v", via, tg.Via(), failed)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	}
}

// cases is every fixture with the ways that reach it. exec (psql in a
// podman container playing postgresql-quay) needs podman; it skips without.
func cases() []struct {
	name    string
	fixture func(testing.TB) *fixture
	ways    []way
} {
	direct := way{password.ViaDirect, openVia(password.ViaDirect)}
	sqlite := way{password.ViaSQLite, openVia(password.ViaSQLite)}
	execPodman := way{"exec-podman", openExecPodman}
	execOpenShift := way{"exec-openshift-fake", openExecOpenShiftFake}
	return []struct {
		name    string
		fixture func(testing.TB) *fixture
		ways    []way
	}{
		{"quay-schema-postgresql", quayPG, []way{direct, execPodman, execOpenShift}},
		{"serve-postgresql", servePG, []way{direct, execPodman, execOpenShift}},
		{"quay-schema-sqlite", quaySQLite, []way{sqlite}},
		{"serve-sqlite", serveSQLite, []way{sqlite}},
	}
}

func quiet(f *fixture) *fixture {
	if f.serve != nil {
		f.serve.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	return f
}

// forEach runs fn for every fixture and way.
func forEach(t *testing.T, fn func(t *testing.T, f *fixture, w way)) {
	for _, c := range cases() {
		for _, w := range c.ways {
			probe := c.fixture
			t.Run(c.name+"_via_"+w.name, func(t *testing.T) {
				f := quiet(probe(t))
				fn(t, f, w)
			})
		}
	}
}

// Nasty values: quotes, backslashes, semicolons, psql variable syntax,
// SQL comments. Quay's own usernames cannot hold these, but a damaged or
// hand-edited database can, and none of it may reach SQL as syntax.
const (
	nastyUser     = `o'brien"; DROP TABLE "user"; --:'x' :"y" :z \\ back\slash $1 ?`
	nastyPassword = `p@ss'w"o;rd\\:'x':"y"$$--;\`
)

func TestReset(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture, w way) {
		ctx := context.Background()
		const oldPW, newPW = "old-password-1", "New-passw0rd!"
		id := f.addUser(t, account{Username: "quayadmin", Email: "admin@example.com", Password: oldPW, InvalidLoginAttempts: 5})
		other := f.addUser(t, account{Username: "someone", Password: "another-password"})
		before := f.user(t, other)
		tg := w.open(t, f)

		u, err := password.Lookup(ctx, tg, "quayadmin", []string{"quayadmin"})
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if u.ID != id || u.Username != "quayadmin" || u.Email != "admin@example.com" || !u.Enabled || !u.Verified ||
			u.InvalidLoginAttempts != 5 || u.LastInvalidLogin == nil || !u.HasPassword || !u.Superuser || u.Organization || u.Robot {
			t.Errorf("Lookup = %+v", u)
		}
		if got := u.SuperuserSources; len(got) != 1 || got[0] != "SUPER_USERS" {
			t.Errorf("superuser sources = %v, want [SUPER_USERS]", got)
		}
		if age := time.Since(*u.LastInvalidLogin); age < 50*time.Minute || age > 70*time.Minute {
			t.Errorf("last_invalid_login %v is %v ago, want about an hour", u.LastInvalidLogin, age)
		}

		hash, err := password.Hash(newPW)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := tg.Apply(ctx, "quayadmin", hash)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if ch.UserID != id || ch.RowsUpdated != 1 || !ch.Audited || ch.AuditSkipped != "" {
			t.Errorf("Apply = %+v", ch)
		}
		r := f.user(t, id)
		checkHash(t, r.Hash.String, newPW, oldPW)
		if r.Attempts != 0 {
			t.Errorf("invalid_login_attempts = %d, want 0", r.Attempts)
		}
		if got := f.user(t, other); got != before {
			t.Errorf("another account changed: %+v → %+v", before, got)
		}
		checkAudit(t, f, id, "quayadmin", 1)
	})
}

// checkHash asserts a stored hash is Quay's bcrypt at cost 12 of pw and no
// longer of old.
func checkHash(t *testing.T, h, pw, old string) {
	t.Helper()
	if !strings.HasPrefix(h, "$2b$12$") {
		t.Errorf("stored hash %q does not start with $2b$12$", h)
	}
	if c, err := password.HashCost(h); err != nil || c != 12 {
		t.Errorf("bcrypt cost = %d, %v; want 12", c, err)
	}
	if !password.Matches(h, pw) {
		t.Errorf("the stored hash does not verify the new password")
	}
	if old != "" && password.Matches(h, old) {
		t.Errorf("the old password still matches")
	}
}

func checkAudit(t *testing.T, f *fixture, id int64, username string, want int) {
	t.Helper()
	if n := f.auditCount(t, id); n != want {
		t.Fatalf("audit rows for account %d = %d, want %d", id, n, want)
	}
	for _, m := range f.auditMetadata(t, id) {
		var meta map[string]string
		if err := json.Unmarshal([]byte(m), &meta); err != nil {
			t.Fatalf("metadata_json %q: %v", m, err)
		}
		if meta["username"] != username || meta["source"] != "quayctl reset-password" || len(meta) != 2 {
			t.Errorf("metadata_json = %q, want username %q and source", m, username)
		}
	}
}

func TestNastyValuesRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture, w way) {
		ctx := context.Background()
		id := f.addUser(t, account{Username: nastyUser, Password: "old-password-1"})
		// A user whose name is the SQL an injection would match on.
		decoy := f.addUser(t, account{Username: "o", Password: "decoy-password"})
		decoyBefore := f.user(t, decoy)
		if err := password.Validate(nastyUser, nastyPassword); err != nil {
			t.Fatalf("the test password is refused: %v", err)
		}
		tg := w.open(t, f)
		u, err := password.Lookup(ctx, tg, nastyUser, nil)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if u.Username != nastyUser || u.ID != id {
			t.Fatalf("Lookup = %q (id %d), want %q (id %d)", u.Username, u.ID, nastyUser, id)
		}
		hash, err := password.Hash(nastyPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tg.Apply(ctx, nastyUser, hash); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		checkHash(t, f.user(t, id).Hash.String, nastyPassword, "old-password-1")
		var name string
		if err := f.db.QueryRow(f.q(`SELECT username FROM "user" WHERE id = ?`), id).Scan(&name); err != nil || name != nastyUser {
			t.Errorf("username now %q, %v; want it unchanged", name, err)
		}
		if got := f.user(t, decoy); got != decoyBefore {
			t.Errorf("the decoy account changed")
		}
		checkAudit(t, f, id, nastyUser, 1)
	})
}

func TestSuperuserFromQuayctlTable(t *testing.T) {
	for _, mk := range []func(testing.TB) *fixture{servePG, serveSQLite} {
		f := quiet(mk(t))
		f.addUser(t, account{Username: "root", Password: "old-password-1", Superuser: true})
		f.addUser(t, account{Username: "plain", Password: "old-password-1"})
		via := password.ViaDirect
		if !f.pg {
			via = password.ViaSQLite
		}
		tg := openVia(via)(t, f)
		u, err := password.Lookup(context.Background(), tg, "root", []string{"root"})
		if err != nil {
			t.Fatal(err)
		}
		if !u.Superuser || strings.Join(u.SuperuserSources, ",") != "SUPER_USERS,quayctl_superuser" {
			t.Errorf("%s: root: superuser %v from %v", f.name, u.Superuser, u.SuperuserSources)
		}
		u, err = password.Lookup(context.Background(), tg, "plain", []string{"root"})
		if err != nil || u.Superuser {
			t.Errorf("%s: plain: superuser %v, %v", f.name, u.Superuser, err)
		}
	}
}

// TestRefusals: every refused reset leaves the database byte-identical and
// says what to do.
func TestRefusals(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture, w way) {
		ctx := context.Background()
		f.addUser(t, account{Username: "alice", Password: "old-password-1"})
		f.addUser(t, account{Username: "alicia", Password: "old-password-2"})
		f.addUser(t, account{Username: "bob", Password: "old-password-3"})
		f.addUser(t, account{Username: "alice-org", Org: true})
		f.addUser(t, account{Username: "alice-org+builder", Robot: true})
		// Damage the database: drop the unique index, add a second "twin".
		f.addUser(t, account{Username: "twin", Password: "old-password-4"})
		f.exec(t, `DROP INDEX user_username`)
		f.serve = nil // the store would refuse the duplicate; write it by hand
		f.addUser(t, account{Username: "twin", Password: "old-password-5"})

		tg := w.open(t, f)
		hash, err := password.Hash("New-passw0rd!")
		if err != nil {
			t.Fatal(err)
		}
		before := f.snapshot(t)
		for _, c := range []struct {
			name     string
			username string
			check    func(error) bool
			want     []string
		}{
			{"unknown user", "alcie", func(err error) bool {
				var nf *password.NotFoundError
				return errors.As(err, &nf) && strings.Join(nf.Suggestions, ",") == "alice,alicia"
			}, []string{`no user "alcie"`, `did you mean "alice", "alicia"?`}},
			{"unknown user without neighbours", "zzzzzzzz", func(err error) bool {
				var nf *password.NotFoundError
				return errors.As(err, &nf) && len(nf.Suggestions) == 0
			}, []string{"check the spelling"}},
			{"organization", "alice-org", func(err error) bool {
				var np *password.NotAPersonError
				return errors.As(err, &np) && np.Kind == "organization"
			}, []string{"is an organization", "administrators instead"}},
			{"robot", "alice-org+builder", func(err error) bool {
				var np *password.NotAPersonError
				return errors.As(err, &np) && np.Kind == "robot"
			}, []string{"is a robot account", "regenerate its token"}},
			{"duplicate rows", "twin", func(err error) bool {
				var de *password.DuplicateError
				return errors.As(err, &de) && de.Rows == 2 && len(de.IDs) == 2
			}, []string{`2 rows of the user table are named "twin"`, "repair the duplicates first"}},
		} {
			_, lookErr := password.Lookup(ctx, tg, c.username, nil)
			// Apply is guarded by itself too: called without a look-up, it
			// must refuse and roll back.
			_, applyErr := tg.Apply(ctx, c.username, hash)
			for what, err := range map[string]error{"Lookup": lookErr, "Apply": applyErr} {
				if err == nil || !c.check(err) {
					t.Errorf("%s: %s error = %v (%T)", c.name, what, err, err)
					continue
				}
				for _, s := range c.want {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: %s error %q lacks %q", c.name, what, err, s)
					}
				}
			}
			if after := f.snapshot(t); after != before {
				t.Fatalf("%s changed the database:\nbefore:\n%s\nafter:\n%s", c.name, before, after)
			}
		}
		// A hash that is not bcrypt never reaches the database.
		if _, err := tg.Apply(ctx, "alice", "'; DROP TABLE \"user\"; --"); err == nil || !strings.Contains(err.Error(), "not a bcrypt hash") {
			t.Errorf("Apply with a non-hash = %v", err)
		}
		if after := f.snapshot(t); after != before {
			t.Fatalf("a non-hash changed the database")
		}
	})
}

// TestAuditSkipped: without the kind or the table the change is still made,
// and says why no audit row was written.
func TestAuditSkipped(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture, w way) {
		ctx := context.Background()
		id := f.addUser(t, account{Username: "alice", Password: "old-password-1"})
		tg := w.open(t, f)
		hash, _ := password.Hash("New-passw0rd!")

		f.exec(t, `DELETE FROM logentrykind WHERE name = 'user_change_password'`)
		ch, err := tg.Apply(ctx, "alice", hash)
		if err != nil || ch.Audited || ch.AuditSkipped != "logentrykind has no user_change_password" {
			t.Errorf("without the kind: %+v, %v", ch, err)
		}
		checkHash(t, f.user(t, id).Hash.String, "New-passw0rd!", "old-password-1")

		f.exec(t, `DROP TABLE logentry3`)
		hash2, _ := password.Hash("Second-passw0rd")
		ch, err = tg.Apply(ctx, "alice", hash2)
		if err != nil || ch.Audited || ch.AuditSkipped != "the database has no logentry3 table" {
			t.Errorf("without logentry3: %+v, %v", ch, err)
		}
		checkHash(t, f.user(t, id).Hash.String, "Second-passw0rd", "New-passw0rd!")
	})
}

// TestNotQuayDatabase: an empty database is not mistaken for Quay's.
func TestNotQuayDatabase(t *testing.T) {
	f := quayPG(t)
	f.exec(t, `DROP TABLE "user" CASCADE`)
	tg := openVia(password.ViaDirect)(t, f)
	_, err := tg.Lookup(context.Background(), "alice")
	var nq *password.NotQuayError
	if !errors.As(err, &nq) || !strings.Contains(err.Error(), "not a Quay database") {
		t.Errorf("Lookup on a database without a user table = %v", err)
	}
}
