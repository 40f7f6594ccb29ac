package testsuite

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
)

// TestKeyValueDriver runs the suite against a flat key/value driver with no
// directories, the way an object store works, to keep the suite honest: it
// must not demand file-system behaviour an S3 driver cannot offer.
func TestKeyValueDriver(t *testing.T) {
	Run(t, func(t *testing.T) storage.Driver { return newKV() })
}

type kvObject struct {
	data    []byte
	modTime time.Time
}

type kvDriver struct {
	mu        sync.Mutex
	objects   map[string]kvObject
	uploading map[string][]byte // closed, uncommitted writer content
}

func newKV() *kvDriver {
	return &kvDriver{objects: map[string]kvObject{}, uploading: map[string][]byte{}}
}

const kvName = "KeyValueTest"

func (d *kvDriver) Name() string { return kvName }

func (d *kvDriver) check(ctx context.Context, p string) error {
	if err := storage.ValidatePath(kvName, p); err != nil {
		return err
	}
	return ctx.Err()
}

func (d *kvDriver) notFound(p string) error {
	return storage.PathNotFoundError{Driver: kvName, Path: p}
}

func (d *kvDriver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := d.check(ctx, p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[p]
	if !ok {
		return nil, d.notFound(p)
	}
	if offset < 0 || offset > int64(len(o.data)) {
		return nil, storage.InvalidOffsetError{Driver: kvName, Path: p, Offset: offset}
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:])), nil
}

func (d *kvDriver) Writer(ctx context.Context, p string, append bool) (storage.FileWriter, error) {
	if err := d.check(ctx, p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w := &kvWriter{d: d, path: p}
	if append {
		if b, ok := d.uploading[p]; ok {
			w.buf = slices.Clone(b)
		} else if o, ok := d.objects[p]; ok {
			w.buf = slices.Clone(o.data)
		} else {
			return nil, d.notFound(p)
		}
	}
	d.uploading[p] = w.buf
	return w, nil
}

func (d *kvDriver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	if err := d.check(ctx, p); err != nil {
		return storage.FileInfo{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.objects[p]; ok {
		return storage.FileInfo{Path: p, Size: int64(len(o.data)), ModTime: o.modTime}, nil
	}
	for k := range d.objects {
		if strings.HasPrefix(k, p+"/") {
			return storage.FileInfo{Path: p, IsDir: true, ModTime: time.Now()}, nil
		}
	}
	return storage.FileInfo{}, d.notFound(p)
}

func (d *kvDriver) Move(ctx context.Context, src, dst string) error {
	for _, p := range []string{src, dst} {
		if err := d.check(ctx, p); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.objects[src]
	if !ok {
		return d.notFound(src)
	}
	delete(d.objects, src)
	d.objects[dst] = o
	return nil
}

func (d *kvDriver) Delete(ctx context.Context, p string) error {
	if err := d.check(ctx, p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	found := false
	for _, m := range []map[string]bool{keys(d.objects), keys(d.uploading)} {
		for k := range m {
			if k == p || strings.HasPrefix(k, p+"/") {
				delete(d.objects, k)
				delete(d.uploading, k)
				found = true
			}
		}
	}
	if !found {
		return d.notFound(p)
	}
	return nil
}

func keys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func (d *kvDriver) List(ctx context.Context, p string) ([]string, error) {
	if err := d.check(ctx, p); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for k := range d.objects {
		if rest, ok := strings.CutPrefix(k, p+"/"); ok {
			child, _, _ := strings.Cut(rest, "/")
			seen[p+"/"+child] = true
		}
	}
	if len(seen) == 0 {
		return nil, d.notFound(p)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

type kvWriter struct {
	d     *kvDriver
	path  string
	buf   []byte
	ended bool
}

func (w *kvWriter) Write(b []byte) (int, error) {
	if w.ended {
		return 0, storage.ErrWriterClosed
	}
	w.buf = append(w.buf, b...)
	return len(b), nil
}

func (w *kvWriter) Size() int64 { return int64(len(w.buf)) }

func (w *kvWriter) Close() error {
	if w.ended {
		return nil
	}
	w.ended = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.d.uploading[w.path] = w.buf
	return nil
}

func (w *kvWriter) Cancel(context.Context) error {
	if w.ended {
		return storage.ErrWriterClosed
	}
	w.ended = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	delete(w.d.uploading, w.path)
	return nil
}

func (w *kvWriter) Commit(ctx context.Context) error {
	if w.ended {
		return storage.ErrWriterClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.ended = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if _, ok := w.d.uploading[w.path]; !ok {
		return w.d.notFound(w.path) // deleted while writing
	}
	delete(w.d.uploading, w.path)
	w.d.objects[w.path] = kvObject{data: w.buf, modTime: time.Now()}
	return nil
}
