package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestGarbageCollection runs the GC and time machine cases on SQLite and
// PostgreSQL.
func TestGarbageCollection(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, db *DB)
	}{
		{"TimeMachineWindow", testGCTimeMachineWindow},
		{"SharedBlobsAndIndexes", testGCSharedBlobsAndIndexes},
		{"DeletedRepository", testGCDeletedRepository},
		{"ConcurrentPassesPurgeOnce", testGCConcurrentPasses},
		{"TombstoneAndLinkBlob", testGCTombstone},
		{"TagExpirationMoveRestore", testTagTimeMachine},
		{"DefaultTagExpiration", testDefaultTagExpiration},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, openMigrated(t, b)) })
		}
	})
}

func gcRunOnce(t *testing.T, db *DB, dry bool) *GCResult {
	t.Helper()
	res, err := db.CollectGarbage(context.Background(), GCOptions{DryRun: dry})
	if err != nil {
		t.Fatalf("CollectGarbage(dry=%t): %v", dry, err)
	}
	if len(res.Failures) > 0 {
		t.Fatalf("failures: %v", res.Failures)
	}
	return res
}

type gcCounts struct{ tags, manifests, blobs, tombstones int }

func countAll(t *testing.T, db *DB) gcCounts {
	return gcCounts{
		tags:       count(t, db, `SELECT COUNT(*) FROM tag`),
		manifests:  count(t, db, `SELECT COUNT(*) FROM manifest`),
		blobs:      count(t, db, `SELECT COUNT(*) FROM imagestorage`),
		tombstones: count(t, db, `SELECT COUNT(*) FROM quayctl_blob_tombstone`),
	}
}

func testGCTimeMachineWindow(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	ns := mustUser(t, db, "alice", false)
	mustExec(t, db, `UPDATE "user" SET removed_tag_expiration_s = 3600 WHERE id = ?`, ns.ID)
	repo := mustRepo(t, db, ns, "app", false)
	mustPut(t, db, image(t, db, repo.ID, "one", "latest"))
	clk.Advance(2 * time.Hour) // upload links expire (1 h + 5 min margin)
	if err := db.DeleteTag(ctx, repo.ID, "latest"); err != nil {
		t.Fatal(err)
	}
	before := countAll(t, db)

	steps := []struct {
		advance time.Duration
		dry     bool
		want    GCResult // counts only
		after   gcCounts
	}{
		{0, false, GCResult{}, before},                                   // inside the window: kept
		{59 * time.Minute, false, GCResult{}, before},                    // still inside
		{2 * time.Minute, true, GCResult{Tags: 1, Manifests: 1}, before}, // dry run: reported, nothing changes
		{0, false, GCResult{Tags: 1, Manifests: 1}, gcCounts{0, 0, 0, 2}},
		{0, false, GCResult{}, gcCounts{0, 0, 0, 2}}, // idempotent
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		got := gcRunOnce(t, db, s.dry)
		wantBlobs := 0
		if s.want.Manifests > 0 {
			wantBlobs = 2
		}
		if got.Tags != s.want.Tags || got.Manifests != s.want.Manifests || len(got.Blobs) != wantBlobs {
			t.Errorf("step %d: tags=%d manifests=%d blobs=%d, want %d %d %d", i, got.Tags, got.Manifests, len(got.Blobs),
				s.want.Tags, s.want.Manifests, wantBlobs)
		}
		if got.Manifests > 0 && got.ManifestBytes == 0 {
			t.Errorf("step %d: manifest bytes not counted", i)
		}
		if c := countAll(t, db); c != s.after {
			t.Errorf("step %d: rows %+v, want %+v", i, c, s.after)
		}
	}
	pending, err := db.PendingBlobDeletions(ctx, 0)
	if err != nil || len(pending) != 2 || pending[0].Locations[0] != "local_us" {
		t.Fatalf("PendingBlobDeletions = %+v, %v", pending, err)
	}
}

func testGCSharedBlobsAndIndexes(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	ns := mustUser(t, db, "bob", false)
	mustExec(t, db, `UPDATE "user" SET removed_tag_expiration_s = 0 WHERE id = ?`, ns.ID)
	a := mustRepo(t, db, ns, "a", false)
	b := mustRepo(t, db, ns, "b", false)
	// The same image in two repositories: the blobs are shared.
	pa := image(t, db, a.ID, "shared", "")
	ma := mustPut(t, db, pa)
	pb := image(t, db, b.ID, "shared", "v1")
	mustPut(t, db, pb)
	// An index in a whose only child is ma.
	idx := `{"schemaVersion":2,"mediaType":"` + mtOCIIndex + `","manifests":[{"digest":"` + ma.Digest + `"}]}`
	mustPut(t, db, PutManifestParams{RepositoryID: a.ID, Manifest: Manifest{Digest: digestOf(idx), MediaType: mtOCIIndex,
		Bytes: []byte(idx)}, ChildDigests: []string{ma.Digest}, Tag: "multi"})
	clk.Advance(2 * time.Hour) // temporary tags and upload links expire
	if r := gcRunOnce(t, db, false); r.Manifests != 0 || len(r.Blobs) != 0 || r.Tags != 1 {
		t.Fatalf("child kept by its index: got %+v", r) // the $temp tag row goes
	}
	if err := db.DeleteTag(ctx, a.ID, "multi"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	r := gcRunOnce(t, db, false)
	if r.Manifests != 2 || r.Tags != 1 || len(r.Blobs) != 0 {
		t.Fatalf("index and child go, blobs stay (b uses them): got tags=%d manifests=%d blobs=%d", r.Tags, r.Manifests, len(r.Blobs))
	}
	if _, err := db.RepositoryBlob(ctx, b.ID, pb.BlobDigests[1]); err != nil {
		t.Fatalf("blob of b lost: %v", err)
	}
}

func testGCDeletedRepository(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	ns := mustUser(t, db, "carol", false)
	repo := mustRepo(t, db, ns, "gone", false)
	mustPut(t, db, image(t, db, repo.ID, "g", "latest"))
	if err := db.CreateUpload(ctx, &Upload{RepositoryID: repo.ID, Location: "local_us"}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRepository(ctx, repo.ID); err != nil {
		t.Fatal(err)
	}
	dry := gcRunOnce(t, db, true)
	if dry.Repositories != 1 || dry.Manifests != 1 || len(dry.Uploads) != 1 {
		t.Fatalf("dry run = %+v", dry)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM repository WHERE id = ?`, repo.ID); n != 1 {
		t.Fatal("dry run deleted the repository")
	}
	r := gcRunOnce(t, db, false)
	if r.Repositories != 1 || r.Manifests != 1 || r.Tags != 1 || len(r.Uploads) != 1 {
		t.Fatalf("purge = %+v", r)
	}
	for _, q := range []string{`SELECT COUNT(*) FROM repository`, `SELECT COUNT(*) FROM deletedrepository`,
		`SELECT COUNT(*) FROM queueitem`, `SELECT COUNT(*) FROM blobupload`, `SELECT COUNT(*) FROM manifest`} {
		if n := count(t, db, q); n != 0 {
			t.Errorf("%s = %d after purge", q, n)
		}
	}
	// The repository's upload links went with it, so its blobs go in the
	// same pass.
	if len(r.Blobs) != 2 {
		t.Fatalf("blobs of the purged repository = %+v", r.Blobs)
	}
	_ = clk
}

// testGCConcurrentPasses: two passes at once (two replicas) purge each
// deleted repository exactly once.
func testGCConcurrentPasses(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "dave", false)
	const repos = 6
	for i := 0; i < repos; i++ {
		r := mustRepo(t, db, ns, "r"+string(rune('a'+i)), false)
		mustPut(t, db, image(t, db, r.ID, "x"+string(rune('a'+i)), "latest"))
		if err := db.DeleteRepository(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := db.CollectGarbage(ctx, GCOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total += res.Repositories
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != repos {
		t.Fatalf("purged %d repositories in total, want %d", total, repos)
	}
}

func testGCTombstone(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	ns := mustUser(t, db, "erin", false)
	repo := mustRepo(t, db, ns, "r", false)
	d1 := mustBlob(t, db, repo.ID, "lonely one")
	d2 := mustBlob(t, db, repo.ID, "lonely two")
	clk.Advance(2 * time.Hour)
	if r := gcRunOnce(t, db, false); len(r.Blobs) != 2 {
		t.Fatalf("blobs = %+v", r.Blobs)
	}
	// d1 is pushed again before its object goes: the tombstone is
	// cancelled and the object must not be deleted.
	if _, err := db.LinkBlob(ctx, repo.ID, d1, 10, "local_us", time.Hour); err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	del := func(d string) func(context.Context, []string) error {
		return func(context.Context, []string) error { calls[d]++; return nil }
	}
	for _, d := range []string{d1, d2} {
		if _, err := db.DeleteBlobObject(ctx, d, del(d)); err != nil {
			t.Fatal(err)
		}
	}
	if calls[d1] != 0 || calls[d2] != 1 {
		t.Fatalf("deletions = %v, want only %s", calls, d2)
	}
	// d2's object is gone: a link now must be verified.
	missing := errors.New("not in storage")
	cases := []struct {
		name    string
		verify  func(context.Context, string, string) error
		wantErr error
	}{
		{"object missing", func(context.Context, string, string) error { return missing }, ErrBlobGone},
		{"object present", func(context.Context, string, string) error { return nil }, nil},
	}
	for _, tc := range cases {
		db.SetBlobVerifier(tc.verify)
		_, err := db.LinkBlob(ctx, repo.ID, d2, 10, "local_us", time.Hour)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: LinkBlob err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM quayctl_blob_tombstone`); n != 0 {
		t.Errorf("tombstones left: %d", n)
	}
}

func testTagTimeMachine(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	ns := mustUser(t, db, "frank", false)
	mustExec(t, db, `UPDATE "user" SET removed_tag_expiration_s = 60 WHERE id = ?`, ns.ID)
	repo := mustRepo(t, db, ns, "r", false)
	m1 := mustPut(t, db, image(t, db, repo.ID, "1", "latest"))
	m2 := mustPut(t, db, image(t, db, repo.ID, "2", "other"))

	// Expiration: future only, clearable.
	past := clk.Now().Add(-time.Second)
	if _, err := db.SetTagExpiration(ctx, repo.ID, "latest", &past); !errors.As(err, &InvalidInputError{}) {
		t.Fatalf("past expiration err = %v", err)
	}
	future := clk.Now().Add(time.Hour)
	if old, err := db.SetTagExpiration(ctx, repo.ID, "latest", &future); err != nil || old != nil {
		t.Fatalf("SetTagExpiration = %v, %v", old, err)
	}
	if old, err := db.SetTagExpiration(ctx, repo.ID, "latest", nil); err != nil || old == nil || *old != future.UnixMilli() {
		t.Fatalf("clear expiration: old = %v, %v", old, err)
	}
	if _, err := db.SetTagExpiration(ctx, repo.ID, "nope", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tag err = %v", err)
	}

	// Move latest to m2, then restore it to m1 within the window.
	clk.Advance(time.Second)
	old, err := db.RetargetTag(ctx, repo.ID, "latest", m2.Digest)
	if err != nil || old == nil || old.ManifestID != m1.ID {
		t.Fatalf("RetargetTag = %+v, %v", old, err)
	}
	if _, err := db.RetargetTag(ctx, repo.ID, "latest", digestOf("nothing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("move to unknown manifest err = %v", err)
	}
	clk.Advance(30 * time.Second)
	if err := db.RestoreTag(ctx, repo.ID, "latest", m1.Digest); err != nil {
		t.Fatalf("restore within window: %v", err)
	}
	m, tag, err := db.ManifestByTag(ctx, repo.ID, "latest")
	if err != nil || m.ID != m1.ID || !tag.Reversion {
		t.Fatalf("after restore: %+v %+v %v", m, tag, err)
	}
	// Delete other; after the window it cannot come back.
	if err := db.DeleteTag(ctx, repo.ID, "other"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	// latest's m2 row (ended 30 s ago) keeps m2 recoverable still.
	clk.Advance(61 * time.Second)
	if err := db.RestoreTag(ctx, repo.ID, "other", m2.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("restore after window err = %v", err)
	}
}

func testDefaultTagExpiration(t *testing.T, db *DB) {
	cases := []struct {
		set  *time.Duration
		want int64
	}{
		{nil, 1209600},
		{ptr(24 * time.Hour), 86400},
		{ptr(time.Duration(0)), 0},
	}
	for i, tc := range cases {
		if tc.set != nil {
			db.SetDefaultTagExpiration(*tc.set)
		}
		u := mustUser(t, db, "user"+string(rune('a'+i)), false)
		if u.RemovedTagExpirationS != tc.want {
			t.Errorf("case %d: removed_tag_expiration_s = %d, want %d", i, u.RemovedTagExpirationS, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
