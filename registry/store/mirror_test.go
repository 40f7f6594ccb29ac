package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/encfield"
)

// TestMirrorStore runs the repository mirror cases on SQLite and
// PostgreSQL.
func TestMirrorStore(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, db *DB)
	}{
		{"CRUD", testMirrorCRUD},
		{"RobotPermission", testMirrorRobotPermission},
		{"CredentialsEncrypted", testMirrorCredentialsEncrypted},
		{"DueMirrors", testMirrorDue},
		{"ClaimOneWinner", testMirrorClaimOneWinner},
		{"ExpiredClaim", testMirrorExpiredClaim},
		{"StatusTransitions", testMirrorStatusTransitions},
		{"RetriesCountDown", testMirrorRetries},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, openMigrated(t, b)) })
		}
	})
}

type mirrorFixture struct {
	ns    *User
	robot *User
	repo  *Repository
}

func newMirrorFixture(t *testing.T, db *DB, repo string) mirrorFixture {
	t.Helper()
	ns := mustUser(t, db, "olivia", false)
	robot, err := db.CreateRobot(context.Background(), ns.ID, "mirror", "", "encrypted-token")
	if err != nil {
		t.Fatalf("CreateRobot: %v", err)
	}
	return mirrorFixture{ns: ns, robot: robot, repo: mustRepo(t, db, ns, repo, false)}
}

// mustMirror creates an enabled mirror of f.repo whose first sync is due
// (start an hour ago, interval start).
func mustMirror(t *testing.T, db *DB, f mirrorFixture, mutate func(*MirrorConfig)) *MirrorConfig {
	t.Helper()
	start := db.now().Add(-time.Hour)
	c := &MirrorConfig{RepositoryID: f.repo.ID, Enabled: true, RobotID: f.robot.ID, ExternalReference: "registry.example.com/library/app",
		SyncInterval: 3600, SyncStartDate: &start, TagPatterns: []string{"v*", "latest"}}
	if mutate != nil {
		mutate(c)
	}
	if err := db.CreateMirror(context.Background(), c); err != nil {
		t.Fatalf("CreateMirror: %v", err)
	}
	return c
}

func mustMirrorOf(t *testing.T, db *DB, repoID int64) *MirrorConfig {
	t.Helper()
	c, err := db.MirrorByRepository(context.Background(), repoID)
	if err != nil {
		t.Fatalf("MirrorByRepository: %v", err)
	}
	return c
}

func dueIDs(t *testing.T, db *DB) []int64 {
	t.Helper()
	due, err := db.DueMirrors(context.Background(), 0)
	if err != nil {
		t.Fatalf("DueMirrors: %v", err)
	}
	var ids []int64
	for _, c := range due {
		ids = append(ids, c.RepositoryID)
	}
	return ids
}

func mustClaim(t *testing.T, db *DB, c *MirrorConfig) {
	t.Helper()
	ok, err := db.ClaimMirror(context.Background(), c)
	if err != nil || !ok {
		t.Fatalf("ClaimMirror = %v, %v; want a claim", ok, err)
	}
}

func testMirrorCRUD(t *testing.T, db *DB) {
	ctx := context.Background()
	freezeClock(db) // whole milliseconds: the start date reads back equal
	f := newMirrorFixture(t, db, "app")
	if _, err := db.MirrorByRepository(ctx, f.repo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MirrorByRepository before create: %v, want ErrNotFound", err)
	}
	if _, err := db.MirrorRobotID(ctx, f.repo.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MirrorRobotID before create: %v, want ErrNotFound", err)
	}
	c := mustMirror(t, db, f, func(c *MirrorConfig) {
		c.RegistryConfig = `{"verify_tls":false}`
		c.ArchitectureFilter = []string{"amd64"}
	})
	got := mustMirrorOf(t, db, f.repo.ID)
	if got.ID != c.ID || got.Namespace != "olivia" || got.Repository != "app" || got.RepoState != RepoStateMirror ||
		!got.Enabled || got.RobotID != f.robot.ID || got.RobotName != f.robot.Username ||
		got.ExternalReference != "registry.example.com/library/app" || got.RegistryConfig != `{"verify_tls":false}` ||
		got.SyncInterval != 3600 || got.SyncStatus != MirrorNeverRun || got.SyncRetriesRemaining != MirrorMaxRetries ||
		got.SkopeoTimeout != 300 || !slices.Equal(got.TagPatterns, []string{"v*", "latest"}) ||
		!slices.Equal(got.ArchitectureFilter, []string{"amd64"}) || got.SyncTransactionID == "" ||
		got.SyncStartDate == nil || !got.SyncStartDate.Equal(*c.SyncStartDate) {
		t.Fatalf("read back %+v\nafter create %+v", got, c)
	}
	if got.FullName() != "olivia/app" {
		t.Errorf("FullName = %q", got.FullName())
	}
	if id, err := db.MirrorRobotID(ctx, f.repo.ID); err != nil || id != f.robot.ID {
		t.Errorf("MirrorRobotID = %d, %v", id, err)
	}
	if err := db.CreateMirror(ctx, &MirrorConfig{RepositoryID: f.repo.ID, RobotID: f.robot.ID, ExternalReference: "x/y"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second CreateMirror: %v, want ErrExists", err)
	}

	got.Enabled = false
	got.ExternalReference = "quay.example.com/other/app"
	got.TagPatterns = []string{"stable"}
	got.SyncInterval = 60
	got.SkopeoTimeout = 600
	got.ArchitectureFilter = nil
	got.RegistryConfig = "{}"
	if err := db.UpdateMirror(ctx, got); err != nil {
		t.Fatalf("UpdateMirror: %v", err)
	}
	upd := mustMirrorOf(t, db, f.repo.ID)
	if upd.Enabled || upd.ExternalReference != "quay.example.com/other/app" || !slices.Equal(upd.TagPatterns, []string{"stable"}) ||
		upd.SyncInterval != 60 || upd.SkopeoTimeout != 600 || len(upd.ArchitectureFilter) != 0 || upd.RegistryConfig != "{}" {
		t.Fatalf("after UpdateMirror: %+v", upd)
	}
	if err := db.UpdateMirror(ctx, &MirrorConfig{ID: 1 << 40, RegistryConfig: "{}"}); err == nil {
		t.Fatal("UpdateMirror of a missing row succeeded")
	}
}

func testMirrorRobotPermission(t *testing.T, db *DB) {
	ctx := context.Background()
	f := newMirrorFixture(t, db, "app")
	grantUser(t, db, f.robot, f.repo, RoleRead)
	mustMirror(t, db, f, nil)
	if role, err := db.RepositoryRole(ctx, f.robot.ID, f.repo.ID); err != nil || role != RoleWrite {
		t.Fatalf("robot with read: role after CreateMirror %q, %v; want write", role, err)
	}
	// A robot that already administers the repository keeps admin.
	other := mustRepo(t, db, f.ns, "other", false)
	grantUser(t, db, f.robot, other, RoleAdmin)
	mustMirror(t, db, mirrorFixture{ns: f.ns, robot: f.robot, repo: other}, nil)
	if role, err := db.RepositoryRole(ctx, f.robot.ID, other.ID); err != nil || role != RoleAdmin {
		t.Fatalf("robot with admin: role after CreateMirror %q, %v; want admin", role, err)
	}
}

// The API encrypts the source credentials with DATABASE_SECRET_KEY before
// the store sees them; the columns hold that text, never the plaintext.
func testMirrorCredentialsEncrypted(t *testing.T, db *DB) {
	ctx := context.Background()
	key, err := encfield.DeriveKey("store-test-secret-key")
	if err != nil {
		t.Fatal(err)
	}
	const user, pass = "source-user", "source-password-plain"
	encUser, _ := encfield.Encrypt(key, user)
	encPass, _ := encfield.Encrypt(key, pass)
	f := newMirrorFixture(t, db, "app")
	mustMirror(t, db, f, func(c *MirrorConfig) { c.Username, c.Password = encUser, encPass })
	var rawUser, rawPass string
	if err := db.queryRow(ctx, db.r, `SELECT external_registry_username, external_registry_password FROM repomirrorconfig
		WHERE repository_id = ?`, f.repo.ID).Scan(&rawUser, &rawPass); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rawPass, pass) || strings.Contains(rawUser, user) {
		t.Fatalf("plaintext in the columns: %q %q", rawUser, rawPass)
	}
	for raw, want := range map[string]string{rawUser: user, rawPass: pass} {
		if got, err := encfield.Decrypt(key, raw); err != nil || got != want {
			t.Errorf("Decrypt(column) = %q, %v; want %q", got, err, want)
		}
	}
	got := mustMirrorOf(t, db, f.repo.ID)
	if got.Username != encUser || got.Password != encPass {
		t.Errorf("MirrorByRepository gives %q %q, want the stored ciphertext", got.Username, got.Password)
	}
	// No credentials: NULL columns, read as "".
	f2 := mirrorFixture{ns: f.ns, robot: f.robot, repo: mustRepo(t, db, f.ns, "anon", false)}
	mustMirror(t, db, f2, nil)
	if n := count(t, db, `SELECT COUNT(*) FROM repomirrorconfig WHERE repository_id = ? AND external_registry_password IS NULL`, f2.repo.ID); n != 1 {
		t.Errorf("no password: %d rows with NULL, want 1", n)
	}
	if got := mustMirrorOf(t, db, f2.repo.ID); got.Username != "" || got.Password != "" {
		t.Errorf("no credentials read as %q %q", got.Username, got.Password)
	}
}

func testMirrorDue(t *testing.T, db *DB) {
	clk := freezeClock(db)
	f := newMirrorFixture(t, db, "due")
	mk := func(name string, mutate func(*MirrorConfig)) *Repository {
		r := mustRepo(t, db, f.ns, name, false)
		mustMirror(t, db, mirrorFixture{ns: f.ns, robot: f.robot, repo: r}, mutate)
		return r
	}
	mustMirror(t, db, f, nil)
	future := clk.Now().Add(time.Hour)
	mk("later", func(c *MirrorConfig) { c.SyncStartDate = &future })
	disabled := mk("disabled", func(c *MirrorConfig) { c.Enabled = false })
	mk("nostart", func(c *MirrorConfig) { c.SyncStartDate = nil })
	normal := mk("normal", nil)
	// A repository taken out of state MIRROR is never due.
	mustExec(t, db, `UPDATE repository SET state = ? WHERE id = ?`, RepoStateNormal, normal.ID)
	if got := dueIDs(t, db); !slices.Equal(got, []int64{f.repo.ID}) {
		t.Fatalf("due = %v, want only %d", got, f.repo.ID)
	}
	// SYNC_NOW makes even a disabled or future mirror due.
	if ok, err := db.MirrorSyncNow(context.Background(), disabled.ID); err != nil || !ok {
		t.Fatalf("MirrorSyncNow = %v, %v", ok, err)
	}
	if got := dueIDs(t, db); len(got) != 2 || !slices.Contains(got, disabled.ID) {
		t.Fatalf("due after sync-now = %v", got)
	}
	clk.Advance(2 * time.Hour)
	if got := dueIDs(t, db); len(got) != 3 {
		t.Fatalf("due two hours later = %v, want 3 (the later one too)", got)
	}
}

// Two workers holding the same snapshot race to claim it: exactly one wins.
func testMirrorClaimOneWinner(t *testing.T, db *DB) {
	ctx := context.Background()
	f := newMirrorFixture(t, db, "app")
	mustMirror(t, db, f, nil)
	for round := 0; round < 5; round++ {
		if ok, err := db.MirrorSyncNow(ctx, f.repo.ID); err != nil || !ok {
			t.Fatalf("round %d: MirrorSyncNow = %v, %v", round, ok, err)
		}
		snap := mustMirrorOf(t, db, f.repo.ID)
		const workers = 4
		var wg sync.WaitGroup
		wins := make([]bool, workers)
		claims := make([]*MirrorConfig, workers)
		for i := range workers {
			c := *snap
			claims[i] = &c
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := db.ClaimMirror(ctx, claims[i])
				if err != nil {
					t.Errorf("worker %d: ClaimMirror: %v", i, err)
				}
				wins[i] = ok
			}()
		}
		wg.Wait()
		winner := -1
		for i, w := range wins {
			if w {
				if winner >= 0 {
					t.Fatalf("round %d: workers %d and %d both claimed", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed", round)
		}
		if got := mustMirrorOf(t, db, f.repo.ID); got.SyncStatus != MirrorSyncing || got.SyncTransactionID != claims[winner].SyncTransactionID {
			t.Fatalf("round %d: row %v %q, winner's id %q", round, got.SyncStatus, got.SyncTransactionID, claims[winner].SyncTransactionID)
		}
		if got := dueIDs(t, db); len(got) != 0 {
			t.Fatalf("round %d: a SYNCING mirror is due: %v", round, got)
		}
		// The losers cannot release what they do not hold.
		for i, c := range claims {
			if i == winner {
				continue
			}
			if ok, err := db.ReleaseMirror(ctx, c, MirrorSuccess); err != nil || ok {
				t.Fatalf("round %d: loser %d released: %v, %v", round, i, ok, err)
			}
		}
		if ok, err := db.ReleaseMirror(ctx, claims[winner], MirrorSuccess); err != nil || !ok {
			t.Fatalf("round %d: winner's release = %v, %v", round, ok, err)
		}
	}
}

// A claim held past MirrorClaimDuration (a worker that died) is due again
// and can be taken over; the old holder then learns it lost the claim.
func testMirrorExpiredClaim(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	f := newMirrorFixture(t, db, "app")
	mustMirror(t, db, f, nil)
	first := mustMirrorOf(t, db, f.repo.ID)
	mustClaim(t, db, first)
	if got := dueIDs(t, db); len(got) != 0 {
		t.Fatalf("due while claimed = %v", got)
	}
	clk.Advance(MirrorClaimDuration - time.Minute)
	if got := dueIDs(t, db); len(got) != 0 {
		t.Fatalf("due before the claim expired = %v", got)
	}
	clk.Advance(2 * time.Minute)
	due, err := db.DueMirrors(ctx, 0)
	if err != nil || len(due) != 1 || due[0].SyncStatus != MirrorSyncing {
		t.Fatalf("after expiry DueMirrors = %+v, %v", due, err)
	}
	second := &due[0]
	mustClaim(t, db, second)
	if ok, err := db.ReleaseMirror(ctx, first, MirrorSuccess); err != nil || ok {
		t.Fatalf("the expired holder released: %v, %v", ok, err)
	}
	if ok, err := db.ReleaseMirror(ctx, second, MirrorSuccess); err != nil || !ok {
		t.Fatalf("the new holder's release = %v, %v", ok, err)
	}
	if got := mustMirrorOf(t, db, f.repo.ID); got.SyncStatus != MirrorSuccess || got.SyncExpirationDate != nil {
		t.Fatalf("after release: %v, expiration %v", got.SyncStatus, got.SyncExpirationDate)
	}
}

func testMirrorStatusTransitions(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	f := newMirrorFixture(t, db, "app")
	mustMirror(t, db, f, nil)
	status := func() MirrorStatus { return mustMirrorOf(t, db, f.repo.ID).SyncStatus }

	// NEVER_RUN → SYNCING → SUCCESS; the next start is the next slot of
	// the interval after now, retries full.
	c := mustMirrorOf(t, db, f.repo.ID)
	start := *c.SyncStartDate
	mustClaim(t, db, c)
	if s := status(); s != MirrorSyncing {
		t.Fatalf("after claim: %v", s)
	}
	if ok, err := db.MirrorSyncNow(ctx, f.repo.ID); err != nil || ok {
		t.Fatalf("sync-now while SYNCING = %v, %v; want refused", ok, err)
	}
	clk.Advance(30 * time.Minute) // the sync took a while: now is start + 1h30
	if ok, err := db.ReleaseMirror(ctx, c, MirrorSuccess); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	got := mustMirrorOf(t, db, f.repo.ID)
	if want := start.Add(2 * time.Hour); got.SyncStatus != MirrorSuccess || got.SyncStartDate == nil || !got.SyncStartDate.Equal(want) ||
		got.SyncRetriesRemaining != MirrorMaxRetries {
		t.Fatalf("after success: %v start %v (want %v) retries %d", got.SyncStatus, got.SyncStartDate, want, got.SyncRetriesRemaining)
	}
	if due := dueIDs(t, db); len(due) != 0 {
		t.Fatalf("due right after a success: %v", due)
	}
	if got.SyncStartDate.Before(clk.Now()) {
		t.Fatal("the next start is in the past")
	}

	// SUCCESS → SYNC_NOW (due at once) → CANCEL (not due, no retries, no
	// start) → SYNC_NOW again works.
	if ok, err := db.MirrorSyncNow(ctx, f.repo.ID); err != nil || !ok {
		t.Fatalf("sync-now: %v, %v", ok, err)
	}
	if s, due := status(), dueIDs(t, db); s != MirrorSyncNow || len(due) != 1 {
		t.Fatalf("after sync-now: %v, due %v", s, due)
	}
	if ok, err := db.MirrorSyncCancel(ctx, f.repo.ID); err != nil || !ok {
		t.Fatalf("cancel SYNC_NOW: %v, %v", ok, err)
	}
	got = mustMirrorOf(t, db, f.repo.ID)
	if got.SyncStatus != MirrorCancel || got.SyncRetriesRemaining != 0 || got.SyncStartDate != nil {
		t.Fatalf("after cancel: %v retries %d start %v", got.SyncStatus, got.SyncRetriesRemaining, got.SyncStartDate)
	}
	if due := dueIDs(t, db); len(due) != 0 {
		t.Fatalf("a cancelled mirror is due: %v", due)
	}
	if ok, err := db.MirrorSyncCancel(ctx, f.repo.ID); err != nil || ok {
		t.Fatalf("cancel of a CANCEL mirror = %v, %v; want nothing to cancel", ok, err)
	}

	// Cancel while SYNCING: the holder's claim is gone, its release fails.
	if ok, err := db.MirrorSyncNow(ctx, f.repo.ID); err != nil || !ok {
		t.Fatalf("sync-now after cancel: %v, %v", ok, err)
	}
	if got := mustMirrorOf(t, db, f.repo.ID); got.SyncRetriesRemaining < 1 {
		t.Fatalf("sync-now left %d retries; the worker needs at least one", got.SyncRetriesRemaining)
	}
	c = mustMirrorOf(t, db, f.repo.ID)
	mustClaim(t, db, c)
	if ok, err := db.MirrorSyncCancel(ctx, f.repo.ID); err != nil || !ok {
		t.Fatalf("cancel SYNCING: %v, %v", ok, err)
	}
	if cur := mustMirrorOf(t, db, f.repo.ID); cur.SyncTransactionID == c.SyncTransactionID {
		t.Fatal("cancel kept the worker's transaction id: the worker cannot notice")
	}
	if ok, err := db.ReleaseMirror(ctx, c, MirrorSuccess); err != nil || ok {
		t.Fatalf("release after cancel = %v, %v; want the claim lost", ok, err)
	}
	if s := status(); s != MirrorCancel {
		t.Fatalf("a late release overwrote CANCEL with %v", s)
	}
}

// A failing sync uses up a retry and stays due; the last one reschedules
// to the next interval and refills the retries, as Quay's release_mirror.
func testMirrorRetries(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	f := newMirrorFixture(t, db, "app")
	mustMirror(t, db, f, nil)
	start := *mustMirrorOf(t, db, f.repo.ID).SyncStartDate
	for want := MirrorMaxRetries - 1; want >= 1; want-- {
		c := mustMirrorOf(t, db, f.repo.ID)
		mustClaim(t, db, c)
		if ok, err := db.ReleaseMirror(ctx, c, MirrorFail); err != nil || !ok {
			t.Fatalf("release FAIL: %v, %v", ok, err)
		}
		got := mustMirrorOf(t, db, f.repo.ID)
		if got.SyncStatus != MirrorFail || got.SyncRetriesRemaining != want || !got.SyncStartDate.Equal(start) {
			t.Fatalf("after a failure: %v retries %d (want %d) start %v (want %v)", got.SyncStatus, got.SyncRetriesRemaining, want, got.SyncStartDate, start)
		}
		if due := dueIDs(t, db); !slices.Equal(due, []int64{f.repo.ID}) {
			t.Fatalf("with %d retries left, due = %v", want, due)
		}
	}
	c := mustMirrorOf(t, db, f.repo.ID)
	mustClaim(t, db, c)
	if ok, err := db.ReleaseMirror(ctx, c, MirrorFail); err != nil || !ok {
		t.Fatalf("last release FAIL: %v, %v", ok, err)
	}
	got := mustMirrorOf(t, db, f.repo.ID)
	if got.SyncStatus != MirrorFail || got.SyncRetriesRemaining != MirrorMaxRetries || !got.SyncStartDate.After(clk.Now()) {
		t.Fatalf("after the last retry: %v retries %d start %v (now %v)", got.SyncStatus, got.SyncRetriesRemaining, got.SyncStartDate, clk.Now())
	}
	if due := dueIDs(t, db); len(due) != 0 {
		t.Fatalf("due after the retries ran out: %v", due)
	}
	clk.Advance(time.Hour)
	if due := dueIDs(t, db); !slices.Equal(due, []int64{f.repo.ID}) {
		t.Fatalf("due at the next interval = %v", due)
	}
}
