package replication

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/tests3"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/local"
	"github.com/quayctl/quayctl/registry/storage/s3"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) {
	stop := tests3.Begin()
	code := testpg.Run(m)
	stop()
	os.Exit(code)
}

func TestOrder(t *testing.T) {
	drivers := map[string]storage.Driver{"us": nil, "eu": nil, "ap": nil}
	tests := []struct {
		name               string
		placed, preference []string
		want               []string
	}{
		{"preference first", []string{"ap", "eu", "us"}, []string{"eu", "us"}, []string{"eu", "us", "ap"}},
		{"preferred lacks it", []string{"us"}, []string{"eu", "us"}, []string{"us"}},
		{"not in preference, by name", []string{"us", "ap"}, []string{"eu"}, []string{"ap", "us"}},
		{"unconfigured location skipped", []string{"mars", "us"}, []string{"mars", "us"}, []string{"us"}},
		{"nothing placed", nil, []string{"eu"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Order(tt.placed, tt.preference, drivers); !slices.Equal(got, tt.want) {
				t.Errorf("Order = %v, want %v", got, tt.want)
			}
		})
	}
}

// region is one S3 "region": its own gateway and a bucket on it.
type region struct {
	srv    *tests3.Server
	driver storage.Driver
}

func newRegion(t *testing.T) region {
	t.Helper()
	srv := tests3.NewServer(t)
	bucket := srv.NewBucket(t)
	d, err := s3.New(t.Context(), s3.NameS3, map[string]any{
		"storage_path": "/registry", "s3_bucket": bucket, "s3_access_key": srv.AccessKey,
		"s3_secret_key": srv.SecretKey, "endpoint_url": srv.Endpoint, "s3_region": tests3.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return region{srv, d}
}

type fixture struct {
	st     *store.DB
	repoID int64
	nsID   int64
}

func newFixture(t *testing.T, uri string) fixture {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, store.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.CreateRepository(ctx, u.ID, "app", false, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{st, r.ID, u.ID}
}

func sqliteURI(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") }

// push writes content at location and records it, as a push does.
func (f fixture) push(t *testing.T, d storage.Driver, location string, content []byte, enqueue bool) *store.Blob {
	t.Helper()
	ctx := t.Context()
	sum := sha256.Sum256(content)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	w, err := d.Writer(ctx, path(digest), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := f.st.LinkBlob(ctx, f.repoID, digest, int64(len(content)), location, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if enqueue {
		if err := f.st.EnqueueReplication(ctx, b.ID, f.repoID); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func read(t *testing.T, d storage.Driver, digest string) []byte {
	t.Helper()
	rc, err := d.Reader(t.Context(), path(digest), 0)
	if err != nil {
		t.Fatalf("read %s: %v", digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func locations(t *testing.T, f fixture, b *store.Blob) []string {
	t.Helper()
	l, err := f.st.BlobLocations(t.Context(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Replication between two S3 regions: A→B byte-identical; a region that
// is down keeps the item queued; after it comes back the copy catches up;
// blobs never queued are found by the backfill.
func TestReplicateS3Regions(t *testing.T) {
	ctx := t.Context()
	a, b := newRegion(t), newRegion(t)
	f := newFixture(t, sqliteURI(t))
	drivers := map[string]storage.Driver{"a": a.driver, "b": b.driver}
	r := New(f.st, drivers, Options{Preference: []string{"a", "b"}, Required: []string{"a", "b"},
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})

	// 6 MiB: more than one multipart part on the way to B.
	content := randomBytes(t, 6<<20+123)
	blob := f.push(t, a.driver, "a", content, true)
	if n, err := r.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1 item done", n, err)
	}
	if got := read(t, b.driver, blob.Digest); !bytes.Equal(got, content) {
		t.Fatalf("replica in B differs: %d bytes, want %d", len(got), len(content))
	}
	if l := locations(t, f, blob); !slices.Equal(l, []string{"a", "b"}) {
		t.Errorf("placements = %v, want [a b]", l)
	}
	if n, _, _ := f.st.ReplicationBacklog(ctx); n != 0 {
		t.Errorf("backlog = %d after replication", n)
	}

	// Region B down: pushes to A still queue; the item stays queued.
	b.srv.Halt(t)
	second := f.push(t, a.driver, "a", randomBytes(t, 4096), true)
	for i := 0; i < 3; i++ {
		if n, err := r.Drain(ctx); err != nil || n != 0 {
			t.Fatalf("Drain with B down = %d, %v; want 0 done", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, _, _ := f.st.ReplicationBacklog(ctx); n != 1 {
		t.Fatalf("backlog with B down = %d, want 1 (the item must not be lost)", n)
	}
	if r.Stats.Failures.Load() < 1 {
		t.Error("no failure counted while B was down")
	}
	if l := locations(t, f, second); !slices.Equal(l, []string{"a"}) {
		t.Errorf("placements with B down = %v", l)
	}

	// B back: the retry catches up.
	b.srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(locations(t, f, second), []string{"a", "b"}) {
		if time.Now().After(deadline) {
			t.Fatal("replication did not catch up after B came back")
		}
		time.Sleep(10 * time.Millisecond)
		if _, err := r.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, b.driver, second.Digest); len(got) != 4096 {
		t.Errorf("caught-up replica has %d bytes", len(got))
	}

	// A blob pushed before replication was on has no item: the backfill
	// finds it.
	old := f.push(t, a.driver, "a", []byte("pushed before replication"), false)
	if n, err := r.Backfill(ctx); err != nil || n != 1 {
		t.Fatalf("Backfill = %d, %v; want 1", n, err)
	}
	if _, err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b.driver, old.Digest); string(got) != "pushed before replication" {
		t.Errorf("backfilled replica = %q", got)
	}
}

// A damaged source is never copied: the digest check refuses the commit.
func TestReplicateRefusesDamagedSource(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, sqliteURI(t))
	da, db := newLocal(t, "a"), newLocal(t, "b")
	blob := f.push(t, da, "a", []byte("the real content"), true)
	// Overwrite A's object with other bytes of the same length.
	w, _ := da.Writer(ctx, path(blob.Digest), false)
	_, _ = w.Write([]byte("THE REAL CONTENT"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := New(f.st, map[string]storage.Driver{"a": da, "b": db}, Options{Preference: []string{"a"}, Required: []string{"a", "b"}})
	if n, err := r.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("Drain = %d, %v; want nothing done", n, err)
	}
	if _, err := db.Stat(ctx, path(blob.Digest)); err == nil {
		t.Error("a damaged copy was committed to b")
	}
	if l := locations(t, f, blob); !slices.Equal(l, []string{"a"}) {
		t.Errorf("placements = %v", l)
	}
}

// Two workers (two replicas) on one PostgreSQL never copy the same blob at
// the same time, and each blob is copied exactly once.
func TestReplicateConcurrentWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := t.Context()
	uri := testpg.NewDatabase(t)
	f := newFixture(t, uri)
	da, db := newLocal(t, "a"), newLocal(t, "b")
	const blobs = 30
	for i := 0; i < blobs; i++ {
		f.push(t, da, "a", randomBytes(t, 64<<10), true)
	}
	var (
		mu       sync.Mutex
		inFlight = map[string]int{}
		copies   = map[string]int{}
		overlaps int
	)
	hook := func(digest, loc string) func() {
		mu.Lock()
		inFlight[digest]++
		copies[digest]++
		if inFlight[digest] > 1 {
			overlaps++
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // widen the window
		return func() { mu.Lock(); inFlight[digest]--; mu.Unlock() }
	}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		st, err := store.Open(ctx, uri) // its own pool, as another replica
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := New(st, map[string]storage.Driver{"a": da, "b": db}, Options{Preference: []string{"a"}, Required: []string{"a", "b"}})
		r.SetCopyHook(hook)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Drain(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if overlaps != 0 {
		t.Errorf("%d copies overlapped with another copy of the same blob", overlaps)
	}
	if len(copies) != blobs {
		t.Errorf("%d blobs copied, want %d", len(copies), blobs)
	}
	for d, n := range copies {
		if n != 1 {
			t.Errorf("blob %s copied %d times", d, n)
		}
	}
}

func newLocal(t *testing.T, name string) storage.Driver {
	t.Helper()
	d, err := local.New(map[string]any{"storage_path": filepath.Join(t.TempDir(), name)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A copy that outlasts the lease keeps its item: the lease is renewed, so
// another worker draining meanwhile finds nothing to take over, and the
// blob is copied once.
func TestReplicateLongCopyKeepsLease(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, sqliteURI(t))
	da, db := newLocal(t, "a"), newLocal(t, "b")
	f.push(t, da, "a", randomBytes(t, 64<<10), true)
	const lease = 300 * time.Millisecond
	var copies atomic.Int32
	started := make(chan struct{}, 1)
	newReplicator := func() *Replicator {
		r := New(f.st, map[string]storage.Driver{"a": da, "b": db}, Options{Preference: []string{"a"}, Required: []string{"a", "b"}, Lease: lease})
		r.SetCopyHook(func(string, string) func() {
			copies.Add(1)
			select {
			case started <- struct{}{}:
			default:
			}
			time.Sleep(4 * lease)
			return func() {}
		})
		return r
	}
	first := make(chan error, 1)
	go func() {
		n, err := newReplicator().Drain(ctx)
		if err == nil && n != 1 {
			err = fmt.Errorf("first worker completed %d items, want 1", n)
		}
		first <- err
	}()
	<-started
	time.Sleep(2 * lease) // past the lease as first granted
	if n, err := newReplicator().Drain(ctx); err != nil || n != 0 {
		t.Errorf("second worker during the copy: completed %d, %v; want 0", n, err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := copies.Load(); n != 1 {
		t.Errorf("the blob was copied %d times, want once", n)
	}
	if n, _, err := f.st.ReplicationBacklog(ctx); err != nil || n != 0 {
		t.Errorf("backlog after the copy = %d, %v; want 0", n, err)
	}
}
