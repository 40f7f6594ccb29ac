package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/quayctl/quayctl/registry/gc"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// wireGC gives the store what garbage collection needs from the server:
// DEFAULT_TAG_EXPIRATION for new namespaces, and a way to check that a
// blob's object exists when a push races with its deletion.
func (s *Server) wireGC(st *store.DB) {
	if s.settings.DefaultTagExpiration != nil {
		st.SetDefaultTagExpiration(*s.settings.DefaultTagExpiration)
	}
	st.SetBlobVerifier(func(ctx context.Context, location, digest string) error {
		d, ok := s.Storage[location]
		if !ok {
			return fmt.Errorf("storage location %q is not configured", location)
		}
		alg, hex, _ := strings.Cut(digest, ":")
		if len(hex) < 2 {
			return fmt.Errorf("not a digest: %q", digest)
		}
		_, err := d.Stat(ctx, storage.BlobPath(alg, hex))
		return err
	})
}

// GC is a collector over this server's database and storage locations.
func (s *Server) GC() *gc.Collector {
	// Stale upload sessions age by BLOBUPLOAD_DELETION_DATE_THRESHOLD here
	// too, so the GC pass and the upload cleanup worker agree.
	return gc.New(s.Store, s.Storage, gc.Options{Logger: s.log, Store: store.GCOptions{StaleUploadAge: s.settings.UploadCleanupAge}})
}

// startGC runs the garbage-collection worker when FEATURE_GARBAGE_COLLECTION
// is on and this process runs the gcworker (serve --only-workers).
func (s *Server) startGC(ctx context.Context) {
	if !s.settings.GarbageCollection || !s.runs("gcworker") {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.GC().Worker(ctx, s.settings.GCFrequency)
	}()
}
