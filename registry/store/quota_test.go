package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestQuota runs the quota cases on SQLite and PostgreSQL.
func TestQuota(t *testing.T) {
	cases := []struct {
		name  string
		heavy bool
		fn    func(t *testing.T, db *DB)
	}{
		{"CountsDistinctBlobs", false, testQuotaDistinct},
		{"RandomizedEqualsRecount", true, testQuotaRandomized},
		{"ConcurrentPushes", true, testQuotaConcurrent},
		{"ConcurrentPushesAgainstReject", true, testQuotaConcurrentReject},
		{"RepositoryPurge", false, testQuotaPurge},
		{"RejectInsideTransaction", false, testQuotaReject},
		{"Verdicts", false, testQuotaVerdicts},
		{"LimitsCRUD", false, testQuotaLimits},
		{"BackfillAfterFeatureOff", false, testQuotaBackfill},
		{"RegistrySize", false, testQuotaRegistrySize},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.heavy && testing.Short() {
					t.Skip("heavy: skipped with -short")
				}
				db := openMigrated(t, b)
				db.SetQuotaPolicy(QuotaPolicy{Track: true, Verify: true})
				tc.fn(t, db)
			})
		}
	})
}

// quotaImage links blobs with the given contents to the repository and
// returns params of a manifest referencing them (the first is the config).
func quotaImage(t *testing.T, db *DB, repoID int64, tag string, contents ...string) PutManifestParams {
	t.Helper()
	var digests []string
	var b strings.Builder
	b.WriteString(`{"schemaVersion":2,"mediaType":"` + mtOCIManifest + `","blobs":[`)
	for i, c := range contents {
		d := mustBlob(t, db, repoID, c)
		digests = append(digests, d)
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + d + `"`)
	}
	b.WriteString(`]}`)
	body := b.String()
	return PutManifestParams{RepositoryID: repoID, Tag: tag, TempTagTTL: time.Hour, BlobDigests: digests,
		Manifest: Manifest{Digest: digestOf(body), MediaType: mtOCIManifest, Bytes: []byte(body)}}
}

func quotaIndex(repoID int64, tag string, children ...string) PutManifestParams {
	body := `{"schemaVersion":2,"mediaType":"` + mtOCIIndex + `","manifests":["` + strings.Join(children, `","`) + `"]}`
	return PutManifestParams{RepositoryID: repoID, Tag: tag, TempTagTTL: time.Hour, ChildDigests: children,
		Manifest: Manifest{Digest: digestOf(body), MediaType: mtOCIIndex, Bytes: []byte(body)}}
}

// checkRecount fails when a recorded size differs from a recount.
func checkRecount(t *testing.T, db *DB, nsID int64, repoIDs ...int64) int64 {
	t.Helper()
	ctx := context.Background()
	want, err := db.RecountNamespace(ctx, nsID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.NamespaceSize(ctx, nsID)
	switch {
	case errors.Is(err, ErrNotFound) && want == 0:
	case err != nil:
		t.Fatalf("NamespaceSize: %v", err)
	case got.SizeBytes != want || !got.BackfillComplete:
		t.Fatalf("namespace %d: recorded %+v, recount %d", nsID, *got, want)
	}
	for _, r := range repoIDs {
		want, err := db.RecountRepository(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.RepositorySize(ctx, r)
		switch {
		case errors.Is(err, ErrNotFound) && want == 0:
		case err != nil:
			t.Fatalf("RepositorySize: %v", err)
		case got.SizeBytes != want:
			t.Fatalf("repository %d: recorded %d, recount %d", r, got.SizeBytes, want)
		}
	}
	return want
}

func testQuotaDistinct(t *testing.T, db *DB) {
	ns := mustUser(t, db, "acme", true)
	other := mustUser(t, db, "other", true)
	r1, r2 := mustRepo(t, db, ns, "one", false), mustRepo(t, db, ns, "two", false)
	r3 := mustRepo(t, db, other, "three", false)
	shared := strings.Repeat("s", 1000)
	steps := []struct {
		name           string
		put            PutManifestParams
		wantNS, wantR1 int64
	}{
		{"first image", quotaImage(t, db, r1.ID, "a", "cfg-a", shared), 1005, 1005},
		{"second tag, same blob", quotaImage(t, db, r1.ID, "b", "cfg-b", shared), 1010, 1010},
		{"other repo shares the blob", quotaImage(t, db, r2.ID, "a", "cfg-c", shared), 1015, 1010},
		{"other namespace does not count", quotaImage(t, db, r3.ID, "a", "cfg-d", shared), 1015, 1010},
	}
	for _, s := range steps {
		mustPut(t, db, s.put)
		if got := checkRecount(t, db, ns.ID, r1.ID, r2.ID); got != s.wantNS {
			t.Errorf("%s: namespace size %d, want %d", s.name, got, s.wantNS)
		}
		if got, _ := db.RecountRepository(context.Background(), r1.ID); got != s.wantR1 {
			t.Errorf("%s: repository size %d, want %d", s.name, got, s.wantR1)
		}
	}
	// An index over both images adds nothing: its children's blobs are
	// already counted through the children.
	a := quotaImage(t, db, r1.ID, "", "cfg-a", shared).Manifest.Digest
	b := quotaImage(t, db, r1.ID, "", "cfg-b", shared).Manifest.Digest
	mustPut(t, db, quotaIndex(r1.ID, "multi", a, b))
	if got := checkRecount(t, db, ns.ID, r1.ID, r2.ID); got != 1015 {
		t.Errorf("after index: %d, want 1015", got)
	}
	if err := db.DeleteManifest(context.Background(), r2.ID, steps[2].put.Manifest.Digest); err != nil {
		t.Fatal(err)
	}
	if got := checkRecount(t, db, ns.ID, r1.ID, r2.ID); got != 1010 {
		t.Errorf("after delete: %d, want 1010", got)
	}
}

func testQuotaRandomized(t *testing.T, db *DB) {
	ctx := context.Background()
	clk := freezeClock(db)
	rng := rand.New(rand.NewSource(42))
	ns := mustUser(t, db, "acme", true)
	mustExec(t, db, `UPDATE "user" SET removed_tag_expiration_s = 0 WHERE id = ?`, ns.ID)
	repos := []*Repository{mustRepo(t, db, ns, "a", false), mustRepo(t, db, ns, "b", false), mustRepo(t, db, ns, "c", false)}
	ids := []int64{repos[0].ID, repos[1].ID, repos[2].ID}
	pool := make([]string, 12)
	for i := range pool {
		pool[i] = fmt.Sprintf("blob-%d-%s", i, strings.Repeat("x", rng.Intn(5000)))
	}
	pushed := map[int64][]string{} // repo -> manifest digests
	for step := 0; step < 60; step++ {
		r := ids[rng.Intn(len(ids))]
		tag := []string{"x", "y", "z"}[rng.Intn(3)]
		op := rng.Intn(10)
		switch {
		case op < 5: // image with 1-3 pool layers
			layers := []string{fmt.Sprintf("cfg-%d", step)}
			for n := 1 + rng.Intn(3); n > 0; n-- {
				layers = append(layers, pool[rng.Intn(len(pool))])
			}
			m := mustPut(t, db, quotaImage(t, db, r, tag, layers...))
			pushed[r] = append(pushed[r], m.Digest)
		case op < 6 && len(pushed[r]) > 1: // index of two of the repo's manifests
			if _, err := db.PutManifest(ctx, quotaIndex(r, tag, pushed[r][0], pushed[r][len(pushed[r])-1])); err != nil &&
				!errors.As(err, new(ManifestUnknownError)) {
				t.Fatal(err)
			}
		case op < 8 && len(pushed[r]) > 0: // delete a manifest
			i := rng.Intn(len(pushed[r]))
			if err := db.DeleteManifest(ctx, r, pushed[r][i]); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			pushed[r] = append(pushed[r][:i], pushed[r][i+1:]...)
		case op < 9:
			_ = db.DeleteTag(ctx, r, tag)
		default: // garbage collection of what tags no longer keep
			clk.Advance(2 * time.Hour)
			gcRunOnce(t, db, false)
		}
		checkRecount(t, db, ns.ID, ids...)
	}
	clk.Advance(3 * time.Hour)
	for _, r := range ids {
		for _, tag := range []string{"x", "y", "z"} {
			_ = db.DeleteTag(ctx, r, tag)
		}
	}
	clk.Advance(time.Second)
	gcRunOnce(t, db, false)
	gcRunOnce(t, db, false)
	if got := checkRecount(t, db, ns.ID, ids...); got != 0 {
		t.Errorf("after collecting everything: %d bytes left", got)
	}
}

func testQuotaConcurrent(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "acme", true)
	// Pushes into different repositories do not share the per-repository
	// tag lock, so only the namespace lock keeps their recounts in order.
	var repos []*Repository
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		repos = append(repos, mustRepo(t, db, ns, n, false))
	}
	pool := []string{strings.Repeat("p", 700), strings.Repeat("q", 1300), strings.Repeat("r", 2900)}
	var ids []int64
	for _, r := range repos {
		ids = append(ids, r.ID)
	}
	// Short bursts, checked after each: a lost update shows in the last
	// writes of a burst, which no later push corrects.
	for round := 0; round < 6; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 2; i++ {
					r := repos[(g+i+round)%len(repos)]
					layers := []string{fmt.Sprintf("cfg-%d-%d-%d", round, g, i), pool[(g+i)%3],
						fmt.Sprintf("own-%d-%d-%d-%s", round, g, i, strings.Repeat("o", g*100))}
					var digests []string
					for _, c := range layers {
						d := digestOf(c)
						if _, err := db.LinkBlob(ctx, r.ID, d, int64(len(c)), "local_us", time.Hour); err != nil {
							errs <- err
							return
						}
						digests = append(digests, d)
					}
					body := fmt.Sprintf(`{"r":%d,"g":%d,"i":%d,"blobs":%q}`, round, g, i, digests)
					if _, err := db.PutManifest(ctx, PutManifestParams{RepositoryID: r.ID, Tag: fmt.Sprintf("t%d", g), BlobDigests: digests,
						Manifest: Manifest{Digest: digestOf(body), MediaType: mtOCIManifest, Bytes: []byte(body)}}); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkRecount(t, db, ns.ID, ids...)
	}
}

// testQuotaConcurrentReject races pushes into one namespace whose Reject
// limit leaves room for exactly one of them: each transaction alone fits,
// so only the namespace lock (each recount sees what the previous push
// committed) stops a second one from slipping under the limit too.
func testQuotaConcurrentReject(t *testing.T, db *DB) {
	ctx := context.Background()
	const pushes, rounds = 6, 4
	for round := 0; round < rounds; round++ {
		ns := mustUser(t, db, fmt.Sprintf("race%d", round), true)
		var repos []*Repository
		for i := 0; i < pushes; i++ {
			repos = append(repos, mustRepo(t, db, ns, fmt.Sprintf("r%d", i), false))
		}
		// A first push creates the namespace's size row, so the racers
		// meet at its row lock rather than at its unique index.
		mustPut(t, db, quotaImage(t, db, repos[0].ID, "base", "base-cfg", strings.Repeat("b", 92)))
		base := checkRecount(t, db, ns.ID)
		const limit = 1000
		q, err := db.CreateQuota(ctx, ns.ID, limit)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateQuotaLimit(ctx, q.ID, "Reject", 100); err != nil {
			t.Fatal(err)
		}
		params := make([]PutManifestParams, pushes)
		for i := range params {
			// Distinct blobs of ~600 bytes: base+one ≤ limit < base+two.
			params[i] = quotaImage(t, db, repos[i].ID, "t", fmt.Sprintf("cfg-%d-%d", round, i),
				fmt.Sprintf("layer-%d-%d-%s", round, i, strings.Repeat("l", 590)))
		}
		start := make(chan struct{})
		errs := make([]error, pushes)
		var wg sync.WaitGroup
		for i := range params {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				_, errs[i] = db.PutManifest(ctx, params[i])
			}(i)
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			var qe QuotaExceededError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &qe):
				if qe.LimitBytes != limit || qe.SizeBytes <= limit {
					t.Errorf("round %d push %d: %+v, want a size over %d", round, i, qe, limit)
				}
			default:
				t.Errorf("round %d push %d: %v, want success or QuotaExceededError", round, i, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of %d concurrent pushes succeeded, want exactly 1", round, ok, pushes)
		}
		ids := make([]int64, len(repos))
		for i, r := range repos {
			ids[i] = r.ID
		}
		size := checkRecount(t, db, ns.ID, ids...)
		if size > limit || size <= base {
			t.Errorf("round %d: namespace size %d, want within (%d, %d]", round, size, base, limit)
		}
	}
}

// testQuotaPurge: a deleted repository counts until garbage collection
// purges it, then the namespace shrinks in the purge's transaction; a dry
// run changes nothing.
func testQuotaPurge(t *testing.T, db *DB) {
	ctx := context.Background()
	freezeClock(db)
	ns := mustUser(t, db, "acme", true)
	keep, gone := mustRepo(t, db, ns, "keep", false), mustRepo(t, db, ns, "gone", false)
	shared := strings.Repeat("s", 500)
	mustPut(t, db, quotaImage(t, db, keep.ID, "a", "cfg-keep", shared))
	mustPut(t, db, quotaImage(t, db, gone.ID, "a", "cfg-gone", strings.Repeat("g", 300), shared))
	if got := checkRecount(t, db, ns.ID, keep.ID, gone.ID); got != 508+300+8 {
		t.Fatalf("before: %d", got)
	}
	if err := db.DeleteRepository(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	gcRunOnce(t, db, true)
	if got := checkRecount(t, db, ns.ID, keep.ID); got != 816 {
		t.Errorf("after the dry run: %d, want 816", got)
	}
	gcRunOnce(t, db, false)
	if got := checkRecount(t, db, ns.ID, keep.ID); got != 508 {
		t.Errorf("after the purge: %d, want 508", got)
	}
}

func testQuotaReject(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "acme", true)
	repo := mustRepo(t, db, ns, "app", false)
	q, err := db.CreateQuota(ctx, ns.ID, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateQuotaLimit(ctx, q.ID, "reject", 100); err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, quotaImage(t, db, repo.ID, "small", "cfg", strings.Repeat("a", 1500)))
	big := quotaImage(t, db, repo.ID, "big", "cfg2", strings.Repeat("b", 600))
	_, err = db.PutManifest(ctx, big)
	var qe QuotaExceededError
	if !errors.As(err, &qe) || qe.LimitBytes != 2000 || qe.SizeBytes != 2107 {
		t.Fatalf("PutManifest over the limit: %v, want QuotaExceededError 2107 > 2000", err)
	}
	if _, err := db.ManifestByDigest(ctx, repo.ID, big.Manifest.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused manifest stayed: %v", err)
	}
	if _, _, err := db.ManifestByTag(ctx, repo.ID, "big"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused tag stayed: %v", err)
	}
	if got := checkRecount(t, db, ns.ID, repo.ID); got != 1503 {
		t.Errorf("size %d after the refusal, want 1503", got)
	}
	// Retagging what is already counted adds nothing and is allowed.
	small := quotaImage(t, db, repo.ID, "again", "cfg", strings.Repeat("a", 1500))
	mustPut(t, db, small)
	// Without Verify the push goes through.
	db.SetQuotaPolicy(QuotaPolicy{Track: true})
	mustPut(t, db, big)
	checkRecount(t, db, ns.ID, repo.ID)
}

func testQuotaVerdicts(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "acme", true)
	none := mustUser(t, db, "free", true)
	q, err := db.CreateQuota(ctx, ns.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		typ string
		p   int
	}{{"Warning", 50}, {"warning", 80}, {"Reject", 100}} {
		if _, err := db.CreateQuotaLimit(ctx, q.ID, l.typ, l.p); err != nil {
			t.Fatal(err)
		}
	}
	db.SetQuotaPolicy(QuotaPolicy{Track: true, Verify: true, DefaultRejectBytes: 300})
	cases := []struct {
		ns            int64
		extra         int64
		wantSeverity  string
		wantThreshold int64
	}{
		{ns.ID, 500, "", 0},
		{ns.ID, 501, QuotaWarning, 500},
		{ns.ID, 801, QuotaWarning, 800},
		{ns.ID, 1000, QuotaWarning, 800},
		{ns.ID, 1001, QuotaReject, 1000},
		{none.ID, 300, "", 0},
		{none.ID, 301, QuotaReject, 300},
	}
	for _, c := range cases {
		v, err := db.CheckQuota(ctx, c.ns, c.extra)
		if err != nil {
			t.Fatal(err)
		}
		if v.Severity != c.wantSeverity || v.ThresholdB != c.wantThreshold {
			t.Errorf("ns %d + %d: %+v, want %q at %d", c.ns, c.extra, *v, c.wantSeverity, c.wantThreshold)
		}
	}
}

func testQuotaLimits(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "acme", true)
	if _, err := db.CreateQuota(ctx, ns.ID, -1); !errors.As(err, new(InvalidInputError)) {
		t.Errorf("negative limit: %v", err)
	}
	q, err := db.CreateQuota(ctx, ns.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateQuota(ctx, ns.ID, 20); !errors.Is(err, ErrExists) {
		t.Errorf("second quota: %v, want ErrExists", err)
	}
	w, err := db.CreateQuotaLimit(ctx, q.ID, "WARNING", 80)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		typ     string
		percent int
		want    func(error) bool
	}{
		{"Warning", 80, func(err error) bool { return errors.Is(err, ErrExists) }},
		{"Warning", 0, func(err error) bool { return errors.As(err, new(InvalidInputError)) }},
		{"Reject", 101, func(err error) bool { return errors.As(err, new(InvalidInputError)) }},
		{"Block", 50, func(err error) bool { return errors.As(err, new(InvalidInputError)) }},
	}
	for _, b := range bad {
		if _, err := db.CreateQuotaLimit(ctx, q.ID, b.typ, b.percent); !b.want(err) {
			t.Errorf("CreateQuotaLimit(%s, %d): %v", b.typ, b.percent, err)
		}
	}
	if _, err := db.CreateQuotaLimit(ctx, q.ID, "Reject", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateQuotaLimit(ctx, q.ID, "Reject", 90); !errors.Is(err, ErrExists) {
		t.Errorf("second Reject: %v", err)
	}
	if err := db.UpdateQuotaLimit(ctx, w.ID, "Warning", 70); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateQuota(ctx, q.ID, 5000); err != nil {
		t.Fatal(err)
	}
	got, err := db.NamespaceQuota(ctx, ns.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LimitBytes != 5000 || len(got.Limits) != 2 || got.Limits[0] != (QuotaLimit{ID: w.ID, QuotaID: q.ID, Type: QuotaWarning, Percent: 70}) {
		t.Errorf("quota %+v", *got)
	}
	if err := db.DeleteQuotaLimit(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteQuotaLimit(ctx, w.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := db.DeleteQuota(ctx, q.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NamespaceQuota(ctx, ns.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func testQuotaBackfill(t *testing.T, db *DB) {
	ctx := context.Background()
	db.SetQuotaPolicy(QuotaPolicy{})
	ns := mustUser(t, db, "acme", true)
	user := mustUser(t, db, "alice", false)
	r1, r2 := mustRepo(t, db, ns, "one", false), mustRepo(t, db, user, "two", false)
	mustPut(t, db, quotaImage(t, db, r1.ID, "a", "cfg1", strings.Repeat("1", 100)))
	mustPut(t, db, quotaImage(t, db, r2.ID, "a", "cfg2", strings.Repeat("2", 200)))
	if n := count(t, db, `SELECT COUNT(*) FROM quotanamespacesize`); n != 0 {
		t.Fatalf("%d size rows written with tracking off", n)
	}
	db.SetQuotaPolicy(QuotaPolicy{Track: true})
	n, err := db.BackfillQuotaSizes(ctx, 100)
	if err != nil || n != 2 { // acme and alice
		t.Fatalf("BackfillQuotaSizes = %d, %v; want 2", n, err)
	}
	if got := checkRecount(t, db, ns.ID, r1.ID); got != 104 {
		t.Errorf("acme: %d", got)
	}
	if got := checkRecount(t, db, user.ID, r2.ID); got != 204 {
		t.Errorf("alice: %d", got)
	}
	if n, _ := db.BackfillQuotaSizes(ctx, 100); n != 0 {
		t.Errorf("second backfill computed %d namespaces", n)
	}
	// Off again: a change marks the rows stale instead of leaving a wrong
	// size marked complete; the next backfill fixes them.
	db.SetQuotaPolicy(QuotaPolicy{})
	mustPut(t, db, quotaImage(t, db, r1.ID, "b", "cfg3", strings.Repeat("3", 300)))
	if s, _ := db.NamespaceSize(ctx, ns.ID); s.BackfillComplete {
		t.Errorf("stale size still marked complete: %+v", *s)
	}
	db.SetQuotaPolicy(QuotaPolicy{Track: true})
	if n, _ := db.BackfillQuotaSizes(ctx, 100); n != 1 {
		t.Errorf("third backfill computed %d namespaces, want 1", n)
	}
	checkRecount(t, db, ns.ID, r1.ID)
}

func testQuotaRegistrySize(t *testing.T, db *DB) {
	ctx := context.Background()
	ns := mustUser(t, db, "acme", true)
	repo := mustRepo(t, db, ns, "app", false)
	mustPut(t, db, quotaImage(t, db, repo.ID, "a", "cfg", strings.Repeat("x", 96)))
	if ran, err := db.UpdateRegistrySize(ctx); err != nil || ran {
		t.Fatalf("UpdateRegistrySize before queueing = %t, %v", ran, err)
	}
	if err := db.QueueRegistrySize(ctx); err != nil {
		t.Fatal(err)
	}
	if ran, err := db.UpdateRegistrySize(ctx); err != nil || !ran {
		t.Fatalf("UpdateRegistrySize = %t, %v", ran, err)
	}
	rs, err := db.RegistrySize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs.SizeBytes != 99 || rs.Queued || rs.Running || rs.CompletedMs == nil {
		t.Errorf("registry size %+v, want 99 bytes, done", *rs)
	}
}
