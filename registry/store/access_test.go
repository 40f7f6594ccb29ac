package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// accessSuite covers app tokens, user administration, repository deletion
// and tag pages, on SQLite and PostgreSQL.
var accessSuite = []struct {
	name string
	fn   func(t *testing.T, db *DB)
}{
	{"AppTokens", testAppTokens},
	{"UsersEnabled", testUsersEnabled},
	{"DeleteRepository", testDeleteRepository},
	{"ListTagInfo", testListTagInfo},
	{"UpdateTeam", testUpdateTeam},
}

func TestAccessStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range accessSuite {
			t.Run(tc.name, func(t *testing.T) {
				tc.fn(t, openMigrated(t, b))
			})
		}
	})
}

func testAppTokens(t *testing.T, db *DB) {
	ctx := context.Background()
	alice, bob := mustUser(t, db, "alice", false), mustUser(t, db, "bob", false)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tok, err := db.CreateAppToken(ctx, AppToken{UserID: alice.ID, Title: "ci", TokenName: "N1", TokenSecret: "v0$$x", Expiration: &exp})
	if err != nil || tok.UUID == "" || tok.ID == 0 {
		t.Fatalf("CreateAppToken = %+v, %v", tok, err)
	}
	if _, err := db.CreateAppToken(ctx, AppToken{UserID: bob.ID, Title: "dup", TokenName: "N1", TokenSecret: "s"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate token_name: %v", err)
	}
	got, err := db.AppTokenByName(ctx, "N1")
	if err != nil || got.UserID != alice.ID || got.Title != "ci" || got.Expiration == nil || !got.Expiration.Equal(exp) || got.LastAccessed != nil {
		t.Fatalf("AppTokenByName = %+v, %v", got, err)
	}
	if err := db.TouchAppToken(ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ = db.AppTokenByUUID(ctx, alice.ID, tok.UUID); got == nil || got.LastAccessed == nil {
		t.Fatalf("last_accessed not set: %+v", got)
	}
	if _, err := db.AppTokenByUUID(ctx, bob.ID, tok.UUID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob reads alice's token: %v", err)
	}
	if list, err := db.ListAppTokens(ctx, alice.ID); err != nil || len(list) != 1 {
		t.Fatalf("ListAppTokens = %v, %v", list, err)
	}
	if err := db.DeleteAppToken(ctx, bob.ID, tok.UUID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob revoked alice's token: %v", err)
	}
	if err := db.DeleteAppToken(ctx, alice.ID, tok.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppTokenByName(ctx, "N1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token found: %v", err)
	}
}

func testUsersEnabled(t *testing.T, db *DB) {
	ctx := context.Background()
	b, a := mustUser(t, db, "bob", false), mustUser(t, db, "alice", false)
	org := mustOrg(t, db, "acme", a)
	if _, err := db.CreateRobot(ctx, org.ID, "bot", "", "v0$$t"); err != nil {
		t.Fatal(err)
	}
	users, err := db.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Username != "alice" || users[1].Username != "bob" {
		t.Fatalf("ListUsers = %+v, %v (want people only, by name)", users, err)
	}
	if err := db.SetUserEnabled(ctx, b.ID, false); err != nil {
		t.Fatal(err)
	}
	if u, _ := db.UserByID(ctx, b.ID); u.Enabled {
		t.Fatal("bob still enabled")
	}
	if err := db.SetUserEnabled(ctx, 99999, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

func testDeleteRepository(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	repo := mustRepo(t, db, alice, "app", false)
	mustPut(t, db, image(t, db, repo.ID, "one", "v1"))
	mustPut(t, db, image(t, db, repo.ID, "two", ""))
	if err := db.DeleteRepository(ctx, repo.ID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM tag WHERE repository_id = ? AND lifetime_end_ms IS NULL`, repo.ID); n != 0 {
		t.Fatalf("%d tags still alive", n)
	}
	if _, err := db.Repository(ctx, "alice", "app"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted repository found: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM deletedrepository WHERE repository_id = ? AND original_name = 'app' AND queue_id IS NOT NULL`, repo.ID); n != 1 {
		t.Fatalf("deletedrepository rows: %d", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM queueitem WHERE queue_name LIKE 'repositorygc/alice/%'`); n != 1 {
		t.Fatalf("queue items: %d", n)
	}
	if err := db.DeleteRepository(ctx, repo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	again := mustRepo(t, db, alice, "app", false)
	if again.ID == repo.ID {
		t.Fatal("the re-created repository reuses the old row")
	}
}

func testListTagInfo(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	alice := mustUser(t, db, "alice", false)
	repo := mustRepo(t, db, alice, "app", false)
	for _, tag := range []string{"a", "b", "c"} {
		mustPut(t, db, image(t, db, repo.ID, tag, tag))
		clk.Advance(time.Second)
	}
	mustPut(t, db, image(t, db, repo.ID, "untagged", "")) // hidden temp tag: never listed
	if err := db.DeleteTag(ctx, repo.ID, "a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		q     TagListQuery
		want  []string
		more  bool
		ended []bool
	}{
		{"history, newest first", TagListQuery{Limit: 10}, []string{"c", "b", "a"}, false, []bool{false, false, true}},
		{"active only", TagListQuery{OnlyActive: true, Limit: 10}, []string{"c", "b"}, false, nil},
		{"first page", TagListQuery{Limit: 2}, []string{"c", "b"}, true, nil},
		{"second page", TagListQuery{Limit: 2, Offset: 2}, []string{"a"}, false, nil},
		{"one tag", TagListQuery{Name: "b", Limit: 10}, []string{"b"}, false, nil},
		{"deleted tag, active only", TagListQuery{Name: "a", OnlyActive: true, Limit: 10}, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.RepositoryID = repo.ID
			tags, more, err := db.ListTagInfo(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, ti := range tags {
				names = append(names, ti.Name)
				if ti.MediaType != mtOCIManifest || ti.Size != 42 || ti.ManifestDigest == "" {
					t.Errorf("tag %s: %+v", ti.Name, ti)
				}
				if tc.ended != nil && (ti.LifetimeEndMs != nil) != tc.ended[i] {
					t.Errorf("tag %s ended = %v", ti.Name, ti.LifetimeEndMs != nil)
				}
			}
			if len(names) != len(tc.want) || more != tc.more {
				t.Fatalf("tags %v more=%v, want %v more=%v", names, more, tc.want, tc.more)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("tags %v, want %v", names, tc.want)
				}
			}
		})
	}
}

func testUpdateTeam(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	org := mustOrg(t, db, "acme", alice)
	team := mustNewTeam(t, db, org, "devs", TeamRoleMember)
	if err := db.UpdateTeam(ctx, team.ID, TeamRoleCreator, "builders"); err != nil {
		t.Fatal(err)
	}
	got, err := db.TeamByName(ctx, org.ID, "devs")
	if err != nil || got.Role != TeamRoleCreator || got.Description != "builders" {
		t.Fatalf("team = %+v, %v", got, err)
	}
	var inv InvalidInputError
	if err := db.UpdateTeam(ctx, team.ID, "boss", ""); !errors.As(err, &inv) {
		t.Fatalf("unknown role: %v", err)
	}
	owners, _ := db.TeamByName(ctx, org.ID, OwnersTeam)
	if err := db.UpdateTeam(ctx, owners.ID, TeamRoleMember, ""); !errors.Is(err, ErrOwnersTeam) {
		t.Fatalf("owners demoted: %v", err)
	}
	if err := db.UpdateTeam(ctx, owners.ID, TeamRoleAdmin, "the owners"); err != nil {
		t.Fatalf("owners description: %v", err)
	}
}
