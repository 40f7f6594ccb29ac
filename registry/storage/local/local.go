// Package local is the LocalStorage driver: objects are files below a root
// directory (Quay's storage_path).
//
// Layout: a committed object lives at <root>/<path>. A writer's bytes live at
// <root>/.inprogress/<path> until Commit renames them into place, so a reader
// never sees half an object and a crash leaves, at worst, debris in
// .inprogress. Every file system call goes through os.Root, so even a symlink
// planted inside the root cannot lead outside it; path validation in front of
// that rejects traversal before any call is made.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/quayctl/quayctl/registry/storage"
)

// DriverName is the Quay name of this driver.
const DriverName = "LocalStorage"

// ParamStoragePath is the config key naming the root directory.
const ParamStoragePath = "storage_path"

// inProgressDir holds writers' uncommitted bytes. It is reserved: client
// paths may not start with it.
const inProgressDir = ".inprogress"

const (
	dirPerm  = 0o755
	filePerm = 0o644
	// retryAttempts bounds the retries when a concurrent Delete, Commit or
	// Cancel removes an empty parent directory we have just created.
	retryAttempts = 10
)

// Driver stores objects as files below Root. It is safe for concurrent use.
type Driver struct {
	root string
}

var (
	_ storage.Driver     = (*Driver)(nil)
	_ storage.SeekOpener = (*Driver)(nil)
)

// New builds a driver from Quay's parameters: storage_path (required) names
// the root directory, which is created if missing. A relative path is made
// absolute now so a later change of working directory does not move storage.
func New(params map[string]any) (*Driver, error) {
	raw, ok := params[ParamStoragePath]
	if !ok || raw == nil {
		return nil, fmt.Errorf("%s: parameter %s is required (for example %s: /datastorage/registry)",
			DriverName, ParamStoragePath, ParamStoragePath)
	}
	root, ok := raw.(string)
	if !ok {
		return nil, fmt.Errorf("%s: parameter %s must be a string, got %T (%v)",
			DriverName, ParamStoragePath, raw, raw)
	}
	if strings.TrimSpace(root) == "" {
		return nil, fmt.Errorf("%s: parameter %s is empty; set it to a directory such as /datastorage/registry",
			DriverName, ParamStoragePath)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %q: %w", DriverName, ParamStoragePath, root, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("%s: cannot create %s %s: %w", DriverName, ParamStoragePath, abs, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", DriverName, ParamStoragePath, abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: %s %s is not a directory", DriverName, ParamStoragePath, abs)
	}
	return &Driver{root: abs}, nil
}

// Name returns "LocalStorage".
func (d *Driver) Name() string { return DriverName }

// Root returns the absolute root directory.
func (d *Driver) Root() string { return d.root }

// open returns a handle confined to the root directory. It is opened per call
// rather than once, so a root that is re-mounted or re-created while the
// server runs is picked up instead of writing into a detached directory.
func (d *Driver) open(op, p string) (*os.Root, error) {
	r, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, d.fail(op, p, err)
	}
	return r, nil
}

func (d *Driver) fail(op, p string, err error) error {
	return &storage.Error{Driver: DriverName, Op: op, Path: p, Err: err}
}

func (d *Driver) notFound(p string) error {
	return storage.PathNotFoundError{Driver: DriverName, Path: p}
}

// check validates the path and the context before any file system call.
func (d *Driver) check(ctx context.Context, op, p string) error {
	if err := storage.ValidatePath(DriverName, p); err != nil {
		return err
	}
	if first, _, _ := strings.Cut(p, "/"); first == inProgressDir {
		return storage.InvalidPathError{Driver: DriverName, Path: p}
	}
	if err := ctx.Err(); err != nil {
		return d.fail(op, p, err)
	}
	return nil
}

// isNotFound reports errors meaning "nothing there": a missing element, or an
// element that is a file where a directory was expected.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func osPath(p string) string { return filepath.FromSlash(p) }

func inProgress(p string) string { return inProgressDir + "/" + p }

// Reader streams the object from offset. The returned value is an *os.File.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if err := d.check(ctx, "reader", p); err != nil {
		return nil, err
	}
	f, fi, err := d.openFile("reader", p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, storage.InvalidOffsetError{Driver: DriverName, Path: p, Offset: offset}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, d.fail("reader", p, err)
	}
	return f, nil
}

// Open returns the object's file so net/http can serve ranges with sendfile.
func (d *Driver) Open(ctx context.Context, p string) (io.ReadSeekCloser, storage.FileInfo, error) {
	if err := d.check(ctx, "open", p); err != nil {
		return nil, storage.FileInfo{}, err
	}
	f, fi, err := d.openFile("open", p)
	if err != nil {
		return nil, storage.FileInfo{}, err
	}
	return f, fileInfo(p, fi), nil
}

// openFile opens a committed regular file; directories count as missing
// because they are not objects (an S3 prefix cannot be read either).
func (d *Driver) openFile(op, p string) (*os.File, os.FileInfo, error) {
	r, err := d.open(op, p)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	f, err := r.Open(osPath(p))
	if err != nil {
		if isNotFound(err) {
			return nil, nil, d.notFound(p)
		}
		return nil, nil, d.fail(op, p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, d.fail(op, p, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, d.notFound(p)
	}
	return f, fi, nil
}

func fileInfo(p string, fi os.FileInfo) storage.FileInfo {
	info := storage.FileInfo{Path: p, ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if !fi.IsDir() {
		info.Size = fi.Size()
	}
	return info
}

// Stat describes a committed object or a directory (IsDir).
func (d *Driver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	if err := d.check(ctx, "stat", p); err != nil {
		return storage.FileInfo{}, err
	}
	r, err := d.open("stat", p)
	if err != nil {
		return storage.FileInfo{}, err
	}
	defer r.Close()
	fi, err := r.Stat(osPath(p))
	if err != nil {
		if isNotFound(err) {
			return storage.FileInfo{}, d.notFound(p)
		}
		return storage.FileInfo{}, d.fail("stat", p, err)
	}
	return fileInfo(p, fi), nil
}

// List returns the full paths of the direct children of directory p, sorted.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	if err := d.check(ctx, "list", p); err != nil {
		return nil, err
	}
	r, err := d.open("list", p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(osPath(p))
	if err != nil {
		if isNotFound(err) {
			return nil, d.notFound(p)
		}
		return nil, d.fail("list", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, d.fail("list", p, err)
	}
	if !fi.IsDir() {
		// A file has no children; S3 answers the same for a key used as a prefix.
		return nil, d.notFound(p)
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, d.fail("list", p, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, p+"/"+e.Name())
	}
	slices.Sort(out)
	return out, nil
}

// Move renames src to dst atomically, replacing dst and creating its parents.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	if err := d.check(ctx, "move", src); err != nil {
		return err
	}
	if err := d.check(ctx, "move", dst); err != nil {
		return err
	}
	r, err := d.open("move", src)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Lstat(osPath(src))
	if err != nil {
		if isNotFound(err) {
			return d.notFound(src)
		}
		return d.fail("move", src, err)
	}
	if fi.IsDir() {
		// Move is for objects; moving trees cannot be atomic on object stores.
		return d.notFound(src)
	}
	if src == dst {
		return nil
	}
	if err := renameInto(r, src, dst); err != nil {
		if _, serr := r.Lstat(osPath(src)); isNotFound(serr) {
			return d.notFound(src)
		}
		return d.fail("move", src+" -> "+dst, err)
	}
	// The source directory lost an entry; make that durable too.
	if err := syncDir(r, path.Dir(src)); err != nil && !isNotFound(err) {
		return d.fail("move", src, err)
	}
	removeEmptyParents(r, src)
	return nil
}

// Delete removes an object or a directory tree, and any uncommitted writer
// content at or below p (so deleting an upload also discards its partial
// bytes). It reports PathNotFoundError only when neither existed.
func (d *Driver) Delete(ctx context.Context, p string) error {
	if err := d.check(ctx, "delete", p); err != nil {
		return err
	}
	r, err := d.open("delete", p)
	if err != nil {
		return err
	}
	defer r.Close()
	found := false
	for _, name := range []string{p, inProgress(p)} {
		if _, err := r.Lstat(osPath(name)); err != nil {
			if isNotFound(err) {
				continue
			}
			return d.fail("delete", p, err)
		}
		found = true
		if err := r.RemoveAll(osPath(name)); err != nil {
			return d.fail("delete", p, err)
		}
		removeEmptyParents(r, name)
	}
	if !found {
		return d.notFound(p)
	}
	return nil
}

// renameInto renames src to dst (both relative to r), creating dst's parent
// directories durably, and fsyncs dst's directory so the new name survives a
// crash.
func renameInto(r *os.Root, src, dst string) error {
	err := retryNotExist(func() error {
		if err := mkdirAll(r, path.Dir(dst), true); err != nil {
			return err
		}
		err := r.Rename(osPath(src), osPath(dst))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := r.Lstat(osPath(src)); serr != nil {
				return errSourceGone{err} // retrying cannot help
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	return syncDir(r, path.Dir(dst))
}

// errSourceGone stops retryNotExist: the rename failed because src vanished,
// not because a parent of dst did.
type errSourceGone struct{ err error }

func (e errSourceGone) Error() string { return e.err.Error() }

// retryNotExist runs fn again while it fails with "does not exist", which
// means a concurrent removeEmptyParents deleted a directory fn had just
// created. The window is tiny, so a few attempts are plenty.
func retryNotExist(fn func() error) error {
	var err error
	for range retryAttempts {
		err = fn()
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// mkdirAll creates dir and its missing parents; with durable set it fsyncs
// each parent that gained an entry, so a committed object's path survives a
// crash. Unlike os.Root.MkdirAll it takes "already exists" as success even
// when a concurrent cleanup removes the directory again right after: the
// caller's next step then fails with "does not exist" and retryNotExist
// starts over.
func mkdirAll(r *os.Root, dir string, durable bool) error {
	var missing []string
	for d := dir; d != "."; d = path.Dir(d) {
		fi, err := r.Stat(osPath(d))
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := r.Mkdir(osPath(missing[i]), dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if durable {
			if err := syncDir(r, path.Dir(missing[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(r *os.Root, dir string) error {
	f, err := r.Open(osPath(dir))
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeEmptyParents removes the now-empty directories above p, stopping at
// the first one that still has entries (rmdir refuses those, which also makes
// this safe against concurrent writers) or at the root.
func removeEmptyParents(r *os.Root, p string) {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if err := r.Remove(osPath(d)); err != nil {
			return
		}
	}
}
