package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

func TestCheckReplication(t *testing.T) {
	two := map[string]Location{"us": {}, "eu": {}}
	tests := []struct {
		name    string
		s       Settings
		wantErr string
	}{
		{"two regions", Settings{Locations: two, Preference: []string{"us", "eu"}, DefaultLocations: []string{"us", "eu"}, StorageReplication: true}, ""},
		{"one location, replication off", Settings{Locations: map[string]Location{"us": {}}, Preference: []string{"us"}}, ""},
		{"one location, replication on", Settings{Locations: map[string]Location{"us": {}}, Preference: []string{"us"}, StorageReplication: true},
			"FEATURE_STORAGE_REPLICATION needs at least two locations"},
		{"unknown default location", Settings{Locations: two, Preference: []string{"us"}, DefaultLocations: []string{"us", "ap"}},
			`DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS names "ap", which is not in DISTRIBUTED_STORAGE_CONFIG`},
		{"unknown preferred location", Settings{Locations: two, Preference: []string{"us", "ap"}},
			`DISTRIBUTED_STORAGE_PREFERENCE (or QUAY_DISTRIBUTED_STORAGE_PREFERENCE) names "ap"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkReplication(tt.s)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkReplication = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// With several locations a pushed blob is placed where its bytes are (a
// mount from a region that lacks them keeps the real placement) and, with
// replication on, queued once.
func TestPlacementStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := New(ctx, Settings{
		DBURI: "sqlite:///" + filepath.Join(dir, "quay.db"),
		Locations: map[string]Location{
			"us": {Driver: "LocalStorage", Params: map[string]any{"storage_path": filepath.Join(dir, "us")}},
			"eu": {Driver: "LocalStorage", Params: map[string]any{"storage_path": filepath.Join(dir, "eu")}},
		},
		Preference: []string{"eu", "us"}, DefaultLocations: []string{"us", "eu"}, StorageReplication: true,
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, err := srv.Store.CreateUser(ctx, store.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	repo1, _ := srv.Store.CreateRepository(ctx, u.ID, "one", false, u.ID)
	repo2, _ := srv.Store.CreateRepository(ctx, u.ID, "two", false, u.ID)

	content := []byte("pushed in the us region")
	sum := sha256.Sum256(content)
	d := "sha256:" + hex.EncodeToString(sum[:])
	put := func(loc string) {
		w, err := srv.Storage[loc].Writer(ctx, storage.BlobPath("sha256", d[7:]), false)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(content)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	locations := func(b *store.Blob) []string {
		l, err := srv.Store.BlobLocations(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	backlog := func() int64 {
		n, _, err := srv.Store.ReplicationBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	put("us")
	b, err := srv.Store.LinkBlob(ctx, repo1.ID, d, int64(len(content)), "us", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if l := locations(b); !slices.Equal(l, []string{"us"}) || backlog() != 1 {
		t.Fatalf("after the push: placements %v, backlog %d; want [us], 1", l, backlog())
	}
	// A mount on the eu instance: the bytes are not in eu.
	if _, err := srv.Store.LinkBlob(ctx, repo2.ID, d, int64(len(content)), "eu", time.Hour); err != nil {
		t.Fatal(err)
	}
	if l := locations(b); !slices.Equal(l, []string{"us"}) || backlog() != 1 {
		t.Errorf("after the mount: placements %v, backlog %d; want [us], 1 (no placement without bytes, one item)", l, backlog())
	}
	// Bytes really in eu (a push there): placed, and nothing left to queue.
	put("eu")
	if _, err := srv.Store.LinkBlob(ctx, repo2.ID, d, int64(len(content)), "eu", time.Hour); err != nil {
		t.Fatal(err)
	}
	if l := locations(b); !slices.Equal(l, []string{"eu", "us"}) {
		t.Errorf("after a push to eu: placements %v", l)
	}
	// The worker finds nothing to copy and empties the queue.
	if _, err := srv.Replicator().Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := backlog(); n != 0 {
		t.Errorf("backlog after a pass = %d", n)
	}
}
