package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// suite is the store contract; TestStore runs every case on SQLite and on
// PostgreSQL, each on a fresh migrated database.
var suite = []struct {
	name string
	fn   func(t *testing.T, db *DB)
}{
	{"MigrateTwice", testMigrateTwice},
	{"Users", testUsers},
	{"Superusers", testSuperusers},
	{"RepositoriesAndRoles", testRepositoriesAndRoles},
	{"VisibleRepositories", testVisibleRepositories},
	{"Blobs", testBlobs},
	{"ConcurrentLinkBlob", testConcurrentLinkBlob},
	{"Uploads", testUploads},
	{"PutManifest", testPutManifest},
	{"TagHistory", testTagHistory},
	{"SameMillisecondTagChurn", testSameMillisecondTagChurn},
	{"ListTags", testListTags},
	{"DeleteTagAndManifest", testDeleteTagAndManifest},
	{"Referrers", testReferrers},
	{"ServiceKeys", testServiceKeys},
	{"Log", testLog},
	{"LogsQuery", testLogsQuery},
	{"OAuthTokens", testOAuthTokens},
	{"SchemaMatchesQuay", testSchemaMatchesQuay},
}

func TestStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range suite {
			t.Run(tc.name, func(t *testing.T) {
				tc.fn(t, openMigrated(t, b))
			})
		}
	})
}

func testMigrateTwice(t *testing.T, db *DB) {
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, "SELECT COUNT(*) FROM "+migrationsTable); got != len(ms) {
		t.Errorf("%s has %d rows, want %d", migrationsTable, got, len(ms))
	}
	for table, want := range map[string]int{
		"role": 3, "teamrole": 3, "visibility": 2, "repositorykind": 2, "tagkind": 1,
		"loginservice": 8, "quotatype": 2, "mediatype": 18, "logentrykind": 146, "imagestoragelocation": 9,
		"quayctl_superuser": 0,
	} {
		if got := count(t, db, "SELECT COUNT(*) FROM "+table); got != want {
			t.Errorf("%s has %d rows after two migrations, want %d", table, got, want)
		}
	}
	for _, q := range []string{
		"SELECT COUNT(*) FROM imagestoragelocation WHERE name = 'local_us'",
		"SELECT COUNT(*) FROM mediatype WHERE name = 'application/vnd.docker.distribution.manifest.list.v2+json'",
		"SELECT COUNT(*) FROM logentrykind WHERE name = 'push_repo'",
	} {
		if count(t, db, q) != 1 {
			t.Errorf("%s: want 1", q)
		}
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if db.d.pg {
		// The test cluster's superuser may create pg_trgm.
		if n := count(t, db, `SELECT COUNT(*) FROM pg_indexes WHERE indexname IN
			('repository_name__fulltext', 'repository_description__fulltext') AND indexdef LIKE '%USING gin%'`); n != 2 {
			t.Errorf("GIN trigram indexes = %d, want 2", n)
		}
	}
}

func testUsers(t *testing.T, db *DB) {
	ctx := context.Background()
	if n, err := db.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on empty = %d, %v", n, err)
	}
	before := time.Now().Add(-time.Minute)
	alice, err := db.CreateUser(ctx, NewUser{Username: "alice", Email: "alice@example.com", PasswordHash: "$2b$12$hash", Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	if alice.ID == 0 || len(alice.UUID) != 36 || !alice.Enabled || !alice.Verified || alice.Organization || alice.Robot ||
		alice.RemovedTagExpirationS != 1209600 || alice.PasswordHash != "$2b$12$hash" || alice.CreationDate.Before(before) {
		t.Errorf("created user = %+v", alice)
	}
	if _, err := db.CreateUser(ctx, NewUser{Username: "alice", Email: "other@example.com"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate username: err = %v, want ErrExists", err)
	}
	if _, err := db.CreateUser(ctx, NewUser{Username: "alice2", Email: "alice@example.com"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate e-mail of a user: err = %v, want ErrExists", err)
	}
	org, err := db.CreateUser(ctx, NewUser{Username: "acme", Organization: true, RemovedTagExpirationS: 60})
	if err != nil {
		t.Fatal(err)
	}
	if len(org.Email) != 64 || org.PasswordHash != "" || org.RemovedTagExpirationS != 60 || !org.Organization {
		t.Errorf("org = %+v, want a 64-character placeholder e-mail, no password, expiration 60", org)
	}
	// Organisations may share an e-mail; users may not share one with each other.
	if _, err := db.CreateUser(ctx, NewUser{Username: "acme2", Organization: true, Email: "alice@example.com"}); err != nil {
		t.Errorf("org with a user's e-mail: %v", err)
	}
	robot, err := db.CreateUser(ctx, NewUser{Username: "acme+bot", Robot: true})
	if err != nil || !robot.Robot {
		t.Fatalf("robot: %+v %v", robot, err)
	}

	for _, tc := range []struct {
		name string
		get  func() (*User, error)
		want string
	}{
		{"by name", func() (*User, error) { return db.UserByName(ctx, "alice") }, "alice"},
		{"by id", func() (*User, error) { return db.UserByID(ctx, alice.ID) }, "alice"},
		{"by email", func() (*User, error) { return db.UserByEmail(ctx, "alice@example.com") }, "alice"},
		{"org by name", func() (*User, error) { return db.UserByName(ctx, "acme") }, "acme"},
		{"missing name", func() (*User, error) { return db.UserByName(ctx, "nobody") }, ""},
		{"missing id", func() (*User, error) { return db.UserByID(ctx, 999999) }, ""},
		{"org email not a user", func() (*User, error) { return db.UserByEmail(ctx, org.Email) }, ""},
	} {
		u, err := tc.get()
		if tc.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
			}
			continue
		}
		if err != nil || u.Username != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.name, u, err, tc.want)
		}
	}
	got, _ := db.UserByName(ctx, "alice")
	if !reflect.DeepEqual(got, alice) {
		t.Errorf("read back %+v\nwant        %+v", got, alice)
	}

	if err := db.SetPasswordHash(ctx, alice.ID, "$2b$12$new"); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.UserByID(ctx, alice.ID); u.PasswordHash != "$2b$12$new" {
		t.Errorf("password hash = %q", u.PasswordHash)
	}
	if err := db.SetPasswordHash(ctx, 999999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPasswordHash of missing user: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := db.RecordLoginAttempt(ctx, alice.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := db.UserByID(ctx, alice.ID); u.InvalidLoginAttempts != 2 {
		t.Errorf("invalid attempts = %d, want 2", u.InvalidLoginAttempts)
	}
	if err := db.RecordLoginAttempt(ctx, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.UserByID(ctx, alice.ID); u.InvalidLoginAttempts != 0 {
		t.Errorf("invalid attempts after success = %d, want 0", u.InvalidLoginAttempts)
	}
	if n, _ := db.CountUsers(ctx); n != 4 {
		t.Errorf("CountUsers = %d, want 4", n)
	}
}

func testRepositoriesAndRoles(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	bob := mustUser(t, db, "bob", false)
	carol := mustUser(t, db, "carol", false)
	dave := mustUser(t, db, "dave", false)
	eve := mustUser(t, db, "eve", false)
	acme := mustUser(t, db, "acme", true)

	own := mustRepo(t, db, alice, "own", false)
	if own.Namespace != "alice" || own.Public || own.State != RepoStateNormal || own.FullName() != "alice/own" {
		t.Errorf("created %+v", own)
	}
	if _, err := db.CreateRepository(ctx, alice.ID, "own", true, alice.ID); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate repository: %v, want ErrExists", err)
	}
	got, err := db.Repository(ctx, "alice", "own")
	if err != nil || got.ID != own.ID || got.Public {
		t.Fatalf("Repository = %+v, %v", got, err)
	}
	if _, err := db.Repository(ctx, "alice", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing repository: %v", err)
	}
	// The creator of an org repository gets an explicit admin row.
	app, err := db.CreateRepository(ctx, acme.ID, "team/app", true, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !app.Public || app.Namespace != "acme" {
		t.Errorf("org repo = %+v", app)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM repositorypermission rp JOIN role r ON r.id = rp.role_id
		WHERE rp.repository_id = ? AND rp.user_id = ? AND r.name = 'admin'`, app.ID, bob.ID); n != 1 {
		t.Errorf("creator admin rows = %d, want 1", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM repositorypermission WHERE repository_id = ?`, own.ID); n != 0 {
		t.Errorf("own-namespace repo has %d permission rows, want 0", n)
	}

	lib := mustRepo(t, db, acme, "lib", false)
	readers := mustTeam(t, db, acme, "readers", "member", carol, eve)
	mustTeam(t, db, acme, "owners", "admin", dave)
	grantTeam(t, db, readers, lib, RoleWrite)
	grantUser(t, db, eve, lib, RoleRead)   // direct read, team write: write wins
	grantUser(t, db, alice, lib, RoleRead) // direct only

	for _, tc := range []struct {
		who  *User
		repo *Repository
		want Role
	}{
		{alice, own, RoleAdmin}, // owns the namespace
		{bob, own, RoleNone},
		{bob, app, RoleAdmin}, // creator
		{alice, lib, RoleRead},
		{carol, lib, RoleWrite}, // team permission
		{eve, lib, RoleWrite},   // best of direct and team
		{dave, lib, RoleAdmin},  // admin team of the org
		{dave, app, RoleAdmin},
		{bob, lib, RoleNone},
		{&User{ID: 0, Username: "anonymous"}, lib, RoleNone},
	} {
		got, err := db.RepositoryRole(ctx, tc.who.ID, tc.repo.ID)
		if err != nil || got != tc.want {
			t.Errorf("role of %s on %s = %q, %v; want %q", tc.who.Username, tc.repo.FullName(), got, err, tc.want)
		}
	}

	mustExec(t, db, `UPDATE repository SET state = ? WHERE id = ?`, RepoStateMarkedForDeletion, own.ID)
	if _, err := db.Repository(ctx, "alice", "own"); !errors.Is(err, ErrNotFound) {
		t.Errorf("repository marked for deletion: %v, want ErrNotFound", err)
	}
}

func testVisibleRepositories(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	bob := mustUser(t, db, "bob", false)
	carol := mustUser(t, db, "carol", false)
	acme := mustUser(t, db, "acme", true)
	ab := mustUser(t, db, "a-b", false) // "a-b/…" sorts before "a/…" byte-wise

	mustRepo(t, db, alice, "pub", true)
	mustRepo(t, db, alice, "priv", false)
	mustRepo(t, db, alice, "nested/x", false)
	mustRepo(t, db, bob, "secret", false)
	shared := mustRepo(t, db, bob, "shared", false)
	teamRepo := mustRepo(t, db, acme, "team", false)
	mustRepo(t, db, acme, "internal", false)
	mustRepo(t, db, acme, "open", true)
	mustRepo(t, db, ab, "z", true)
	gone := mustRepo(t, db, alice, "gone", true)
	mustExec(t, db, `UPDATE repository SET state = ? WHERE id = ?`, RepoStateMarkedForDeletion, gone.ID)

	grantUser(t, db, alice, shared, RoleRead)
	tm := mustTeam(t, db, acme, "devs", "member", carol)
	grantTeam(t, db, tm, teamRepo, RoleRead)

	list := func(uid int64, super bool, last string, n int) []string {
		t.Helper()
		got, err := db.ListVisibleRepositories(ctx, uid, super, last, n)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name  string
		uid   int64
		super bool
		want  []string
	}{
		{"anonymous", 0, false, []string{"a-b/z", "acme/open", "alice/pub"}},
		{"alice", alice.ID, false, []string{"a-b/z", "acme/open", "alice/nested/x", "alice/priv", "alice/pub", "bob/shared"}},
		{"carol", carol.ID, false, []string{"a-b/z", "acme/open", "acme/team", "alice/pub"}},
		{"superuser", bob.ID, true, []string{"a-b/z", "acme/internal", "acme/open", "acme/team",
			"alice/nested/x", "alice/priv", "alice/pub", "bob/secret", "bob/shared"}},
	} {
		if got := list(tc.uid, tc.super, "", 0); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s sees %q\nwant %q", tc.name, got, tc.want)
		}
	}
	// Org admin team members see every repository of the org.
	mustTeam(t, db, acme, "owners", "admin", bob)
	if got := list(bob.ID, false, "acme/", 3); !reflect.DeepEqual(got, []string{"acme/internal", "acme/open", "acme/team"}) {
		t.Errorf("org admin sees %q", got)
	}

	// Pagination: pages of 2 walk the whole list with `last` exclusive.
	all := list(alice.ID, false, "", 0)
	var paged []string
	last := ""
	for i := 0; i < 10; i++ {
		page := list(alice.ID, false, last, 2)
		if len(page) > 2 {
			t.Fatalf("page of %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		last = page[len(page)-1]
	}
	if !reflect.DeepEqual(paged, all) {
		t.Errorf("paged %q\nwant  %q", paged, all)
	}
	if got := list(alice.ID, false, "alice/priv", 0); !reflect.DeepEqual(got, []string{"alice/pub", "bob/shared"}) {
		t.Errorf("after alice/priv: %q", got)
	}
}

func testBlobs(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	r1 := mustRepo(t, db, alice, "one", false)
	r2 := mustRepo(t, db, alice, "two", false)
	d := digestOf("hello")

	if _, err := db.BlobByDigest(ctx, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("BlobByDigest before link: %v", err)
	}
	b, err := db.LinkBlob(ctx, r1.ID, d, 5, "local_us", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == 0 || b.Digest != d || b.Size != 5 || b.Uploading || len(b.UUID) != 36 {
		t.Errorf("LinkBlob = %+v", b)
	}
	if got, err := db.BlobByDigest(ctx, d); err != nil || got.ID != b.ID {
		t.Errorf("BlobByDigest = %+v, %v", got, err)
	}
	if got, err := db.RepositoryBlob(ctx, r1.ID, d); err != nil || got.ID != b.ID || got.Size != 5 {
		t.Errorf("RepositoryBlob = %+v, %v", got, err)
	}
	if _, err := db.RepositoryBlob(ctx, r2.ID, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("blob leaks into another repository: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM imagestorage WHERE content_checksum = ? AND cas_path = true`, d); n != 1 {
		t.Errorf("imagestorage rows = %d", n)
	}

	// A second link (another repo, another location) reuses the storage row.
	b2, err := db.LinkBlob(ctx, r2.ID, d, 5, "s3_eu_central", time.Hour)
	if err != nil || b2.ID != b.ID {
		t.Fatalf("second LinkBlob = %+v, %v", b2, err)
	}
	locs, err := db.BlobLocations(ctx, b.ID)
	if err != nil || !reflect.DeepEqual(locs, []string{"local_us", "s3_eu_central"}) {
		t.Errorf("BlobLocations = %q, %v", locs, err)
	}
	repos, err := db.BlobRepositories(ctx, b.ID, 0)
	if err != nil || len(repos) != 2 || repos[0].FullName() != "alice/one" || repos[1].FullName() != "alice/two" {
		t.Errorf("BlobRepositories = %+v, %v", repos, err)
	}
	if repos, _ := db.BlobRepositories(ctx, b.ID, 1); len(repos) != 1 {
		t.Errorf("BlobRepositories limit 1 = %d rows", len(repos))
	}

	if err := db.UnlinkBlob(ctx, r2.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RepositoryBlob(ctx, r2.ID, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("after UnlinkBlob: %v", err)
	}
	if _, err := db.RepositoryBlob(ctx, r1.ID, d); err != nil {
		t.Errorf("unlinking from r2 unlinked r1: %v", err)
	}

	// uploadedblob links expire.
	clk.Advance(59 * time.Minute)
	if _, err := db.RepositoryBlob(ctx, r1.ID, d); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := db.RepositoryBlob(ctx, r1.ID, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("after expiry: %v, want ErrNotFound", err)
	}
	if repos, _ := db.BlobRepositories(ctx, b.ID, 0); len(repos) != 0 {
		t.Errorf("BlobRepositories after expiry = %+v", repos)
	}
	// The storage row itself stays (GC's job).
	if _, err := db.BlobByDigest(ctx, d); err != nil {
		t.Errorf("BlobByDigest after expiry: %v", err)
	}

	// A manifest reference links a blob with no expiry.
	p := image(t, db, r1.ID, "m", "v1")
	mustPut(t, db, p)
	clk.Advance(24 * time.Hour)
	for _, bd := range p.BlobDigests {
		if _, err := db.RepositoryBlob(ctx, r1.ID, bd); err != nil {
			t.Errorf("blob %s of a manifest: %v", bd, err)
		}
	}
}

func testConcurrentLinkBlob(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	repos := []*Repository{mustRepo(t, db, alice, "a", false), mustRepo(t, db, alice, "b", false)}
	d := digestOf("shared layer")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make(chan int64, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			b, err := db.LinkBlob(ctx, repos[i%2].ID, d, 12, "local_us", time.Hour)
			if err != nil {
				errs <- err
				return
			}
			ids <- b.ID
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Errorf("concurrent LinkBlob: %v", err)
	}
	var first int64
	for id := range ids {
		if first == 0 {
			first = id
		} else if id != first {
			t.Errorf("LinkBlob returned blob ids %d and %d", first, id)
		}
	}
	if got := count(t, db, `SELECT COUNT(*) FROM imagestorage WHERE content_checksum = ?`, d); got != 1 {
		t.Errorf("imagestorage rows for one digest = %d, want 1", got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM imagestorageplacement`); got != 1 {
		t.Errorf("placements = %d, want 1", got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM uploadedblob`); got != n {
		t.Errorf("uploadedblob rows = %d, want %d", got, n)
	}
}

func testUploads(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "r", false)
	other := mustRepo(t, db, alice, "other", false)

	state := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}
	u := &Upload{RepositoryID: r.ID, Location: "local_us", ShaState: state, StorageMetadata: `{"k":"v"}`}
	if err := db.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || len(u.UUID) != 36 || u.Created.IsZero() {
		t.Errorf("CreateUpload filled %+v", u)
	}
	got, err := db.Upload(ctx, r.ID, u.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Location != "local_us" || string(got.ShaState) != string(state) ||
		got.StorageMetadata != `{"k":"v"}` || got.ByteCount != 0 || got.ChunkCount != 0 ||
		got.Created.Sub(u.Created).Abs() > time.Millisecond {
		t.Errorf("Upload = %+v\nwant %+v", got, u)
	}
	if _, err := db.Upload(ctx, other.ID, u.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload visible from another repository: %v", err)
	}

	u.ByteCount, u.ChunkCount, u.ShaState, u.StorageMetadata = 1<<33, 3, []byte("next"), ""
	if err := db.UpdateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Upload(ctx, r.ID, u.UUID)
	if got.ByteCount != 1<<33 || got.ChunkCount != 3 || string(got.ShaState) != "next" || got.StorageMetadata != "" {
		t.Errorf("after UpdateUpload: %+v", got)
	}
	dup := &Upload{RepositoryID: r.ID, UUID: u.UUID, Location: "local_us"}
	if err := db.CreateUpload(ctx, dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate upload uuid: %v", err)
	}
	// A new location name gets its row.
	if err := db.CreateUpload(ctx, &Upload{RepositoryID: r.ID, Location: "s3_new"}); err != nil {
		t.Errorf("upload at a new location: %v", err)
	}
	if err := db.DeleteUpload(ctx, u.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Upload(ctx, r.ID, u.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteUpload: %v", err)
	}
	if err := db.DeleteUpload(ctx, u.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteUpload: %v", err)
	}
	if err := db.UpdateUpload(ctx, u); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUpload of deleted: %v", err)
	}
}

func testPutManifest(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)

	p := image(t, db, r.ID, "one", "latest")
	p.Manifest.Subject = ""
	m := mustPut(t, db, p)
	if m.ID == 0 || m.Digest != p.Manifest.Digest || m.RepositoryID != r.ID {
		t.Errorf("PutManifest = %+v", m)
	}
	gm, tag, err := db.ManifestByTag(ctx, r.ID, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if gm.ID != m.ID || gm.MediaType != mtOCIManifest || string(gm.Bytes) != string(p.Manifest.Bytes) ||
		gm.ConfigMediaType != p.Manifest.ConfigMediaType || gm.LayersSize != 42 {
		t.Errorf("ManifestByTag manifest = %+v", gm)
	}
	if tag.Name != "latest" || tag.ManifestDigest != m.Digest || tag.LifetimeEndMs != nil || tag.Hidden ||
		tag.LifetimeStartMs != clk.Now().UnixMilli() {
		t.Errorf("ManifestByTag tag = %+v", tag)
	}
	if bd, err := db.ManifestByDigest(ctx, r.ID, m.Digest); err != nil || bd.ID != m.ID {
		t.Errorf("ManifestByDigest = %+v, %v", bd, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM manifestblob WHERE manifest_id = ? AND repository_id = ?`, m.ID, r.ID); n != 2 {
		t.Errorf("manifestblob rows = %d, want 2", n)
	}

	// The same manifest and tag again: the existing row, and no new tag row.
	clk.Advance(time.Second)
	again := mustPut(t, db, p)
	if again.ID != m.ID {
		t.Errorf("second push got manifest id %d, want %d", again.ID, m.ID)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE repository_id = ?`, r.ID); n != 1 {
		t.Errorf("tag rows after re-push = %d, want 1", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM manifest WHERE repository_id = ?`, r.ID); n != 1 {
		t.Errorf("manifest rows after re-push = %d, want 1", n)
	}

	// By digest: a hidden temporary tag keeps it alive for the TTL.
	byDigest := image(t, db, r.ID, "two", "")
	byDigest.TempTagTTL = 30 * time.Minute
	m2 := mustPut(t, db, byDigest)
	var (
		name  string
		start int64
		end   *int64
	)
	if err := db.queryRow(ctx, db.r, `SELECT name, lifetime_start_ms, lifetime_end_ms FROM tag WHERE manifest_id = ? AND hidden = true`,
		m2.ID).Scan(&name, &start, &end); err != nil {
		t.Fatalf("temporary tag: %v", err)
	}
	if !strings.HasPrefix(name, "$temp-") || len(name) != len("$temp-")+36 || end == nil ||
		*end != clk.Now().UnixMilli()+30*60*1000 || start != clk.Now().UnixMilli() {
		t.Errorf("temporary tag %q start %d end %v", name, start, end)
	}
	if _, _, err := db.ManifestByTag(ctx, r.ID, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("hidden tag resolves: %v", err)
	}
	if tags, _ := db.ListTags(ctx, r.ID, "", 0); !reflect.DeepEqual(tags, []string{"latest"}) {
		t.Errorf("ListTags shows %q", tags)
	}
	// Pushed by digest again within the TTL: the first temporary tag suffices.
	mustPut(t, db, byDigest)
	// A tagged manifest pushed by digest needs no temporary tag.
	p2 := p
	p2.Tag = ""
	mustPut(t, db, p2)
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE hidden = true`); n != 1 {
		t.Errorf("hidden tags = %d, want 1", n)
	}
	// Tagging it later works as usual.
	byDigest.Tag = "v2"
	if m := mustPut(t, db, byDigest); m.ID != m2.ID {
		t.Errorf("tagging a digest-pushed manifest created id %d", m.ID)
	}

	// Unknown blob: typed error, nothing written.
	bad := image(t, db, r.ID, "three", "bad")
	bad.BlobDigests = append(bad.BlobDigests, digestOf("never uploaded"))
	_, err = db.PutManifest(ctx, bad)
	var bu BlobUnknownError
	if !errors.As(err, &bu) || bu.Digest != digestOf("never uploaded") {
		t.Errorf("unknown blob: err = %v", err)
	}
	if _, err := db.ManifestByDigest(ctx, r.ID, bad.Manifest.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("manifest written despite unknown blob: %v", err)
	}
	// A blob of another repository is unknown here.
	otherRepo := mustRepo(t, db, alice, "other", false)
	foreign := image(t, db, otherRepo.ID, "foreign", "")
	foreign.RepositoryID = r.ID
	if _, err := db.PutManifest(ctx, foreign); !errors.As(err, &bu) {
		t.Errorf("blob of another repository: err = %v", err)
	}

	// Index: children must be manifests of this repository.
	idxBody := `{"schemaVersion":2,"mediaType":"` + mtOCIIndex + `","manifests":["` + m.Digest + `","` + m2.Digest + `"]}`
	idx := PutManifestParams{RepositoryID: r.ID, Tag: "multi",
		Manifest:     Manifest{Digest: digestOf(idxBody), MediaType: mtOCIIndex, Bytes: []byte(idxBody)},
		ChildDigests: []string{m.Digest, m2.Digest}}
	im := mustPut(t, db, idx)
	if n := count(t, db, `SELECT COUNT(*) FROM manifestchild WHERE manifest_id = ?`, im.ID); n != 2 {
		t.Errorf("manifestchild rows = %d, want 2", n)
	}
	missing := idx
	missing.Manifest.Digest = digestOf("other index")
	missing.ChildDigests = []string{m.Digest, digestOf("no such manifest")}
	_, err = db.PutManifest(ctx, missing)
	var mu ManifestUnknownError
	if !errors.As(err, &mu) || mu.Digest != digestOf("no such manifest") {
		t.Errorf("unknown child: err = %v", err)
	}
	// A media type this database lacks is added by name.
	odd := image(t, db, r.ID, "odd", "odd")
	odd.Manifest.MediaType = "application/vnd.example.manifest+json"
	if m := mustPut(t, db, odd); m.MediaType != odd.Manifest.MediaType {
		t.Errorf("media type = %q", m.MediaType)
	}
}

func testTagHistory(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	m1 := mustPut(t, db, image(t, db, r.ID, "one", "v1"))
	t1 := clk.Now().UnixMilli()
	clk.Advance(5 * time.Second)
	t2 := clk.Now().UnixMilli()
	m2 := mustPut(t, db, image(t, db, r.ID, "two", "v1"))

	rows, err := db.query(ctx, db.r, `SELECT manifest_id, lifetime_start_ms, lifetime_end_ms FROM tag
		WHERE repository_id = ? AND name = 'v1' ORDER BY id`, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		manifest, start int64
		end             *int64
	}
	var hist []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.manifest, &x.start, &x.end); err != nil {
			t.Fatal(err)
		}
		hist = append(hist, x)
	}
	rows.Close()
	if len(hist) != 2 {
		t.Fatalf("tag history has %d rows, want 2: %+v", len(hist), hist)
	}
	if hist[0].manifest != m1.ID || hist[0].start != t1 || hist[0].end == nil || *hist[0].end != t2 {
		t.Errorf("old row = %+v, want manifest %d, %d..%d", hist[0], m1.ID, t1, t2)
	}
	if hist[1].manifest != m2.ID || hist[1].start != t2 || hist[1].end != nil {
		t.Errorf("new row = %+v, want manifest %d from %d, open", hist[1], m2.ID, t2)
	}
	if got, tag, err := db.ManifestByTag(ctx, r.ID, "v1"); err != nil || got.ID != m2.ID || tag.LifetimeStartMs != t2 {
		t.Errorf("v1 resolves to %+v %+v, %v", got, tag, err)
	}
	// Moving back to an older manifest also makes history.
	clk.Advance(time.Second)
	mustPut(t, db, PutManifestParams{RepositoryID: r.ID, Manifest: *m1, Tag: "v1"})
	if got, _, _ := db.ManifestByTag(ctx, r.ID, "v1"); got.ID != m1.ID {
		t.Errorf("v1 after move back = manifest %d, want %d", got.ID, m1.ID)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE repository_id = ? AND name = 'v1'`, r.ID); n != 3 {
		t.Errorf("history rows = %d, want 3", n)
	}
}

// Several changes of one tag within one millisecond must not trip the
// UNIQUE (repository_id, name, lifetime_end_ms) index.
func testSameMillisecondTagChurn(t *testing.T, db *DB) {
	ctx := context.Background()
	freezeClock(db) // time stands still: every change happens in the same ms
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	a := image(t, db, r.ID, "a", "t")
	b := image(t, db, r.ID, "b", "t")
	put := func(p PutManifestParams) func() error {
		return func() error { _, err := db.PutManifest(ctx, p); return err }
	}
	del := func() error { return db.DeleteTag(ctx, r.ID, "t") }
	steps := []struct {
		do   func() error
		want string // digest t resolves to afterwards; "" = deleted
	}{
		{put(a), a.Manifest.Digest},
		{put(b), b.Manifest.Digest},
		{del, ""},
		{put(a), a.Manifest.Digest},
		{put(b), b.Manifest.Digest},
		{put(a), a.Manifest.Digest},
		{del, ""},
		{put(b), b.Manifest.Digest},
	}
	for i, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, _, err := db.ManifestByTag(ctx, r.ID, "t")
		switch {
		case step.want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("step %d: deleted tag resolves: %+v, %v", i, got, err)
		case step.want != "" && (err != nil || got.Digest != step.want):
			t.Errorf("step %d: t resolves to %+v, %v; want %s", i, got, err, step.want)
		}
		tags, _ := db.ListTags(ctx, r.ID, "", 0)
		if wantTags := map[bool][]string{true: nil, false: {"t"}}[step.want == ""]; !reflect.DeepEqual(tags, wantTags) {
			t.Errorf("step %d: ListTags = %q, want %q", i, tags, wantTags)
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE repository_id = ? AND name = 't'
		AND (lifetime_end_ms IS NULL OR lifetime_end_ms > ?)`, r.ID, db.nowMs()); n != 1 {
		t.Errorf("alive rows = %d, want 1", n)
	}
}

func testListTags(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	p := image(t, db, r.ID, "x", "")
	m := mustPut(t, db, p) // hidden temp tag
	for _, name := range []string{"d", "B", "a", "c", "deleted", "expiring", "1.0", "b"} {
		mustPut(t, db, PutManifestParams{RepositoryID: r.ID, Manifest: *m, Tag: name})
	}
	clk.Advance(time.Millisecond)
	if err := db.DeleteTag(ctx, r.ID, "deleted"); err != nil {
		t.Fatal(err)
	}
	// A tag with an expiry (Quay's tag expiration) is alive until then.
	mustExec(t, db, `UPDATE tag SET lifetime_end_ms = ? WHERE repository_id = ? AND name = 'expiring'`,
		clk.Now().UnixMilli()+1000, r.ID)
	all := []string{"1.0", "B", "a", "b", "c", "d", "expiring"} // byte order
	list := func(last string, n int) []string {
		t.Helper()
		got, err := db.ListTags(ctx, r.ID, last, n)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := list("", 0); !reflect.DeepEqual(got, all) {
		t.Errorf("ListTags = %q\nwant %q", got, all)
	}
	for _, tc := range []struct {
		last string
		n    int
		want []string
	}{
		{"", 2, []string{"1.0", "B"}},
		{"B", 2, []string{"a", "b"}},
		{"b", 3, []string{"c", "d", "expiring"}},
		{"expiring", 2, nil},
		{"zzz", 0, nil},
	} {
		if got := list(tc.last, tc.n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListTags(last=%q, n=%d) = %q, want %q", tc.last, tc.n, got, tc.want)
		}
	}
	clk.Advance(2 * time.Second)
	if got := list("c", 0); !reflect.DeepEqual(got, []string{"d"}) {
		t.Errorf("after expiry: %q", got)
	}
	if _, _, err := db.ManifestByTag(ctx, r.ID, "expiring"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired tag resolves: %v", err)
	}
}

func testDeleteTagAndManifest(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	m1 := mustPut(t, db, image(t, db, r.ID, "one", "v1"))
	mustPut(t, db, PutManifestParams{RepositoryID: r.ID, Manifest: *m1, Tag: "also"})
	m2 := mustPut(t, db, image(t, db, r.ID, "two", "v2"))

	if err := db.DeleteTag(ctx, r.ID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteTag of missing tag: %v", err)
	}
	clk.Advance(time.Second)
	if err := db.DeleteTag(ctx, r.ID, "v2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ManifestByTag(ctx, r.ID, "v2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted tag resolves: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE name = 'v2' AND lifetime_end_ms = ?`, clk.Now().UnixMilli()); n != 1 {
		t.Errorf("deleted tag row not ended at now (%d rows)", n)
	}
	if err := db.DeleteTag(ctx, r.ID, "v2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteTag: %v", err)
	}
	// The manifest outlives its tag.
	if _, err := db.ManifestByDigest(ctx, r.ID, m2.Digest); err != nil {
		t.Errorf("manifest of deleted tag: %v", err)
	}

	idxBody := `{"manifests":["` + m1.Digest + `"]}`
	idx := mustPut(t, db, PutManifestParams{RepositoryID: r.ID, Tag: "idx", ChildDigests: []string{m1.Digest},
		Manifest: Manifest{Digest: digestOf(idxBody), MediaType: mtOCIIndex, Bytes: []byte(idxBody)}})

	if err := db.DeleteManifest(ctx, r.ID, m1.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ManifestByDigest(ctx, r.ID, m1.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted manifest found: %v", err)
	}
	for _, q := range []string{
		`SELECT COUNT(*) FROM tag WHERE manifest_id = ?`,
		`SELECT COUNT(*) FROM manifestblob WHERE manifest_id = ?`,
		`SELECT COUNT(*) FROM manifestchild WHERE child_manifest_id = ?`,
	} {
		if n := count(t, db, q, m1.ID); n != 0 {
			t.Errorf("%s: %d rows left", q, n)
		}
	}
	for _, tag := range []string{"v1", "also"} {
		if _, _, err := db.ManifestByTag(ctx, r.ID, tag); !errors.Is(err, ErrNotFound) {
			t.Errorf("tag %s of deleted manifest: %v", tag, err)
		}
	}
	if _, _, err := db.ManifestByTag(ctx, r.ID, "idx"); err != nil {
		t.Errorf("index of the deleted child: %v", err)
	}
	if err := db.DeleteManifest(ctx, r.ID, m1.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteManifest: %v", err)
	}
	// Deleting an index removes its child links, not the children.
	if err := db.DeleteManifest(ctx, r.ID, idx.Digest); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM manifestchild`); n != 0 {
		t.Errorf("manifestchild rows left: %d", n)
	}
	if tags, _ := db.ListTags(ctx, r.ID, "", 0); len(tags) != 0 {
		t.Errorf("tags left: %q", tags)
	}
}

func testReferrers(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	other := mustRepo(t, db, alice, "other", false)
	subject := mustPut(t, db, image(t, db, r.ID, "subject", "v1"))

	var want []string
	for i, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig", "application/vnd.example.sbom"} {
		p := image(t, db, r.ID, fmt.Sprint("ref", i), "")
		p.Manifest.Subject = subject.Digest
		p.Manifest.ArtifactType = at
		m := mustPut(t, db, p)
		want = append(want, m.Digest)
	}
	// Referrers pushed by digest are kept by hidden tags that never expire,
	// as Quay does, since nothing else refers to them.
	if n := count(t, db, `SELECT COUNT(*) FROM tag t JOIN manifest m ON m.id = t.manifest_id
		WHERE m.subject = ? AND t.hidden = true AND t.lifetime_end_ms IS NULL`, subject.Digest); n != 3 {
		t.Errorf("permanent hidden tags of referrers = %d, want 3", n)
	}
	// Same subject digest in another repository: not a referrer here.
	p := image(t, db, other.ID, "elsewhere", "")
	p.Manifest.Subject = subject.Digest
	mustPut(t, db, p)

	refs, err := db.Referrers(ctx, r.ID, subject.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range refs {
		got = append(got, m.Digest)
		if m.Subject != subject.Digest {
			t.Errorf("referrer subject = %q", m.Subject)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Referrers = %q\nwant %q", got, want)
	}
	refs, err = db.Referrers(ctx, r.ID, subject.Digest, "application/vnd.example.sbom")
	if err != nil || len(refs) != 2 || refs[0].Digest != want[0] || refs[1].Digest != want[2] ||
		refs[0].ArtifactType != "application/vnd.example.sbom" {
		t.Errorf("filtered Referrers = %+v, %v", refs, err)
	}
	if refs, err := db.Referrers(ctx, r.ID, digestOf("nothing"), ""); err != nil || len(refs) != 0 {
		t.Errorf("Referrers of unknown subject = %+v, %v", refs, err)
	}
}

func testServiceKeys(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	exp := clk.Now().Add(time.Hour)
	k := ServiceKey{Kid: "kid-1", Service: "quay", Name: "quayctl", JWK: []byte(`{"kty":"RSA","n":"abc","e":"AQAB"}`),
		CreatedDate: clk.Now(), ExpirationDate: &exp}
	if err := db.PutServiceKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := db.ServiceKey(ctx, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Kid != k.Kid || got.Service != "quay" || got.Name != "quayctl" || string(got.JWK) != string(k.JWK) ||
		!got.CreatedDate.Equal(k.CreatedDate) || got.ExpirationDate == nil || !got.ExpirationDate.Equal(exp) {
		t.Errorf("ServiceKey = %+v\nwant %+v", got, k)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM servicekey k JOIN servicekeyapproval a ON a.id = k.approval_id
		WHERE k.kid = 'kid-1' AND a.approval_type = 'Automatic' AND k.metadata = '{}'`); n != 1 {
		t.Errorf("approval rows = %d", n)
	}
	// A key without expiry never expires.
	if err := db.PutServiceKey(ctx, ServiceKey{Kid: "forever", Service: "quay", Name: "f", JWK: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := db.ServiceKey(ctx, "kid-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired key: %v, want ErrNotFound", err)
	}
	if got, err := db.ServiceKey(ctx, "forever"); err != nil || got.ExpirationDate != nil {
		t.Errorf("key without expiry = %+v, %v", got, err)
	}
	if _, err := db.ServiceKey(ctx, "unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
	// An unapproved key (as Quay stores keys awaiting approval) is not returned.
	mustExec(t, db, `INSERT INTO servicekey (name, kid, service, jwk, metadata, created_date) VALUES ('x', 'pending', 'quay', '{}', '{}', ?)`,
		db.d.ts(clk.Now()))
	if _, err := db.ServiceKey(ctx, "pending"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unapproved key: %v", err)
	}
	// Putting a kid again replaces it (here: renews the expired key).
	exp2 := clk.Now().Add(time.Hour)
	k.ExpirationDate = &exp2
	if err := db.PutServiceKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ServiceKey(ctx, "kid-1"); err != nil {
		t.Errorf("renewed key: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM servicekeyapproval`); n != 2 {
		t.Errorf("servicekeyapproval rows = %d, want 2 (old approval of a replaced key removed)", n)
	}
}

func testLog(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	first := mustUser(t, db, "first", false)
	alice := mustUser(t, db, "alice", false)
	r := mustRepo(t, db, alice, "app", false)
	ip := "10.1.2.3"
	if err := db.Log(ctx, LogEntry{Kind: "push_repo", AccountID: alice.ID, PerformerID: &alice.ID, RepositoryID: &r.ID,
		IP: ip, Metadata: map[string]any{"repo": "app", "namespace": "alice", "tag": "v1"}}); err != nil {
		t.Fatal(err)
	}
	var (
		kind               string
		account, performer int64
		repo               *int64
		gotIP              *string
		at                 nullTime
		meta               string
	)
	if err := db.queryRow(ctx, db.r, `SELECT k.name, l.account_id, l.performer_id, l.repository_id, l.ip, l.datetime, l.metadata_json
		FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id`).Scan(&kind, &account, &performer, &repo, &gotIP, &at, &meta); err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(meta), &md); err != nil {
		t.Errorf("metadata_json %q: %v", meta, err)
	}
	if kind != "push_repo" || account != alice.ID || performer != alice.ID || repo == nil || *repo != r.ID ||
		gotIP == nil || *gotIP != ip || md["tag"] != "v1" || !at.Time.Equal(clk.Now()) {
		t.Errorf("logentry3 row = %s %d %d %v %v %v %s", kind, account, performer, repo, gotIP, at.Time, meta)
	}
	// No account: the lowest user id, as Quay.
	if err := db.Log(ctx, LogEntry{Kind: "login_failure"}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id
		WHERE k.name = 'login_failure' AND l.account_id = ? AND l.performer_id IS NULL AND l.ip IS NULL AND l.metadata_json = '{}'`, first.ID); n != 1 {
		t.Errorf("fallback account row count = %d", n)
	}
	if err := db.Log(ctx, LogEntry{Kind: "no_such_kind", AccountID: alice.ID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown kind: %v", err)
	}
}

func testSuperusers(t *testing.T, db *DB) {
	ctx := context.Background()
	if got, err := db.Superusers(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Superusers on empty = %q, %v", got, err)
	}
	zed := mustUser(t, db, "zed", false)
	amy := mustUser(t, db, "amy", false)
	mustUser(t, db, "bob", false)
	for _, u := range []*User{zed, amy, zed} { // twice is harmless
		if err := db.AddSuperuser(ctx, u.ID); err != nil {
			t.Fatalf("AddSuperuser %s: %v", u.Username, err)
		}
	}
	if got, err := db.Superusers(ctx); err != nil || !reflect.DeepEqual(got, []string{"amy", "zed"}) {
		t.Errorf("Superusers = %q, %v", got, err)
	}
	if err := db.AddSuperuser(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddSuperuser of missing user: %v", err)
	}
	// Deleting a user (as Quay may, knowing nothing of our table) drops the row.
	mustExec(t, db, `DELETE FROM "user" WHERE id = ?`, amy.ID)
	if got, _ := db.Superusers(ctx); !reflect.DeepEqual(got, []string{"zed"}) {
		t.Errorf("after deleting amy: %q", got)
	}
}

func testLogsQuery(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	bob := mustUser(t, db, "bob", false)
	r := mustRepo(t, db, alice, "app", false)
	t0 := clk.Now()
	write := func(kind string, account int64, repo *int64, meta map[string]any) {
		t.Helper()
		if err := db.Log(ctx, LogEntry{Kind: kind, AccountID: account, RepositoryID: repo, Metadata: meta}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	write("create_repo", alice.ID, &r.ID, map[string]any{"repo": "app"})
	write("push_repo", alice.ID, &r.ID, map[string]any{"tag": "v1"})
	write("login_failure", bob.ID, nil, nil)
	write("pull_repo", alice.ID, &r.ID, map[string]any{"n": 1.5})

	kinds := func(recs []LogRecord) []string {
		var out []string
		for _, x := range recs {
			out = append(out, x.Kind)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    LogQuery
		want []string
	}{
		{"all, newest first", LogQuery{}, []string{"pull_repo", "login_failure", "push_repo", "create_repo"}},
		{"account", LogQuery{AccountID: alice.ID}, []string{"pull_repo", "push_repo", "create_repo"}},
		{"repository", LogQuery{RepositoryID: r.ID, Limit: 2}, []string{"pull_repo", "push_repo"}},
		{"kind", LogQuery{Kind: "login_failure"}, []string{"login_failure"}},
		{"since inclusive, until exclusive", LogQuery{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)},
			[]string{"login_failure", "push_repo"}},
	} {
		got, err := db.Logs(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(kinds(got), tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, kinds(got), tc.want)
		}
	}
	got, _ := db.Logs(ctx, LogQuery{Kind: "push_repo"})
	if len(got) != 1 || got[0].Metadata["tag"] != "v1" || got[0].RepositoryID == nil || *got[0].RepositoryID != r.ID ||
		got[0].PerformerID != nil || !got[0].Time.Equal(t0.Add(time.Second)) || got[0].AccountID != alice.ID {
		t.Errorf("push_repo record = %+v", got)
	}
}

func testOAuthTokens(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	exp := clk.Now().Add(9000 * time.Second)
	tok := NewOAuthToken{UserID: alice.ID, ApplicationName: "automation", Scope: "repo:read repo:write",
		TokenName: "abcdefghijklmnopqrst", TokenCodeHash: "$2b$12$code", ExpiresAt: exp}
	if err := db.CreateOAuthToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := db.OAuthToken(ctx, tok.TokenName)
	if err != nil || got.UserID != alice.ID || got.Scope != tok.Scope || got.TokenCodeHash != tok.TokenCodeHash ||
		!got.ExpiresAt.Equal(exp) {
		t.Fatalf("OAuthToken = %+v, %v", got, err)
	}
	tok2 := tok
	tok2.TokenName = "zyxwvutsrqponmlkjihg"
	if err := db.CreateOAuthToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM oauthapplication WHERE organization_id = ? AND client_id = 'alice'`, alice.ID); n != 1 {
		t.Errorf("applications = %d, want 1 (reused)", n)
	}
	if err := db.CreateOAuthToken(ctx, tok); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate token name: %v", err)
	}
	bad := tok
	bad.UserID, bad.TokenName = 999999, "00000000000000000000"
	if err := db.CreateOAuthToken(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("token for a missing user: %v", err)
	}
	if _, err := db.OAuthToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	clk.Advance(9001 * time.Second)
	if _, err := db.OAuthToken(ctx, tok.TokenName); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired token: %v", err)
	}
}

// TestCreateInitialUser: only the first user, atomically, as a superuser;
// concurrent attempts leave exactly one user.
func TestCreateInitialUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		{
			st := openMigrated(t, b)
			ctx := context.Background()
			var wg sync.WaitGroup
			var created atomic.Int32
			for i := 0; i < 6; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := st.CreateInitialUser(ctx, NewUser{Username: fmt.Sprintf("admin%d", i), Email: fmt.Sprintf("a%d@example.com", i)})
					if err == nil {
						created.Add(1)
					} else if !errors.Is(err, ErrNotEmpty) {
						t.Errorf("CreateInitialUser: %v", err)
					}
				}()
			}
			wg.Wait()
			n, _ := st.CountUsers(ctx)
			su, _ := st.Superusers(ctx)
			if created.Load() != 1 || n != 1 || len(su) != 1 {
				t.Fatalf("created %d, users %d, superusers %v; want exactly one", created.Load(), n, su)
			}
			if _, err := st.CreateUser(ctx, NewUser{Username: "second", Email: "s@example.com", Superuser: true}); err != nil {
				t.Fatal(err)
			}
			if su, _ := st.Superusers(ctx); len(su) != 2 {
				t.Fatalf("CreateUser with Superuser: superusers = %v", su)
			}
		}
	})
}
