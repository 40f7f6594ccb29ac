package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplicationQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)
		ns := mustUser(t, db, "alice", false)
		repo := mustRepo(t, db, ns, "app", false)
		d := mustBlob(t, db, repo.ID, "layer one")
		blob, err := db.BlobByDigest(ctx, d)
		if err != nil {
			t.Fatal(err)
		}

		// One item per blob, however often it is queued.
		for i := 0; i < 3; i++ {
			if err := db.EnqueueReplication(ctx, blob.ID, repo.ID); err != nil {
				t.Fatalf("EnqueueReplication: %v", err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM queueitem WHERE queue_name = ?`, "imagestoragereplication/"+blob.UUID+"/"); n != 1 {
			t.Fatalf("queued items = %d, want 1", n)
		}
		n, oldest, err := db.ReplicationBacklog(ctx)
		if err != nil || n != 1 || !oldest.Equal(clk.Now()) {
			t.Fatalf("ReplicationBacklog = %d, %v, %v; want 1, %v", n, oldest, err, clk.Now())
		}

		it, err := db.ClaimReplication(ctx, time.Minute)
		if err != nil || it == nil {
			t.Fatalf("ClaimReplication = %v, %v", it, err)
		}
		if it.BlobUUID != blob.UUID || it.NamespaceID != ns.ID || it.Attempts != 0 {
			t.Errorf("claimed %+v, want blob %s namespace %d", it, blob.UUID, ns.ID)
		}
		// Leased: nobody else gets it until the lease ends.
		if again, err := db.ClaimReplication(ctx, time.Minute); err != nil || again != nil {
			t.Fatalf("second claim = %v, %v; want nothing", again, err)
		}
		// A failure puts it back after the delay, attempts counted, the
		// enqueue time kept.
		if err := db.RetryReplication(ctx, it, 30*time.Second); err != nil {
			t.Fatalf("RetryReplication: %v", err)
		}
		if again, _ := db.ClaimReplication(ctx, time.Minute); again != nil {
			t.Fatal("claimed before the retry delay")
		}
		clk.Advance(31 * time.Second)
		it2, err := db.ClaimReplication(ctx, time.Minute)
		if err != nil || it2 == nil || it2.Attempts != 1 {
			t.Fatalf("claim after delay = %+v, %v; want attempts 1", it2, err)
		}
		if _, oldest, _ := db.ReplicationBacklog(ctx); !oldest.Equal(clk.Now().Add(-31 * time.Second)) {
			t.Errorf("backlog age moved on retry: oldest %v", oldest)
		}
		// Many failures never exhaust the retries.
		for i := 0; i < 8; i++ {
			if err := db.RetryReplication(ctx, it2, 0); err != nil {
				t.Fatal(err)
			}
			if it2, err = db.ClaimReplication(ctx, time.Minute); err != nil || it2 == nil {
				t.Fatalf("claim %d after retries = %v, %v", i, it2, err)
			}
		}
		// A renewed lease holds past its first end.
		clk.Advance(50 * time.Second)
		if err := db.ExtendReplication(ctx, it2, time.Minute); err != nil {
			t.Fatalf("ExtendReplication: %v", err)
		}
		clk.Advance(50 * time.Second)
		if again, err := db.ClaimReplication(ctx, time.Minute); err != nil || again != nil {
			t.Fatalf("claim during a renewed lease = %v, %v; want nothing", again, err)
		}
		// An expired lease lets another worker take over; the first
		// worker's claim is then stale.
		clk.Advance(2 * time.Minute)
		it3, err := db.ClaimReplication(ctx, time.Minute)
		if err != nil || it3 == nil {
			t.Fatalf("claim after lease = %v, %v", it3, err)
		}
		if err := db.CompleteReplication(ctx, it2); !errors.Is(err, ErrNotFound) {
			t.Errorf("complete with a stale claim = %v, want ErrNotFound", err)
		}
		if err := db.ExtendReplication(ctx, it2, time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("extend a stale claim = %v, want ErrNotFound", err)
		}
		if err := db.CompleteReplication(ctx, it3); err != nil {
			t.Fatalf("CompleteReplication: %v", err)
		}
		if n, _, _ := db.ReplicationBacklog(ctx); n != 0 {
			t.Errorf("backlog after completion = %d", n)
		}
	})
}

func TestReplicationBackfillAndPlacement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		ns := mustUser(t, db, "alice", false)
		repo := mustRepo(t, db, ns, "app", false)
		d1 := mustBlob(t, db, repo.ID, "one") // at local_us
		d2 := mustBlob(t, db, repo.ID, "two")
		b1, _ := db.BlobByDigest(ctx, d1)
		b2, _ := db.BlobByDigest(ctx, d2)
		if err := db.AddBlobPlacement(ctx, b2.ID, "eu"); err != nil {
			t.Fatalf("AddBlobPlacement: %v", err)
		}
		if err := db.AddBlobPlacement(ctx, b2.ID, "eu"); err != nil {
			t.Fatalf("AddBlobPlacement twice: %v", err)
		}
		if err := db.AddBlobPlacement(ctx, 999999, "eu"); !errors.Is(err, ErrNotFound) {
			t.Errorf("placement of a missing blob = %v, want ErrNotFound", err)
		}
		locs, _ := db.BlobLocations(ctx, b2.ID)
		if fmt.Sprint(locs) != "[eu local_us]" {
			t.Errorf("locations = %v", locs)
		}

		tests := []struct {
			name      string
			locations []string
			want      int
		}{
			{"everything already placed", []string{"local_us"}, 0},
			{"one blob lacks eu", []string{"local_us", "eu"}, 1},
			{"already queued", []string{"local_us", "eu"}, 0},
			{"a new location", []string{"eu", "ap"}, 1}, // b1 is queued already
		}
		for _, tt := range tests {
			n, err := db.EnqueueMissingReplications(ctx, tt.locations, 0)
			if err != nil || n != tt.want {
				t.Errorf("%s: EnqueueMissingReplications(%v) = %d, %v; want %d", tt.name, tt.locations, n, err, tt.want)
			}
		}
		got, err := db.BlobByUUID(ctx, b1.UUID)
		if err != nil || got.ID != b1.ID {
			t.Errorf("BlobByUUID = %v, %v", got, err)
		}
		if _, err := db.BlobByUUID(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("BlobByUUID(nope) = %v", err)
		}
	})
}

// Workers of several replicas share one queue: each item is claimed once.
func TestReplicationClaimConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("concurrency test")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		uri := b.uri(t)
		db := openURI(t, uri)
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ns := mustUser(t, db, "alice", false)
		repo := mustRepo(t, db, ns, "app", false)
		const blobs = 20
		for i := 0; i < blobs; i++ {
			bl, _ := db.BlobByDigest(ctx, mustBlob(t, db, repo.ID, fmt.Sprint("blob ", i)))
			if err := db.EnqueueReplication(ctx, bl.ID, repo.ID); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu      sync.Mutex
			claimed = map[string]int{}
			wg      sync.WaitGroup
		)
		for w := 0; w < 4; w++ {
			other := openURI(t, uri) // a separate pool, as another replica
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					it, err := other.ClaimReplication(ctx, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if it == nil {
						return
					}
					mu.Lock()
					claimed[it.BlobUUID]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != blobs {
			t.Errorf("claimed %d distinct items, want %d", len(claimed), blobs)
		}
		for u, n := range claimed {
			if n != 1 {
				t.Errorf("item %s claimed %d times", u, n)
			}
		}
	})
}
