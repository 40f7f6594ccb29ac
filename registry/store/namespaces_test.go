package store

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
)

// namespaceSuite covers organisations, teams, robots and permissions; like
// TestStore it runs every case on SQLite and PostgreSQL.
var namespaceSuite = []struct {
	name string
	fn   func(t *testing.T, db *DB)
}{
	{"CreateOrganization", testCreateOrganization},
	{"Teams", testTeams},
	{"NamespaceRole", testNamespaceRole},
	{"RepositoryRoleThroughTeams", testRepositoryRoleThroughTeams},
	{"Robots", testRobots},
	{"RobotInTeam", testRobotInTeam},
	{"Permissions", testPermissions},
	{"VisibilityAndDescription", testVisibilityAndDescription},
	{"NamespaceBadInput", testNamespaceBadInput},
}

func TestNamespaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range namespaceSuite {
			t.Run(tc.name, func(t *testing.T) {
				tc.fn(t, openMigrated(t, b))
			})
		}
	})
}

func mustOrg(t *testing.T, db *DB, name string, creator *User) *User {
	t.Helper()
	org, err := db.CreateOrganization(context.Background(), name, "", creator.ID)
	if err != nil {
		t.Fatalf("CreateOrganization %s: %v", name, err)
	}
	return org
}

func mustNewTeam(t *testing.T, db *DB, org *User, name, role string, members ...*User) *Team {
	t.Helper()
	ctx := context.Background()
	team, err := db.CreateTeam(ctx, org.ID, name, role, "team "+name)
	if err != nil {
		t.Fatalf("CreateTeam %s: %v", name, err)
	}
	for _, m := range members {
		if err := db.AddTeamMember(ctx, team.ID, m.ID); err != nil {
			t.Fatalf("AddTeamMember %s to %s: %v", m.Username, name, err)
		}
	}
	return team
}

func mustRobot(t *testing.T, db *DB, ns *User, short string) *User {
	t.Helper()
	r, err := db.CreateRobot(context.Background(), ns.ID, short, "robot "+short, "enc:"+short)
	if err != nil {
		t.Fatalf("CreateRobot %s+%s: %v", ns.Username, short, err)
	}
	return r
}

func memberNames(t *testing.T, db *DB, teamID int64) []string {
	t.Helper()
	us, err := db.TeamMembers(context.Background(), teamID)
	if err != nil {
		t.Fatalf("TeamMembers: %v", err)
	}
	names := []string{}
	for _, u := range us {
		names = append(names, u.Username)
	}
	return names
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var inv InvalidInputError
	if !errors.As(err, &inv) {
		t.Errorf("%s: got %v, want InvalidInputError", what, err)
	}
}

func testCreateOrganization(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	org, err := db.CreateOrganization(ctx, "acme", "", alice.ID)
	if err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	if !org.Organization || org.Robot || org.PasswordHash != "" || !org.Enabled || len(org.Email) != 64 {
		t.Errorf("org row = %+v", org)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM "user" WHERE id = ? AND organization = true AND password_hash IS NULL`, org.ID); got != 1 {
		t.Errorf("org rows = %d", got)
	}
	owners, err := db.TeamByName(ctx, org.ID, OwnersTeam)
	if err != nil {
		t.Fatalf("TeamByName owners: %v", err)
	}
	if owners.Role != TeamRoleAdmin || owners.OrganizationID != org.ID {
		t.Errorf("owners = %+v", owners)
	}
	if got := memberNames(t, db, owners.ID); !reflect.DeepEqual(got, []string{"alice"}) {
		t.Errorf("owners members = %v", got)
	}
	// An explicit e-mail is kept; orgs may share an e-mail with a user.
	if o2, err := db.CreateOrganization(ctx, "acme2", "alice@example.com", alice.ID); err != nil || o2.Email != "alice@example.com" {
		t.Errorf("CreateOrganization with email: %+v, %v", o2, err)
	}

	// A taken name (org or user) is ErrExists and leaves nothing behind.
	teams, users := count(t, db, `SELECT COUNT(*) FROM team`), count(t, db, `SELECT COUNT(*) FROM "user"`)
	for _, name := range []string{"acme", "alice"} {
		if _, err := db.CreateOrganization(ctx, name, "", alice.ID); !errors.Is(err, ErrExists) {
			t.Errorf("CreateOrganization %s again: %v, want ErrExists", name, err)
		}
	}
	if _, err := db.CreateOrganization(ctx, "ghost", "", 999999); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateOrganization by unknown creator: %v, want ErrNotFound", err)
	}
	if _, err := db.CreateOrganization(ctx, "nested", "", org.ID); err == nil {
		t.Error("CreateOrganization by an organization succeeded")
	}
	if got := count(t, db, `SELECT COUNT(*) FROM team`); got != teams {
		t.Errorf("teams %d -> %d after failed creations", teams, got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM "user"`); got != users {
		t.Errorf("users %d -> %d after failed creations", users, got)
	}
}

func testTeams(t *testing.T, db *DB) {
	ctx := context.Background()
	alice, bob := mustUser(t, db, "alice", false), mustUser(t, db, "bob", false)
	org := mustOrg(t, db, "acme", alice)
	devs := mustNewTeam(t, db, org, "devs", TeamRoleCreator)
	if devs.Role != TeamRoleCreator || devs.Description != "team devs" {
		t.Errorf("team = %+v", devs)
	}
	if _, err := db.CreateTeam(ctx, org.ID, "devs", TeamRoleMember, ""); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate team: %v, want ErrExists", err)
	}
	mustNewTeam(t, db, org, "readers", TeamRoleMember)
	teams, err := db.ListTeams(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tm := range teams {
		names = append(names, tm.Name+":"+tm.Role)
	}
	if want := []string{"devs:creator", "owners:admin", "readers:member"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListTeams = %v, want %v", names, want)
	}
	if _, err := db.TeamByName(ctx, org.ID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TeamByName unknown: %v", err)
	}

	// Membership is idempotent.
	for i := 0; i < 2; i++ {
		if err := db.AddTeamMember(ctx, devs.ID, bob.ID); err != nil {
			t.Fatalf("AddTeamMember #%d: %v", i, err)
		}
	}
	if got := memberNames(t, db, devs.ID); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Errorf("members = %v", got)
	}
	if err := db.RemoveTeamMember(ctx, devs.ID, bob.ID); err != nil {
		t.Fatalf("RemoveTeamMember: %v", err)
	}
	if err := db.RemoveTeamMember(ctx, devs.ID, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveTeamMember again: %v, want ErrNotFound", err)
	}

	// DeleteTeam removes members and permissions; owners is refused.
	repo := mustRepo(t, db, org, "app", false)
	if err := db.AddTeamMember(ctx, devs.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRepositoryPermission(ctx, repo.ID, 0, devs.ID, RoleWrite); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteTeam(ctx, devs.ID); err != nil {
		t.Fatalf("DeleteTeam: %v", err)
	}
	for _, q := range []string{
		`SELECT COUNT(*) FROM team WHERE id = ?`,
		`SELECT COUNT(*) FROM teammember WHERE team_id = ?`,
		`SELECT COUNT(*) FROM repositorypermission WHERE team_id = ?`,
	} {
		if got := count(t, db, q, devs.ID); got != 0 {
			t.Errorf("%s = %d after DeleteTeam", q, got)
		}
	}
	if err := db.DeleteTeam(ctx, devs.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteTeam again: %v", err)
	}
	owners, _ := db.TeamByName(ctx, org.ID, OwnersTeam)
	if err := db.DeleteTeam(ctx, owners.ID); !errors.Is(err, ErrOwnersTeam) {
		t.Errorf("DeleteTeam owners: %v, want ErrOwnersTeam", err)
	}
}

func testNamespaceRole(t *testing.T, db *DB) {
	ctx := context.Background()
	owner, creator, member, outsider := mustUser(t, db, "owner", false), mustUser(t, db, "creator", false),
		mustUser(t, db, "member", false), mustUser(t, db, "outsider", false)
	org := mustOrg(t, db, "acme", owner)
	mustNewTeam(t, db, org, "builders", TeamRoleCreator, creator)
	mustNewTeam(t, db, org, "readers", TeamRoleMember, member, creator)
	other := mustOrg(t, db, "other", outsider)
	for _, c := range []struct {
		who  *User
		ns   *User
		want string
	}{
		{owner, owner, TeamRoleAdmin},   // a user's own namespace
		{org, org, TeamRoleAdmin},       // the namespace itself
		{owner, org, TeamRoleAdmin},     // in owners
		{creator, org, TeamRoleCreator}, // best of creator and member
		{member, org, TeamRoleMember},
		{outsider, org, ""},
		{owner, other, ""},
		{owner, outsider, ""}, // another user's namespace
		{&User{ID: 0}, org, ""},
	} {
		got, err := db.NamespaceRole(ctx, c.who.ID, c.ns.ID)
		if err != nil || got != c.want {
			t.Errorf("NamespaceRole(%s, %s) = %q, %v; want %q", c.who.Username, c.ns.Username, got, err, c.want)
		}
	}
}

func testRepositoryRoleThroughTeams(t *testing.T, db *DB) {
	ctx := context.Background()
	owner, admin2, writer, reader, creator, outsider := mustUser(t, db, "owner", false), mustUser(t, db, "admin2", false),
		mustUser(t, db, "writer", false), mustUser(t, db, "reader", false), mustUser(t, db, "creator", false),
		mustUser(t, db, "outsider", false)
	org := mustOrg(t, db, "acme", owner)
	mustNewTeam(t, db, org, "admins", TeamRoleAdmin, admin2)
	writers := mustNewTeam(t, db, org, "writers", TeamRoleMember, writer)
	readers := mustNewTeam(t, db, org, "readers", TeamRoleMember, reader, writer)
	mustNewTeam(t, db, org, "builders", TeamRoleCreator, creator)
	repo := mustRepo(t, db, org, "app", false)
	if err := db.SetRepositoryPermission(ctx, repo.ID, 0, writers.ID, RoleWrite); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRepositoryPermission(ctx, repo.ID, 0, readers.ID, RoleRead); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  *User
		want Role
	}{
		{owner, RoleAdmin}, {admin2, RoleAdmin}, {writer, RoleWrite}, {reader, RoleRead},
		{creator, RoleNone}, {outsider, RoleNone},
	} {
		if got, err := db.RepositoryRole(ctx, c.who.ID, repo.ID); err != nil || got != c.want {
			t.Errorf("RepositoryRole(%s) = %q, %v; want %q", c.who.Username, got, err, c.want)
		}
	}
	// Leaving the team takes the role away.
	if err := db.RemoveTeamMember(ctx, writers.ID, writer.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.RepositoryRole(ctx, writer.ID, repo.ID); got != RoleRead {
		t.Errorf("after leaving writers: %q, want read", got)
	}
}

// robotRows counts the rows of every table a robot touches.
func robotRows(t *testing.T, db *DB, id int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	for table, q := range map[string]string{
		"user":                 `SELECT COUNT(*) FROM "user" WHERE id = ?`,
		"robotaccounttoken":    `SELECT COUNT(*) FROM robotaccounttoken WHERE robot_account_id = ?`,
		"robotaccountmetadata": `SELECT COUNT(*) FROM robotaccountmetadata WHERE robot_account_id = ?`,
		"federatedlogin":       `SELECT COUNT(*) FROM federatedlogin WHERE user_id = ?`,
		"teammember":           `SELECT COUNT(*) FROM teammember WHERE user_id = ?`,
		"repositorypermission": `SELECT COUNT(*) FROM repositorypermission WHERE user_id = ?`,
	} {
		out[table] = count(t, db, q, id)
	}
	return out
}

func testRobots(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	org := mustOrg(t, db, "acme", alice)
	before := map[string]int{}
	for _, table := range []string{`"user"`, "robotaccounttoken", "robotaccountmetadata", "federatedlogin", "teammember", "repositorypermission"} {
		before[table] = count(t, db, "SELECT COUNT(*) FROM "+table)
	}

	bot, err := db.CreateRobot(ctx, org.ID, "deployer", "deploys things", "enc-token-1")
	if err != nil {
		t.Fatalf("CreateRobot: %v", err)
	}
	if bot.Username != "acme+deployer" || !bot.Robot || bot.Organization || bot.PasswordHash != "" || len(bot.Email) != 36 {
		t.Errorf("robot row = %+v", bot)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM federatedlogin f JOIN loginservice s ON s.id = f.service_id
		WHERE f.user_id = ? AND s.name = 'quayrobot' AND f.service_ident = ? AND f.metadata_json = '{}'`,
		bot.ID, "robot:"+strconv.FormatInt(bot.ID, 10)); got != 1 {
		t.Errorf("federatedlogin rows = %d", got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM robotaccounttoken WHERE robot_account_id = ? AND fully_migrated = true`, bot.ID); got != 1 {
		t.Errorf("robotaccounttoken rows = %d", got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM robotaccountmetadata WHERE robot_account_id = ?
		AND description = 'deploys things' AND unstructured_json = '{}'`, bot.ID); got != 1 {
		t.Errorf("robotaccountmetadata rows = %d", got)
	}
	if tok, err := db.RobotToken(ctx, bot.ID); err != nil || tok != "enc-token-1" {
		t.Errorf("RobotToken = %q, %v", tok, err)
	}
	if err := db.SetRobotToken(ctx, bot.ID, "enc-token-2"); err != nil {
		t.Fatal(err)
	}
	if tok, err := db.RobotToken(ctx, bot.ID); err != nil || tok != "enc-token-2" {
		t.Errorf("RobotToken after SetRobotToken = %q, %v", tok, err)
	}
	if _, err := db.CreateRobot(ctx, org.ID, "deployer", "", "x"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate robot: %v, want ErrExists", err)
	}

	// Robots of a user namespace, and listing by namespace.
	mustRobot(t, db, org, "builder")
	mine := mustRobot(t, db, alice, "laptop")
	other := mustOrg(t, db, "acmeother", alice)
	mustRobot(t, db, other, "deployer")
	list, err := db.ListRobots(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range list {
		names = append(names, r.Name+":"+r.Description)
		if r.Created.IsZero() {
			t.Errorf("robot %s has no creation date", r.Name)
		}
	}
	if want := []string{"acme+builder:robot builder", "acme+deployer:deploys things"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListRobots(acme) = %v, want %v", names, want)
	}
	if list, _ := db.ListRobots(ctx, alice.ID); len(list) != 1 || list[0].ID != mine.ID {
		t.Errorf("ListRobots(alice) = %+v", list)
	}

	// Deleting removes every row, including memberships and permissions.
	team := mustNewTeam(t, db, org, "bots", TeamRoleMember, bot)
	repo := mustRepo(t, db, org, "app", false)
	if err := db.SetRepositoryPermission(ctx, repo.ID, bot.ID, 0, RoleWrite); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRobot(ctx, bot.ID); err != nil {
		t.Fatalf("DeleteRobot: %v", err)
	}
	for table, n := range robotRows(t, db, bot.ID) {
		if n != 0 {
			t.Errorf("%s has %d rows of the deleted robot", table, n)
		}
	}
	if got := memberNames(t, db, team.ID); len(got) != 0 {
		t.Errorf("bots members after delete = %v", got)
	}
	if err := db.DeleteRobot(ctx, bot.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteRobot again: %v", err)
	}
	if err := db.DeleteRobot(ctx, alice.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteRobot of a user: %v, want ErrNotFound", err)
	}
	if _, err := db.RobotToken(ctx, bot.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("RobotToken of deleted robot: %v", err)
	}
	// The remaining robots account for every row: one per table each.
	for _, r := range []string{"acme+builder", "alice+laptop", "acmeother+deployer"} {
		u, err := db.UserByName(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteRobot(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteTeam(ctx, team.ID); err != nil {
		t.Fatal(err)
	}
	for table, n := range before {
		want := n
		if table == `"user"` {
			want++ // the organisation acmeother
		}
		if table == "teammember" {
			want++ // alice in acmeother's owners
		}
		if got := count(t, db, "SELECT COUNT(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows after deleting every robot, want %d", table, got, want)
		}
	}
}

func testRobotInTeam(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	org := mustOrg(t, db, "acme", alice)
	bot := mustRobot(t, db, org, "ci")
	pushers := mustNewTeam(t, db, org, "pushers", TeamRoleMember, bot)
	repo := mustRepo(t, db, org, "app", false)
	if got, _ := db.RepositoryRole(ctx, bot.ID, repo.ID); got != RoleNone {
		t.Errorf("robot role before grant = %q", got)
	}
	if err := db.SetRepositoryPermission(ctx, repo.ID, 0, pushers.ID, RoleWrite); err != nil {
		t.Fatal(err)
	}
	if got, err := db.RepositoryRole(ctx, bot.ID, repo.ID); err != nil || got != RoleWrite {
		t.Errorf("robot role through team = %q, %v; want write", got, err)
	}
	if got, _ := db.NamespaceRole(ctx, bot.ID, org.ID); got != TeamRoleMember {
		t.Errorf("robot NamespaceRole = %q, want member", got)
	}
	if got := memberNames(t, db, pushers.ID); !reflect.DeepEqual(got, []string{"acme+ci"}) {
		t.Errorf("members = %v", got)
	}
}

func testPermissions(t *testing.T, db *DB) {
	ctx := context.Background()
	alice, bob := mustUser(t, db, "alice", false), mustUser(t, db, "bob", false)
	org := mustOrg(t, db, "acme", alice)
	bot := mustRobot(t, db, org, "ci")
	devs := mustNewTeam(t, db, org, "devs", TeamRoleMember)
	repo := mustRepo(t, db, org, "app", false)

	for _, g := range []struct {
		user, team int64
		role       Role
	}{
		{bob.ID, 0, RoleRead}, {bot.ID, 0, RoleWrite}, {0, devs.ID, RoleRead},
		{bob.ID, 0, RoleWrite}, {0, devs.ID, RoleAdmin}, // upserts
	} {
		if err := db.SetRepositoryPermission(ctx, repo.ID, g.user, g.team, g.role); err != nil {
			t.Fatalf("SetRepositoryPermission %+v: %v", g, err)
		}
	}
	perms, err := db.ListRepositoryPermissions(ctx, repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []Permission{
		{Kind: "team", ID: devs.ID, Name: "devs", Role: RoleAdmin},
		{Kind: "robot", ID: bot.ID, Name: "acme+ci", Role: RoleWrite},
		{Kind: "user", ID: bob.ID, Name: "bob", Role: RoleWrite},
	}
	if !reflect.DeepEqual(perms, want) {
		t.Errorf("ListRepositoryPermissions = %+v, want %+v", perms, want)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM repositorypermission WHERE repository_id = ?`, repo.ID); got != 3 {
		t.Errorf("%d permission rows, want 3 (upsert)", got)
	}
	if got, _ := db.RepositoryRole(ctx, bob.ID, repo.ID); got != RoleWrite {
		t.Errorf("bob's role = %q", got)
	}

	if err := db.DeleteRepositoryPermission(ctx, repo.ID, bob.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRepositoryPermission(ctx, repo.ID, 0, devs.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRepositoryPermission(ctx, repo.ID, bob.ID, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteRepositoryPermission again: %v", err)
	}
	perms, _ = db.ListRepositoryPermissions(ctx, repo.ID)
	if len(perms) != 1 || perms[0].Name != "acme+ci" {
		t.Errorf("after deletes: %+v", perms)
	}
	if got, _ := db.RepositoryRole(ctx, bob.ID, repo.ID); got != RoleNone {
		t.Errorf("bob's role after delete = %q", got)
	}
	if err := db.SetRepositoryPermission(ctx, 999999, bob.ID, 0, RoleRead); !errors.Is(err, ErrNotFound) {
		t.Errorf("permission on unknown repository: %v", err)
	}
	if err := db.SetRepositoryPermission(ctx, repo.ID, 999999, 0, RoleRead); !errors.Is(err, ErrNotFound) {
		t.Errorf("permission for unknown user: %v", err)
	}
}

func testVisibilityAndDescription(t *testing.T, db *DB) {
	ctx := context.Background()
	alice := mustUser(t, db, "alice", false)
	mustRepo(t, db, alice, "app", false)
	r, _ := db.Repository(ctx, "alice", "app")
	if err := db.SetRepositoryVisibility(ctx, r.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRepositoryDescription(ctx, r.ID, "my app"); err != nil {
		t.Fatal(err)
	}
	r, _ = db.Repository(ctx, "alice", "app")
	if !r.Public || r.Description != "my app" {
		t.Errorf("after set: %+v", r)
	}
	if err := db.SetRepositoryVisibility(ctx, r.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRepositoryDescription(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	r, _ = db.Repository(ctx, "alice", "app")
	if r.Public || r.Description != "" {
		t.Errorf("after reset: %+v", r)
	}
	if err := db.SetRepositoryVisibility(ctx, 999999, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown repository: %v", err)
	}
	if err := db.SetRepositoryDescription(ctx, 999999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown repository: %v", err)
	}
}

func testNamespaceBadInput(t *testing.T, db *DB) {
	ctx := context.Background()
	alice, bob := mustUser(t, db, "alice", false), mustUser(t, db, "bob", false)
	org := mustOrg(t, db, "acme", alice)
	other := mustOrg(t, db, "other", alice)
	repo := mustRepo(t, db, org, "app", false)
	devs := mustNewTeam(t, db, org, "devs", TeamRoleMember)
	otherTeam := mustNewTeam(t, db, other, "devs", TeamRoleMember)
	otherBot := mustRobot(t, db, other, "ci")
	users := count(t, db, `SELECT COUNT(*) FROM "user"`)

	for _, name := range []string{"", "a", "Deploy", "1bot", "bad-name", "bad.name", "a+b", "_x"} {
		_, err := db.CreateRobot(ctx, org.ID, name, "", "tok")
		wantInvalid(t, "robot name "+name, err)
	}
	_, err := db.CreateRobot(ctx, org.ID, "ci", "", "")
	wantInvalid(t, "empty robot token", err)
	if _, err := db.CreateRobot(ctx, 999999, "ci", "", "tok"); !errors.Is(err, ErrNotFound) {
		t.Errorf("robot in unknown namespace: %v", err)
	}
	_, err = db.CreateRobot(ctx, otherBot.ID, "ci", "", "tok")
	wantInvalid(t, "robot of a robot", err)
	if got := count(t, db, `SELECT COUNT(*) FROM "user"`); got != users {
		t.Errorf("users %d -> %d after refused robots", users, got)
	}

	for _, name := range []string{"Acme", "a", "-x", "has space", "x+y"} {
		_, err := db.CreateOrganization(ctx, name, "", alice.ID)
		wantInvalid(t, "org name "+name, err)
	}
	if _, err := db.CreateTeam(ctx, alice.ID, "devs", TeamRoleMember, ""); !errors.Is(err, ErrNotOrganization) {
		t.Errorf("team in a user namespace: %v, want ErrNotOrganization", err)
	}
	if _, err := db.CreateTeam(ctx, 999999, "devs", TeamRoleMember, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("team in unknown namespace: %v, want ErrNotFound", err)
	}
	_, err = db.CreateTeam(ctx, org.ID, "ops", "owner", "")
	wantInvalid(t, "unknown team role", err)
	_, err = db.CreateTeam(ctx, org.ID, "Ops!", TeamRoleMember, "")
	wantInvalid(t, "team name", err)

	wantInvalid(t, "robot of another org in a team", db.AddTeamMember(ctx, devs.ID, otherBot.ID))
	wantInvalid(t, "org in a team", db.AddTeamMember(ctx, devs.ID, other.ID))
	if err := db.AddTeamMember(ctx, 999999, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("member of unknown team: %v", err)
	}

	wantInvalid(t, "both user and team", db.SetRepositoryPermission(ctx, repo.ID, bob.ID, devs.ID, RoleRead))
	wantInvalid(t, "neither user nor team", db.SetRepositoryPermission(ctx, repo.ID, 0, 0, RoleRead))
	wantInvalid(t, "unknown role", db.SetRepositoryPermission(ctx, repo.ID, bob.ID, 0, Role("owner")))
	wantInvalid(t, "team of another org", db.SetRepositoryPermission(ctx, repo.ID, 0, otherTeam.ID, RoleRead))
	wantInvalid(t, "robot of another org", db.SetRepositoryPermission(ctx, repo.ID, otherBot.ID, 0, RoleRead))
	wantInvalid(t, "org as grantee", db.SetRepositoryPermission(ctx, repo.ID, other.ID, 0, RoleRead))
	wantInvalid(t, "delete with both", db.DeleteRepositoryPermission(ctx, repo.ID, bob.ID, devs.ID))
	if got := count(t, db, `SELECT COUNT(*) FROM repositorypermission WHERE repository_id = ?`, repo.ID); got != 0 {
		t.Errorf("%d permission rows after refused grants", got)
	}
}
