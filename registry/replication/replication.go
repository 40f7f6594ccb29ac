// Package replication is geo-replication (FEATURE_STORAGE_REPLICATION):
// the worker that copies every blob to each location of
// DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS it lacks, as Quay's
// storagereplication worker does, and the read-side choice of which
// location serves a pull.
//
// Work comes from Quay's queue (queueitem, "imagestoragereplication/<uuid>/"):
// pushes enqueue, and a periodic backfill enqueues blobs that were never
// queued (pushed before replication was on). Workers of several replicas
// share the queue through leases, so one blob is copied by one worker at a
// time. Copies stream from one location's Reader to another's Writer while
// hashing, and are committed only when digest and size match.
package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// Store is what replication needs from the database.
type Store interface {
	store.ReplicationStore
	BlobLocations(ctx context.Context, blobID int64) ([]string, error)
}

// Options configure a Replicator.
type Options struct {
	// Preference is this instance's DISTRIBUTED_STORAGE_PREFERENCE: the
	// order in which source locations are tried.
	Preference []string
	// Required is DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: where every blob
	// must end up.
	Required []string
	// Lease is how long a claimed item stays ours (default 30 minutes);
	// a worker that dies mid-copy loses it to another after this.
	Lease time.Duration
	// MinBackoff and MaxBackoff bound the retry delay of a failed item,
	// doubling per attempt (defaults 10 s and 10 min).
	MinBackoff, MaxBackoff time.Duration
	// BackfillBatch is how many unqueued blobs one backfill pass queues
	// (default 1000).
	BackfillBatch int
	// BackfillEvery is how often the worker scans for unqueued blobs
	// (default 5 minutes; the scan reads every blob's placements, the
	// queue is polled far more often).
	BackfillEvery time.Duration
	Logger        *slog.Logger
}

// Stats count what a Replicator did since it was made.
type Stats struct {
	Copies   atomic.Int64 // objects written to a location
	Bytes    atomic.Int64
	Failures atomic.Int64 // items given back for a retry
	Done     atomic.Int64 // items completed
}

// Replicator copies blobs between storage locations.
type Replicator struct {
	st    Store
	locs  map[string]storage.Driver
	o     Options
	log   *slog.Logger
	Stats Stats
	// onCopy, if set, runs before each copy (tests count overlaps).
	onCopy func(digest, location string) (done func())
}

// New builds a Replicator over the configured locations.
func New(st Store, locations map[string]storage.Driver, o Options) *Replicator {
	if o.Lease <= 0 {
		o.Lease = 30 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Minute, o.MinBackoff)
	}
	if o.BackfillBatch <= 0 {
		o.BackfillBatch = 1000
	}
	if o.BackfillEvery <= 0 {
		o.BackfillEvery = 5 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Replicator{st: st, locs: locations, o: o, log: log.With("worker", "storagereplication")}
}

// SetCopyHook installs a function called around every copy (for tests
// that check two workers never copy one blob at the same time).
func (r *Replicator) SetCopyHook(f func(digest, location string) (done func())) { r.onCopy = f }

// Worker runs until ctx ends: the queue drained every interval, with a
// backfill pass first and then every BackfillEvery.
func (r *Replicator) Worker(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Second // Quay's storagereplication poll period
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastBackfill time.Time
	for {
		if time.Since(lastBackfill) >= r.o.BackfillEvery {
			lastBackfill = time.Now()
			if n, err := r.Backfill(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("replication backfill failed", "error", err)
			} else if n > 0 {
				r.log.Info("queued blobs missing replicas", "blobs", n)
			}
		}
		if n, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("replication pass failed", "error", err)
		} else if n > 0 {
			r.log.Info("replicated blobs", "blobs", n, "copies_total", r.Stats.Copies.Load(), "bytes_total", r.Stats.Bytes.Load())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Backfill queues blobs lacking a required placement that no item covers.
func (r *Replicator) Backfill(ctx context.Context) (int, error) {
	return r.st.EnqueueMissingReplications(ctx, r.required(), r.o.BackfillBatch)
}

// Drain processes available items until none is left; it returns how many
// it completed. Item failures are retried later, not returned.
func (r *Replicator) Drain(ctx context.Context) (int, error) {
	done := 0
	for ctx.Err() == nil {
		it, err := r.st.ClaimReplication(ctx, r.o.Lease)
		if err != nil {
			return done, err
		}
		if it == nil {
			return done, nil
		}
		if err := r.processLeased(ctx, it); err != nil {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			if errors.Is(err, errLeaseLost) {
				r.log.Warn("replication lease lost to another worker; leaving the blob to it", "blob", it.BlobUUID)
				continue
			}
			delay := r.backoff(it.Attempts)
			r.Stats.Failures.Add(1)
			r.log.Warn("replication failed; will retry", "blob", it.BlobUUID, "attempt", it.Attempts+1, "retry_in", delay, "error", err)
			if err := r.st.RetryReplication(ctx, it, delay); err != nil {
				r.log.Warn("cannot requeue replication item", "blob", it.BlobUUID, "error", err)
			}
			continue
		}
		if err := r.st.CompleteReplication(ctx, it); err != nil {
			r.log.Warn("cannot complete replication item", "blob", it.BlobUUID, "error", err)
			continue
		}
		r.Stats.Done.Add(1)
		done++
	}
	return done, ctx.Err()
}

var errLeaseLost = errors.New("replication lease lost")

// processLeased runs process while renewing the item's lease every third
// of it, so a copy that outlasts the lease (a large blob, a slow region) is
// not taken over and copied again by another worker. If the lease is lost
// anyway (this worker stalled past it), the copy stops.
func (r *Replicator) processLeased(ctx context.Context, it *store.ReplicationItem) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if err := r.st.ExtendReplication(ctx, it, r.o.Lease); errors.Is(err, store.ErrNotFound) {
				cancel(errLeaseLost)
				return
			} else if err != nil && ctx.Err() == nil {
				r.log.Warn("cannot renew the replication lease; will try again", "blob", it.BlobUUID, "error", err)
			}
		}
	}()
	err := r.process(ctx, it)
	close(stop)
	<-stopped
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		return errLeaseLost
	}
	return err
}

func (r *Replicator) backoff(attempts int) time.Duration {
	d := r.o.MinBackoff
	for i := 0; i < attempts && d < r.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.o.MaxBackoff)
}

// required are the DEFAULT_LOCATIONS this instance has drivers for.
func (r *Replicator) required() []string {
	var out []string
	for _, l := range r.o.Required {
		if _, ok := r.locs[l]; ok && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// process copies one blob to every required location it lacks.
func (r *Replicator) process(ctx context.Context, it *store.ReplicationItem) error {
	blob, err := r.st.BlobByUUID(ctx, it.BlobUUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // collected since it was queued: nothing to do
	}
	if err != nil {
		return err
	}
	have, err := r.st.BlobLocations(ctx, blob.ID)
	if err != nil {
		return err
	}
	sources := Order(have, r.o.Preference, r.locs)
	if len(sources) == 0 {
		return fmt.Errorf("blob %s has no placement in a configured location (placed at %s)", blob.Digest, strings.Join(have, ", "))
	}
	var errs []error
	for _, dst := range r.required() {
		if slices.Contains(have, dst) {
			continue
		}
		if err := r.copyFromAny(ctx, blob, sources, dst); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.st.AddBlobPlacement(ctx, blob.ID, dst); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// Collected while we copied: remove what we wrote.
				_ = r.locs[dst].Delete(ctx, path(blob.Digest))
				return nil
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Replicator) copyFromAny(ctx context.Context, blob *store.Blob, sources []string, dst string) error {
	var errs []error
	for _, src := range sources {
		err := r.copy(ctx, blob, src, dst)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("replicate %s to %s: %w", blob.Digest, dst, errors.Join(errs...))
}

// copy streams the blob from src to dst, committing only a verified copy.
func (r *Replicator) copy(ctx context.Context, blob *store.Blob, src, dst string) (err error) {
	p := path(blob.Digest)
	if p == "" {
		return fmt.Errorf("blob %d: not a digest: %q", blob.ID, blob.Digest)
	}
	if r.onCopy != nil {
		defer r.onCopy(blob.Digest, dst)()
	}
	rc, err := r.locs[src].Reader(ctx, p, 0)
	if err != nil {
		return fmt.Errorf("read from %s: %w", src, err)
	}
	defer rc.Close()
	w, err := r.locs[dst].Writer(ctx, p, false)
	if err != nil {
		return fmt.Errorf("write to %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			_ = w.Cancel(context.WithoutCancel(ctx))
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), rc)
	if err != nil {
		return fmt.Errorf("copy %s → %s: %w", src, dst, err)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if blob.Size > 0 && n != blob.Size {
		return fmt.Errorf("copy %s → %s: read %d bytes, the blob has %d — the source copy is damaged", src, dst, n, blob.Size)
	}
	if strings.HasPrefix(blob.Digest, "sha256:") && got != blob.Digest {
		return fmt.Errorf("copy %s → %s: content hashes to %s, not %s — the source copy is damaged", src, dst, got, blob.Digest)
	}
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("commit at %s: %w", dst, err)
	}
	r.Stats.Copies.Add(1)
	r.Stats.Bytes.Add(n)
	r.log.Debug("replicated blob", "digest", blob.Digest, "from", src, "to", dst, "bytes", n)
	return nil
}

func path(digest string) string {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || len(hex) < 2 {
		return ""
	}
	return storage.BlobPath(alg, hex)
}

// Order lists the locations of placed that have a driver: first those in
// preference order, then the rest by name. It is the order pulls and
// copies try locations in.
func Order(placed, preference []string, drivers map[string]storage.Driver) []string {
	var out []string
	for _, l := range preference {
		if _, ok := drivers[l]; ok && slices.Contains(placed, l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	rest := slices.Clone(placed)
	slices.Sort(rest)
	for _, l := range rest {
		if _, ok := drivers[l]; ok && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
