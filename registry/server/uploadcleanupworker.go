package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
)

// uploadCleanupBatch bounds the sessions one pass removes; the rest wait
// for the next pass.
const uploadCleanupBatch = 1000

// UploadCleanupReport is what one upload cleanup pass removed.
type UploadCleanupReport struct {
	// Sessions are blobupload rows removed together with their bytes.
	Sessions int `json:"sessions"`
	// Abandoned are in-progress writes the drivers removed on their own
	// (S3 multipart uploads and tails no session names any more).
	Abandoned int `json:"abandoned"`
	// Failures are items left for the next pass.
	Failures []string `json:"failures"`
}

// CleanupUploads runs one pass of the upload cleanup worker (Quay's
// blobuploadcleanupworker): upload sessions started longer than olderThan
// ago lose their bytes and then their row, and, with
// CLEAN_BLOB_UPLOAD_FOLDER, every location that keeps write state of its
// own (storage.AbandonedCleaner: S3 multipart uploads) drops what was
// untouched for as long. Replicas may run it at once: every removal
// tolerates one already done.
func (s *Server) CleanupUploads(ctx context.Context, olderThan time.Duration) (*UploadCleanupReport, error) {
	rep := &UploadCleanupReport{Failures: []string{}}
	cutoff := time.Now().Add(-olderThan)
	ups, err := s.Store.StaleUploads(ctx, cutoff, uploadCleanupBatch)
	if err != nil {
		return rep, fmt.Errorf("upload cleanup: %w", err)
	}
	for _, u := range ups {
		d, ok := s.Storage[u.Location]
		if !ok {
			rep.Failures = append(rep.Failures, fmt.Sprintf("upload %s: storage location %q is not in DISTRIBUTED_STORAGE_CONFIG; add it so its uploads can be removed", u.UUID, u.Location))
			continue
		}
		// Bytes first: a row whose bytes could not go stays, so the next
		// pass retries instead of leaving unnamed bytes behind.
		if err := d.Delete(ctx, storage.UploadPath(u.UUID)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			rep.Failures = append(rep.Failures, fmt.Sprintf("upload %s: %v", u.UUID, err))
			continue
		}
		gone, err := s.Store.DeleteStaleUpload(ctx, u.UUID, cutoff)
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		if gone {
			rep.Sessions++
		}
	}
	if !s.settings.CleanUploadFolder {
		return rep, nil
	}
	names := make([]string, 0, len(s.Storage))
	for name := range s.Storage {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c, ok := s.Storage[name].(storage.AbandonedCleaner)
		if !ok {
			continue
		}
		n, err := c.CleanupAbandoned(ctx, olderThan)
		rep.Abandoned += n
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("storage location %s: %v", name, err))
		}
	}
	return rep, nil
}

// startUploadCleanup runs the upload cleanup worker every
// BLOBUPLOAD_CLEANUP_FREQUENCY unless this process runs only other
// workers (serve --only-workers).
func (s *Server) startUploadCleanup(ctx context.Context) {
	if !s.settings.UploadCleanup || !s.runs("blobuploadcleanupworker") {
		return
	}
	every, age := s.settings.UploadCleanupInterval, s.settings.UploadCleanupAge
	if every <= 0 {
		every = time.Hour
	}
	if age <= 0 {
		age = 48 * time.Hour
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := s.CleanupUploads(ctx, age)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("upload cleanup pass failed", "error", err)
			case err == nil && (rep.Sessions > 0 || rep.Abandoned > 0 || len(rep.Failures) > 0):
				s.log.Info("upload cleanup", "sessions", rep.Sessions, "abandoned", rep.Abandoned,
					"failures", len(rep.Failures))
				for _, f := range rep.Failures {
					s.log.Warn("upload cleanup skipped an item", "error", f)
				}
			}
		}
	}()
}
