package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestStaleUploads: sessions older than the cutoff are listed oldest first
// with their location, and removed only while still older than it.
func TestStaleUploads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)
		alice := mustUser(t, db, "alice", false)
		repo := mustRepo(t, db, alice, "app", false)
		mk := func(loc string) string {
			t.Helper()
			u := &Upload{RepositoryID: repo.ID, Location: loc}
			if err := db.CreateUpload(ctx, u); err != nil {
				t.Fatal(err)
			}
			return u.UUID
		}
		oldest := mk("s3_us")
		clk.Advance(time.Hour)
		old := mk("local_us")
		clk.Advance(47 * time.Hour)
		fresh := mk("local_us")
		clk.Advance(time.Hour)
		cutoff := clk.Now().Add(-2 * time.Hour)

		tests := []struct {
			name   string
			cutoff time.Time
			limit  int
			want   []GCUpload
		}{
			{"older than two hours", cutoff, 0, []GCUpload{{oldest, "s3_us"}, {old, "local_us"}}},
			{"limit keeps the oldest", cutoff, 1, []GCUpload{{oldest, "s3_us"}}},
			{"every session", clk.Now(), 0, []GCUpload{{oldest, "s3_us"}, {old, "local_us"}, {fresh, "local_us"}}},
			{"none that old", clk.Now().Add(-100 * time.Hour), 0, nil},
		}
		for _, tt := range tests {
			got, err := db.StaleUploads(ctx, tt.cutoff, tt.limit)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: StaleUploads = %v, want %v", tt.name, got, tt.want)
			}
		}

		deletes := []struct {
			name string
			uuid string
			want bool
		}{
			{"a stale session goes", oldest, true},
			{"twice: already gone", oldest, false},
			{"a fresh session stays", fresh, false},
			{"unknown", "00000000-0000-0000-0000-000000000000", false},
		}
		for _, tt := range deletes {
			gone, err := db.DeleteStaleUpload(ctx, tt.uuid, cutoff)
			if err != nil || gone != tt.want {
				t.Errorf("%s: DeleteStaleUpload = %v, %v; want %v", tt.name, gone, err, tt.want)
			}
		}
		if _, err := db.Upload(ctx, repo.ID, fresh); err != nil {
			t.Errorf("the fresh session is gone: %v", err)
		}
		if _, err := db.Upload(ctx, repo.ID, old); err != nil {
			t.Errorf("a stale session not asked for is gone: %v", err)
		}
	})
}
