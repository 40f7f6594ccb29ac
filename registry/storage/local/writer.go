package local

import (
	"context"
	"errors"
	"io"
	"os"
	"path"

	"github.com/quayctl/quayctl/registry/storage"
)

// Writer opens the in-progress file for p. With append=false it starts
// empty; with append=true it continues the closed in-progress content or,
// failing that, a copy of the committed object, and reports PathNotFoundError
// when there is neither (a resumed upload whose bytes are gone must fail
// loudly, not restart from zero).
func (d *Driver) Writer(ctx context.Context, p string, append bool) (storage.FileWriter, error) {
	if err := d.check(ctx, "writer", p); err != nil {
		return nil, err
	}
	r, err := d.open("writer", p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tmp := inProgress(p)

	var f *os.File
	if append {
		f, err = r.OpenFile(osPath(tmp), os.O_WRONLY|os.O_APPEND, 0)
		if isNotFound(err) {
			f, err = d.copyCommitted(r, p, tmp)
		}
	} else {
		f, err = createIn(r, tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	}
	if err != nil {
		var nf storage.PathNotFoundError
		if errors.As(err, &nf) {
			return nil, err
		}
		return nil, d.fail("writer", p, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, d.fail("writer", p, err)
	}
	return &writer{d: d, path: p, tmp: tmp, f: f, size: size}, nil
}

// copyCommitted starts in-progress content from the committed object, so an
// append never modifies the visible object before Commit. The copy goes
// through io.Copy between files, which Linux turns into copy_file_range
// (a reflink on file systems that support it).
func (d *Driver) copyCommitted(r *os.Root, p, tmp string) (*os.File, error) {
	src, err := r.Open(osPath(p))
	if err != nil {
		if isNotFound(err) {
			return nil, d.notFound(p)
		}
		return nil, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, d.notFound(p)
	}
	f, err := createIn(r, tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		_ = r.Remove(osPath(tmp))
		removeEmptyParents(r, tmp)
		return nil, err
	}
	return f, nil
}

// createIn opens name with flag (which includes O_CREATE), creating its parent
// directories; it retries if a concurrent cleanup removed an empty parent in
// between.
func createIn(r *os.Root, name string, flag int) (*os.File, error) {
	var f *os.File
	err := retryNotExist(func() error {
		if err := mkdirAll(r, path.Dir(name), false); err != nil {
			return err
		}
		var err error
		f, err = r.OpenFile(osPath(name), flag, filePerm)
		return err
	})
	return f, err
}

// writer streams straight to the in-progress file; nothing is buffered in
// memory. It is not safe for concurrent use.
type writer struct {
	d    *Driver
	path string
	tmp  string
	f    *os.File // nil once the writer has ended
	size int64
	// dropped is how far the bytes are synced and out of the page cache
	// (or being so by the running background sync).
	dropped int64
	// syncing is closed when the background sync started by Write has
	// finished (nil: none started). At most one runs at a time.
	syncing chan struct{}
}

// writebackChunk is how much unsynced data a writer lets pile up before
// it starts, unless one is still running, a background data sync of
// everything written so far. Without this a large blob sits in the page
// cache until Commit's fsync, which then stalls for the whole object (on
// this project's VMs the device flush alone costs about as much as hashing
// the blob); with it, the flushing overlaps the upload and Commit only
// syncs the tail. The writing itself stays off Write's path: submitting
// the I/O there (sync_file_range) stalled the upload's copy pipeline.
// Synced chunks are dropped from the page cache: a blob nobody is about to
// read should not evict other work's cache, and freshly allocated
// page-cache memory is costly to touch on virtual machines whose host
// reclaims free guest pages.
const writebackChunk = 32 << 20

func (w *writer) Write(b []byte) (int, error) {
	if w.f == nil {
		return 0, w.d.fail("write", w.path, storage.ErrWriterClosed)
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, w.d.fail("write", w.path, err)
	}
	if w.size-w.dropped >= writebackChunk && w.syncIdle() {
		done := make(chan struct{})
		go func(f *os.File, from, to int64) {
			defer close(done)
			syncAndDrop(f, from, to)
		}(w.f, w.dropped, w.size)
		w.syncing, w.dropped = done, w.size
	}
	return n, nil
}

// syncIdle reports whether no background sync is running.
func (w *writer) syncIdle() bool {
	if w.syncing == nil {
		return true
	}
	select {
	case <-w.syncing:
		return true
	default:
		return false
	}
}

// waitSync waits for the background sync, before the file is closed.
func (w *writer) waitSync() {
	if w.syncing != nil {
		<-w.syncing
	}
}

func (w *writer) Size() int64 { return w.size }

// Close keeps the bytes written so far for a later Writer(append=true).
// Closing an ended writer is a no-op so that `defer w.Close()` is safe after
// Commit or Cancel.
func (w *writer) Close() error {
	if w.f == nil {
		return nil
	}
	w.waitSync()
	f := w.f
	w.f = nil
	if err := f.Close(); err != nil {
		return w.d.fail("close", w.path, err)
	}
	return nil
}

// Cancel discards the in-progress bytes. It ignores ctx: cleanup must work in
// a deferred call after the request's context was cancelled.
func (w *writer) Cancel(context.Context) error {
	if w.f == nil {
		return w.d.fail("cancel", w.path, storage.ErrWriterClosed)
	}
	w.waitSync()
	f := w.f
	w.f = nil
	f.Close()
	r, err := w.d.open("cancel", w.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(osPath(w.tmp)); err != nil && !isNotFound(err) {
		return w.d.fail("cancel", w.path, err)
	}
	removeEmptyParents(r, w.tmp)
	return nil
}

// Commit fsyncs the bytes and renames them into place, so path shows either
// the old object or the whole new one, even across a crash. On failure the
// in-progress bytes stay for a retry with Writer(append=true).
func (w *writer) Commit(ctx context.Context) error {
	if w.f == nil {
		return w.d.fail("commit", w.path, storage.ErrWriterClosed)
	}
	if err := ctx.Err(); err != nil {
		return w.d.fail("commit", w.path, err)
	}
	w.waitSync()
	f := w.f
	w.f = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return w.d.fail("commit", w.path, err)
	}
	if w.dropped > 0 { // a large blob: its tail leaves the cache too
		dropCache(f, w.dropped, w.size-w.dropped)
	}
	if err := f.Close(); err != nil {
		return w.d.fail("commit", w.path, err)
	}
	r, err := w.d.open("commit", w.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := renameInto(r, w.tmp, w.path); err != nil {
		if _, serr := r.Lstat(osPath(w.tmp)); isNotFound(serr) {
			// A Delete discarded the upload while it was being written.
			return w.d.notFound(w.path)
		}
		return w.d.fail("commit", w.path, err)
	}
	removeEmptyParents(r, w.tmp)
	return nil
}
