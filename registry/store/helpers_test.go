package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// backend opens a fresh, migrated database of one dialect for a test.
type backend struct {
	name string
	uri  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string {
		return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") // four slashes: absolute
	}},
	{"postgresql", func(t *testing.T) string { return testpg.NewDatabase(t) }},
}

// forEachBackend runs fn as a subtest per dialect.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

func openURI(t *testing.T, uri string) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, uri)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openMigrated(t *testing.T, b backend) *DB {
	t.Helper()
	db := openURI(t, b.uri(t))
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// clock is a settable time source for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

// freezeClock makes db's clock stand still (at a whole millisecond) until
// advanced.
func freezeClock(db *DB) *clock {
	c := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	db.now = c.Now
	return c
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func mustExec(t *testing.T, db *DB, q string, args ...any) {
	t.Helper()
	if _, err := db.exec(context.Background(), db.w, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.queryRow(context.Background(), db.r, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func mustUser(t *testing.T, db *DB, name string, org bool) *User {
	t.Helper()
	u, err := db.CreateUser(context.Background(), NewUser{Username: name, Organization: org,
		Email: map[bool]string{false: name + "@example.com", true: ""}[org]})
	if err != nil {
		t.Fatalf("CreateUser %s: %v", name, err)
	}
	return u
}

func mustRepo(t *testing.T, db *DB, ns *User, name string, public bool) *Repository {
	t.Helper()
	r, err := db.CreateRepository(context.Background(), ns.ID, name, public, ns.ID)
	if err != nil {
		t.Fatalf("CreateRepository %s/%s: %v", ns.Username, name, err)
	}
	return r
}

// mustTeam creates a team of org with a teamrole and members.
func mustTeam(t *testing.T, db *DB, org *User, name, teamRole string, members ...*User) int64 {
	t.Helper()
	var id int64
	if err := db.queryRow(context.Background(), db.w, `INSERT INTO team (name, organization_id, role_id, description)
		VALUES (?, ?, (SELECT id FROM teamrole WHERE name = ?), '') RETURNING id`, name, org.ID, teamRole).Scan(&id); err != nil {
		t.Fatalf("create team %s: %v", name, err)
	}
	for _, m := range members {
		mustExec(t, db, `INSERT INTO teammember (user_id, team_id) VALUES (?, ?)`, m.ID, id)
	}
	return id
}

func grantUser(t *testing.T, db *DB, u *User, r *Repository, role Role) {
	t.Helper()
	mustExec(t, db, `INSERT INTO repositorypermission (user_id, repository_id, role_id)
		VALUES (?, ?, (SELECT id FROM role WHERE name = ?))`, u.ID, r.ID, string(role))
}

func grantTeam(t *testing.T, db *DB, teamID int64, r *Repository, role Role) {
	t.Helper()
	mustExec(t, db, `INSERT INTO repositorypermission (team_id, repository_id, role_id)
		VALUES (?, ?, (SELECT id FROM role WHERE name = ?))`, teamID, r.ID, string(role))
}

// mustBlob links content to a repository and returns its digest.
func mustBlob(t *testing.T, db *DB, repoID int64, content string) string {
	t.Helper()
	d := digestOf(content)
	if _, err := db.LinkBlob(context.Background(), repoID, d, int64(len(content)), "local_us", time.Hour); err != nil {
		t.Fatalf("LinkBlob: %v", err)
	}
	return d
}

const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
)

// image pushes a config and a layer blob and returns params for a manifest
// referencing them; seed makes contents distinct.
func image(t *testing.T, db *DB, repoID int64, seed, tag string) PutManifestParams {
	t.Helper()
	cfg := mustBlob(t, db, repoID, "config "+seed)
	layer := mustBlob(t, db, repoID, "layer "+seed)
	body := `{"schemaVersion":2,"mediaType":"` + mtOCIManifest + `","config":{"digest":"` + cfg + `"},"layers":[{"digest":"` + layer + `"}],"seed":"` + seed + `"}`
	return PutManifestParams{
		RepositoryID: repoID,
		Manifest: Manifest{Digest: digestOf(body), MediaType: mtOCIManifest, Bytes: []byte(body),
			ConfigMediaType: "application/vnd.oci.image.config.v1+json", LayersSize: 42},
		BlobDigests: []string{cfg, layer},
		Tag:         tag,
		TempTagTTL:  time.Hour,
	}
}

func mustPut(t *testing.T, db *DB, p PutManifestParams) *Manifest {
	t.Helper()
	m, err := db.PutManifest(context.Background(), p)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	return m
}
