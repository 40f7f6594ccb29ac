package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/replication"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// checkReplication refuses settings geo-replication cannot honour, naming
// the key and the fix (config validation says the same for config files).
func checkReplication(s Settings) error {
	for _, l := range s.Preference {
		if _, ok := s.Locations[l]; !ok {
			return fmt.Errorf("DISTRIBUTED_STORAGE_PREFERENCE (or QUAY_DISTRIBUTED_STORAGE_PREFERENCE) names %q, which is not in DISTRIBUTED_STORAGE_CONFIG: add it there or remove it from the preference", l)
		}
	}
	for _, l := range s.DefaultLocations {
		if _, ok := s.Locations[l]; !ok {
			return fmt.Errorf("DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS names %q, which is not in DISTRIBUTED_STORAGE_CONFIG: add it there or remove it from the default locations", l)
		}
	}
	if s.StorageReplication && len(s.Locations) < 2 {
		return errors.New("FEATURE_STORAGE_REPLICATION needs at least two locations in DISTRIBUTED_STORAGE_CONFIG: add the other regions, or turn replication off")
	}
	return nil
}

// Replicator is the geo-replication worker over this server's database
// and storage locations.
func (s *Server) Replicator() *replication.Replicator {
	return replication.New(s.Store, s.Storage, replication.Options{
		Preference: s.settings.Preference, Required: s.settings.DefaultLocations, Logger: s.log,
		MinBackoff: s.settings.ReplicationBackoff, MaxBackoff: 10 * s.settings.ReplicationBackoff,
	})
}

// startReplication runs the storagereplication worker when
// FEATURE_STORAGE_REPLICATION is on.
func (s *Server) startReplication(ctx context.Context) {
	if !s.settings.StorageReplication || !s.runs("storagereplication") {
		return
	}
	if len(s.settings.DefaultLocations) == 0 {
		s.log.Warn("FEATURE_STORAGE_REPLICATION is on but DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS is empty: nothing to replicate to — list the locations every blob must reach")
		return
	}
	r := s.Replicator()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.Worker(ctx, s.settings.ReplicationInterval)
	}()
}

// placementStore records placements where the bytes really are and, with
// replication on, queues each pushed blob that lacks a required location.
// It wraps the store whenever several locations are configured.
type placementStore struct {
	store.Store
	drivers    map[string]storage.Driver
	preference []string
	required   []string // empty: replication off
	log        interface {
		WarnContext(ctx context.Context, msg string, args ...any)
	}
}

func (s *Server) placementStore(st store.Store) store.Store {
	if len(s.settings.Locations) < 2 {
		return st
	}
	p := &placementStore{Store: st, drivers: s.Storage, preference: s.settings.Preference, log: s.log}
	if s.settings.StorageReplication {
		p.required = s.settings.DefaultLocations
	}
	return p
}

// LinkBlob is store.Store's, with two geo-replication rules. A blob mounted
// from another repository was not written here: when the bytes are not at
// location, the placement names a location that holds them instead (a
// placement without bytes would send pulls to a missing object). And a
// blob missing a required location is queued for replication; a queueing
// failure is logged, never fails the push (the backfill finds the blob).
func (p *placementStore) LinkBlob(ctx context.Context, repositoryID int64, digest string, size int64, location string, ttl time.Duration) (*store.Blob, error) {
	loc := location
	if b, err := p.Store.BlobByDigest(ctx, digest); err == nil {
		if placed, err := p.Store.BlobLocations(ctx, b.ID); err == nil && len(placed) > 0 && !slices.Contains(placed, location) {
			if d, ok := p.drivers[location]; ok && !hasBlob(ctx, d, digest) {
				if order := replication.Order(placed, p.preference, p.drivers); len(order) > 0 {
					loc = order[0]
				} else {
					loc = placed[0]
				}
			}
		}
	}
	b, err := p.Store.LinkBlob(ctx, repositoryID, digest, size, loc, ttl)
	if err != nil || len(p.required) == 0 {
		return b, err
	}
	placed, perr := p.Store.BlobLocations(ctx, b.ID)
	if perr == nil && !missingAny(placed, p.required) {
		return b, nil
	}
	if err := p.Store.EnqueueReplication(ctx, b.ID, repositoryID); err != nil {
		p.log.WarnContext(ctx, "cannot queue blob for replication; the backfill will find it", "digest", digest, "error", err)
	}
	return b, nil
}

func hasBlob(ctx context.Context, d storage.Driver, digest string) bool {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || len(hex) < 2 {
		return false
	}
	_, err := d.Stat(ctx, storage.BlobPath(alg, hex))
	return err == nil
}

func missingAny(placed, required []string) bool {
	for _, r := range required {
		if !slices.Contains(placed, r) {
			return true
		}
	}
	return false
}
