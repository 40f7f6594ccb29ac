package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/testsuite"
)

func TestDriver(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t) })
}

// newTestDriver returns a driver on a fresh root and, when the test passes,
// checks that the whole root is empty afterwards: the suite can only see
// committed objects, this also catches in-progress debris and empty dirs.
func newTestDriver(t *testing.T) *Driver {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	d, err := New(map[string]any{"storage_path": root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() {
			return
		}
		if left := walk(t, root); len(left) > 0 {
			t.Errorf("left behind in %s: %v", root, left)
		}
	})
	return d
}

func walk(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			left = append(left, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestNewParams(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		params  map[string]any
		wantErr string
	}{
		{"missing", map[string]any{}, "storage_path is required"},
		{"nil params", nil, "storage_path is required"},
		{"nil value", map[string]any{"storage_path": nil}, "storage_path is required"},
		{"not a string", map[string]any{"storage_path": 42}, "storage_path must be a string, got int"},
		{"empty", map[string]any{"storage_path": " "}, "storage_path is empty"},
		{"a file", map[string]any{"storage_path": file}, "cannot create storage_path"},
		{"below a file", map[string]any{"storage_path": filepath.Join(file, "x")}, "cannot create storage_path"},
		{"created", map[string]any{"storage_path": filepath.Join(dir, "new", "root")}, ""},
		{"existing", map[string]any{"storage_path": dir}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.params)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(d.Root()); err != nil || !fi.IsDir() {
					t.Fatalf("root %s not created: %v", d.Root(), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%v) succeeded, want error %q", tc.params, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), DriverName+": ") {
				t.Fatalf("New(%v) = %q, want %q prefixed by the driver name", tc.params, err, tc.wantErr)
			}
		})
	}
}

func TestNewRelativePathIsMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	d, err := New(map[string]any{"storage_path": "rel/root"})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(d.Root()) {
		t.Fatalf("Root() = %q, want absolute", d.Root())
	}
}

// TestUncommittedNotAtPath checks on disk, not through the driver, that the
// final path never holds partial data: a crash before Commit leaves only
// in-progress debris.
func TestUncommittedNotAtPath(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "uploads/u1", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(d.Root(), "uploads", "u1")
	if _, err := os.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final path exists before Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final path exists after Close: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(d.Root(), inProgressDir, "uploads", "u1"))
	if err != nil || string(got) != "partial" {
		t.Fatalf("in-progress content = %q, %v", got, err)
	}
	if err := d.Delete(ctx, "uploads/u1"); err != nil {
		t.Fatal(err)
	}
}

func TestReservedInProgressPath(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "x/secret", false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	for _, p := range []string{inProgressDir, inProgressDir + "/x/secret", inProgressDir + "/x"} {
		var ip storage.InvalidPathError
		if _, err := d.Stat(ctx, p); !errors.As(err, &ip) {
			t.Errorf("Stat(%s) = %v, want InvalidPathError", p, err)
		}
		if _, err := d.Reader(ctx, p, 0); !errors.As(err, &ip) {
			t.Errorf("Reader(%s) = %v, want InvalidPathError", p, err)
		}
		if _, err := d.List(ctx, p); !errors.As(err, &ip) {
			t.Errorf("List(%s) = %v, want InvalidPathError", p, err)
		}
		if err := d.Delete(ctx, p); !errors.As(err, &ip) {
			t.Errorf("Delete(%s) = %v, want InvalidPathError", p, err)
		}
		if _, err := d.Writer(ctx, p, false); !errors.As(err, &ip) {
			t.Errorf("Writer(%s) = %v, want InvalidPathError", p, err)
		}
	}
	// A name that merely starts like the reserved one is an ordinary path.
	if _, err := d.Stat(ctx, inProgressDir+"-not"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(.inprogress-not) = %v, want not found", err)
	}
}

// TestSymlinkEscape plants symlinks inside the root that point outside it;
// no operation may read, write or delete through them.
func TestSymlinkEscape(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("do not touch"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(d.Root(), "evil-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(d.Root(), "evil-file")); err != nil {
		t.Fatal(err)
	}

	if r, err := d.Reader(ctx, "evil-dir/secret", 0); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("Reader through a symlinked dir read %q", b)
	}
	if r, err := d.Reader(ctx, "evil-file", 0); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("Reader through a symlinked file read %q", b)
	}
	if f, _, err := d.Open(ctx, "evil-file"); err == nil {
		f.Close()
		t.Error("Open through a symlinked file succeeded")
	}
	if _, err := d.Stat(ctx, "evil-dir/secret"); err == nil {
		t.Error("Stat through a symlinked dir succeeded")
	}
	if _, err := d.List(ctx, "evil-dir"); err == nil {
		t.Error("List through a symlinked dir succeeded")
	}
	if w, err := d.Writer(ctx, "evil-dir/planted", false); err == nil {
		_, _ = w.Write([]byte("x"))
		if err := w.Commit(ctx); err == nil {
			t.Error("Commit through a symlinked dir succeeded")
		}
	}
	if w, err := d.Writer(ctx, "evil-file", true); err == nil {
		t.Error("append Writer copying a symlinked file succeeded")
		w.Cancel(ctx)
	}
	if err := d.Move(ctx, "evil-dir/secret", "stolen"); err == nil {
		t.Error("Move out of a symlinked dir succeeded")
	}
	if err := d.Delete(ctx, "evil-dir/secret"); err == nil {
		t.Error("Delete through a symlinked dir succeeded")
	}
	// Deleting the link itself removes the link, never the target.
	for _, link := range []string{"evil-dir", "evil-file"} {
		if err := d.Delete(ctx, link); err != nil {
			t.Errorf("Delete(%s): %v", link, err)
		}
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "do not touch" {
		t.Fatalf("outside file changed: %q, %v", b, err)
	}
	if left := walk(t, outside); len(left) != 1 {
		t.Fatalf("outside dir now holds %v, want only secret", left)
	}
	// Discard whatever the refused writer left in progress.
	_ = d.Delete(ctx, "evil-dir/planted")
}

func TestErrorsNameTheDriver(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	// A file where a directory must be created makes Commit fail with an
	// unexpected (not "not found") error, which must still say who failed.
	w, err := d.Writer(ctx, "file", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w, err = d.Writer(ctx, "file/child", false)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Commit(ctx)
	var se *storage.Error
	if !errors.As(err, &se) || se.Driver != DriverName || se.Path != "file/child" || se.Op != "commit" {
		t.Fatalf("Commit below a file = %#v, want *storage.Error from %s", err, DriverName)
	}
	if !strings.HasPrefix(err.Error(), DriverName+": commit file/child: ") {
		t.Errorf("message %q does not start with the driver and op", err)
	}
	// The bytes stay in progress for a retry; discard them.
	if err := d.Delete(ctx, "file/child"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "file"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenReturnsOSFile(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	w, err := d.Writer(ctx, "blob", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("content")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f, fi, err := d.Open(ctx, "blob")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// net/http's sendfile path needs the concrete *os.File.
	if _, ok := f.(*os.File); !ok {
		t.Errorf("Open returned %T, want *os.File", f)
	}
	if fi.Size != 7 {
		t.Errorf("size %d", fi.Size)
	}
	r, err := d.Reader(ctx, "blob", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Reader returned %T, want *os.File", r)
	}
	r.Close()
	f.Close()
	if err := d.Delete(ctx, "blob"); err != nil {
		t.Fatal(err)
	}
}

// TestRootRecreated checks the root is opened per call: a storage directory
// removed and re-created (a re-mounted volume) is used, not the stale one.
func TestRootRecreated(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	if err := os.Remove(d.Root()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "x"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat with the root gone = %v, want a storage error", err)
	}
	if err := os.Mkdir(d.Root(), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "x", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "x")); err != nil {
		t.Fatalf("object not in the re-created root: %v", err)
	}
	if err := d.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentChurn hammers the race between creating parent directories
// (Writer, Commit, Move) and removing empty ones (Delete, Commit, Cancel) in
// a shared tree; every operation must succeed and nothing may remain.
func TestConcurrentChurn(t *testing.T) {
	d := newTestDriver(t)
	ctx := t.Context()
	const workers, rounds = 16, 40
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range rounds {
				p := fmt.Sprintf("churn/a/b/g%d", g)
				w, err := d.Writer(ctx, p, false)
				if err != nil {
					t.Errorf("Writer: %v", err)
					return
				}
				if _, err := w.Write([]byte("x")); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if i%3 == 0 {
					if err := w.Cancel(ctx); err != nil {
						t.Errorf("Cancel: %v", err)
					}
					continue
				}
				if err := w.Commit(ctx); err != nil {
					t.Errorf("Commit: %v", err)
					return
				}
				if i%2 == 0 {
					dst := fmt.Sprintf("churn/c/g%d", g)
					if err := d.Move(ctx, p, dst); err != nil {
						t.Errorf("Move: %v", err)
						return
					}
					p = dst
				}
				if err := d.Delete(ctx, p); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
