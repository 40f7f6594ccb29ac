// Package gc is online garbage collection: one pass purges deleted
// repositories, drops tags past their namespace's time machine window,
// deletes manifests nothing reaches and blobs nothing references, first
// from the database and then from storage. The database rules live in the
// store (store.GCStore); this package adds storage and the periodic worker.
// See docs/garbage-collection.md for why it is safe while pushes run.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// Options tune a Collector.
type Options struct {
	// Store is passed to store.CollectGarbage (DryRun is set per pass).
	Store store.GCOptions
	// TombstoneTTL is how long a deleted blob's tombstone is kept so that a
	// push racing with the deletion is detected (default 1 hour).
	TombstoneTTL time.Duration
	Logger       *slog.Logger
}

// Collector runs garbage-collection passes over one database and its
// storage locations (DISTRIBUTED_STORAGE_CONFIG names → drivers).
type Collector struct {
	st      store.GCStore
	drivers map[string]storage.Driver
	opts    Options
	log     *slog.Logger
}

// New builds a Collector.
func New(st store.GCStore, drivers map[string]storage.Driver, opts Options) *Collector {
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Collector{st: st, drivers: drivers, opts: opts, log: log}
}

// Amount is a number of things and their size in bytes.
type Amount struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// Report is what one pass removed, or would remove in a dry run. Its JSON
// form is the output of `quayctl gc run -o json`.
type Report struct {
	DryRun       bool   `json:"dry_run"`
	Repositories int    `json:"repositories"`
	Tags         int    `json:"tags"`
	Manifests    Amount `json:"manifests"`
	// Blobs are imagestorage rows removed from the database.
	Blobs Amount `json:"blobs"`
	// Objects are blob objects deleted from storage (tombstones of earlier
	// passes included); in a dry run, those that would be.
	Objects Amount `json:"objects"`
	// Uploads are abandoned upload sessions removed with their bytes.
	Uploads  int      `json:"uploads"`
	Failures []string `json:"failures"`
}

// Empty reports whether the pass removed nothing.
func (r *Report) Empty() bool {
	return r.Repositories == 0 && r.Tags == 0 && r.Manifests.Count == 0 && r.Blobs.Count == 0 &&
		r.Objects.Count == 0 && r.Uploads == 0 && len(r.Failures) == 0
}

// Run does one pass. In a dry run nothing changes, in the database or in
// storage. Items that fail are listed in Failures and retried next pass;
// the error is for failures of the pass itself (database unreachable).
func (c *Collector) Run(ctx context.Context, dryRun bool) (*Report, error) {
	so := c.opts.Store
	so.DryRun = dryRun
	res, err := c.st.CollectGarbage(ctx, so)
	rep := &Report{DryRun: dryRun, Failures: []string{}}
	if res != nil {
		rep.Repositories, rep.Tags = res.Repositories, res.Tags
		rep.Manifests = Amount{res.Manifests, res.ManifestBytes}
		for _, b := range res.Blobs {
			rep.Blobs.Count++
			rep.Blobs.Bytes += b.Size
			if dryRun && b.Object {
				rep.Objects.Count++
				rep.Objects.Bytes += b.Size
			}
		}
		rep.Uploads = len(res.Uploads)
		rep.Failures = append(rep.Failures, res.Failures...)
	}
	if err != nil {
		return rep, err
	}
	if dryRun {
		return rep, nil
	}
	for _, u := range res.Uploads {
		if err := c.deleteObject(ctx, u.Location, storage.UploadPath(u.UUID)); err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("upload %s: %v", u.UUID, err))
		}
	}
	if err := c.deleteObjects(ctx, rep); err != nil {
		return rep, err
	}
	if _, err := c.st.PruneBlobTombstones(ctx, c.opts.TombstoneTTL); err != nil {
		return rep, err
	}
	return rep, nil
}

// deleteObjects deletes the objects of every pending tombstone, each under
// its digest's lock (store.DeleteBlobObject).
func (c *Collector) deleteObjects(ctx context.Context, rep *Report) error {
	pending, err := c.st.PendingBlobDeletions(ctx, 1000)
	if err != nil {
		return err
	}
	for _, b := range pending {
		path, err := blobPath(b.Digest)
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		done, err := c.st.DeleteBlobObject(ctx, b.Digest, func(ctx context.Context, locations []string) error {
			for _, loc := range locations {
				if err := c.deleteObject(ctx, loc, path); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		if done {
			rep.Objects.Count++
			rep.Objects.Bytes += b.Size
		}
	}
	return nil
}

func (c *Collector) deleteObject(ctx context.Context, location, path string) error {
	d, ok := c.drivers[location]
	if !ok {
		return fmt.Errorf("storage location %q is not in DISTRIBUTED_STORAGE_CONFIG; add it so its objects can be deleted", location)
	}
	if err := d.Delete(ctx, path); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete %s from %s: %w", path, location, err)
	}
	return nil
}

// blobPath is the object path of a content-addressed digest.
func blobPath(digest string) (string, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || len(hex) < 2 || alg == "" {
		return "", fmt.Errorf("blob %q: not a digest", digest)
	}
	return storage.BlobPath(alg, hex), nil
}

// Worker runs a pass every interval until ctx ends, logging what each pass
// removed. Several replicas may run it against one database: every item is
// re-checked and removed under a lock, so none is removed twice.
func (c *Collector) Worker(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := c.Run(ctx, false)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn("garbage collection pass failed", "error", err)
		case err == nil && !rep.Empty():
			c.log.Info("garbage collection", "repositories", rep.Repositories, "tags", rep.Tags,
				"manifests", rep.Manifests.Count, "blobs", rep.Blobs.Count, "objects", rep.Objects.Count,
				"bytes", rep.Objects.Bytes, "uploads", rep.Uploads, "failures", len(rep.Failures),
				"duration", time.Since(start).Round(time.Millisecond))
		}
	}
}
