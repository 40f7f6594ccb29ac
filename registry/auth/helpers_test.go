package auth

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/quayctl/quayctl/registry/encfield"
	"github.com/quayctl/quayctl/registry/store"
)

const testHost = "registry.test:5443"

// clock is a settable clock shared by the authenticators of a test. It starts
// at the real time because the store checks key expiry against its own clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a migrated SQLite store with a few accounts and repositories.
type fixture struct {
	t     testing.TB
	st    store.Store
	raw   *sql.DB // test-only writes the Store interface does not offer
	clock *clock
	users map[string]*store.User
	repos map[string]*store.Repository
}

// Passwords of the fixture accounts.
var testPasswords = map[string]string{
	"alice": "alice-secret-1",
	"bob":   "bob-secret-1",
	"carol": "carol-secret-1",
	"root":  "root-secret-1",
	"acme":  "acme-secret-1", // an organisation with a password hash, to prove the flag is checked
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite:///"+dir+"/q.db")
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	raw, err := sql.Open("sqlite", dir+"/q.db?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open raw: %v", err)
	}
	t.Cleanup(func() { _ = raw.Close() })

	f := &fixture{t: t, st: st, raw: raw, clock: newClock(),
		users: map[string]*store.User{}, repos: map[string]*store.Repository{}}

	for _, u := range []store.NewUser{
		{Username: "alice", Email: "alice@example.com", Verified: true},
		{Username: "bob", Email: "bob@example.com"},
		{Username: "carol", Email: "carol@example.com"},
		{Username: "root", Email: "root@example.com"},
		{Username: "acme", Organization: true},
		{Username: "alice+bot", Robot: true},
	} {
		if pw, ok := testPasswords[u.Username]; ok {
			// Minimum cost keeps the fixture fast; comparison reads the cost from the hash.
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			u.PasswordHash = string(h)
		}
		created, err := st.CreateUser(ctx, u)
		if err != nil {
			t.Fatalf("create user %s: %v", u.Username, err)
		}
		f.users[u.Username] = created
	}
	f.exec(`UPDATE "user" SET enabled = ? WHERE username = ?`, false, "carol")

	for _, r := range []struct {
		ns, name string
		public   bool
		state    int
	}{
		{"alice", "private", false, store.RepoStateNormal},
		{"alice", "public", true, store.RepoStateNormal},
		{"alice", "readonly", false, store.RepoStateReadOnly},
		{"alice", "mirror", false, store.RepoStateMirror},
		{"alice", "nested/deep", false, store.RepoStateNormal},
		{"acme", "shared", false, store.RepoStateNormal},
	} {
		ns := f.users[r.ns]
		repo, err := st.CreateRepository(ctx, ns.ID, r.name, r.public, ns.ID)
		if err != nil {
			t.Fatalf("create repository %s/%s: %v", r.ns, r.name, err)
		}
		if r.state != store.RepoStateNormal {
			f.exec(`UPDATE repository SET state = ? WHERE id = ?`, r.state, repo.ID)
			repo.State = r.state
		}
		f.repos[r.ns+"/"+r.name] = repo
	}
	f.grant("bob", "alice/private", store.RoleRead)
	f.grant("bob", "acme/shared", store.RoleWrite)
	f.grant("bob", "alice/readonly", store.RoleWrite)
	return f
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.raw.Exec(q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) grant(user, repo string, role store.Role) {
	f.t.Helper()
	f.exec(`INSERT INTO repositorypermission (user_id, repository_id, role_id) VALUES (?, ?, (SELECT id FROM role WHERE name = ?))`,
		f.users[user].ID, f.repos[repo].ID, string(role))
}

// auth builds an Authenticator over the fixture's store; edit adjusts options.
func (f *fixture) auth(edit ...func(*Options)) *Authenticator {
	f.t.Helper()
	opts := Options{
		ServerHostname:          testHost,
		SuperUsers:              []string{"root"},
		AnonymousAccess:         true,
		CreatePrivateRepoOnPush: true,
		Now:                     f.clock.Now,
		EncryptionKey:           testEncryptionKey(f.t),
	}
	for _, e := range edit {
		e(&opts)
	}
	return New(f.st, opts)
}

// countCompares replaces bcrypt's comparison with a counting wrapper.
func countCompares(a *Authenticator) *atomic.Int64 {
	var n atomic.Int64
	a.compare = func(hash, pw []byte) error {
		n.Add(1)
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
	return &n
}

func (f *fixture) principal(a *Authenticator, name string) *Principal {
	if name == "" {
		return Anonymous()
	}
	u, err := f.st.UserByName(context.Background(), name)
	if err != nil {
		f.t.Fatalf("user %s: %v", name, err)
	}
	return a.principalFor(u)
}

// testEncryptionKey is the key of a fixed test DATABASE_SECRET_KEY.
func testEncryptionKey(t testing.TB) []byte {
	k, err := encfield.DeriveKey("quayctl-test-database-secret-key")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
