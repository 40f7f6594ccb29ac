package storage_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/storage/local"
)

func newLocal(t *testing.T) *local.Driver {
	t.Helper()
	d, err := local.New(map[string]any{"storage_path": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func stepNames(r storage.ProbeResult) []string {
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	return names
}

func emptyRoot(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("probe left %v in %s", names, root)
	}
}

func TestProbeOK(t *testing.T) {
	d := newLocal(t)
	res := storage.Probe(t.Context(), d)
	if !res.OK || res.Err != nil || res.FailedStep() != "" {
		t.Fatalf("Probe = %+v", res)
	}
	want := []string{"write", "stat", "read", "compare", "delete"}
	if got := stepNames(res); !slices.Equal(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	for _, s := range res.Steps {
		if s.Err != nil || s.Duration < 0 {
			t.Errorf("step %+v", s)
		}
	}
	if res.Driver != "LocalStorage" || !strings.HasPrefix(res.Path, storage.ProbePathPrefix) || res.Total <= 0 {
		t.Errorf("result = %+v", res)
	}
	emptyRoot(t, d.Root())

	// Two probes (two replicas on shared storage) pick different paths.
	if other := storage.Probe(t.Context(), d); other.Path == res.Path {
		t.Errorf("two probes used the same path %s", res.Path)
	}
}

// TestProbeDoesNotCollideWithQuay: Quay's own health check leaves a file
// named _verify in shared storage; our probe must work beside it and leave it.
func TestProbeDoesNotCollideWithQuay(t *testing.T) {
	d := newLocal(t)
	quayFile := filepath.Join(d.Root(), "_verify")
	if err := os.WriteFile(quayFile, []byte("testing 123"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := storage.Probe(t.Context(), d); !res.OK {
		t.Fatalf("Probe beside Quay's _verify: %v", res.Err)
	}
	if _, err := os.Stat(quayFile); err != nil {
		t.Fatalf("Quay's _verify file: %v", err)
	}
}

// TestProbeBrokenRoot: tests run as root, so permissions cannot make storage
// unwritable; a root path that turned into a file does.
func TestProbeBrokenRoot(t *testing.T) {
	d := newLocal(t)
	if err := os.Remove(d.Root()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Root(), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := storage.Probe(t.Context(), d)
	if res.OK || res.FailedStep() != "write" {
		t.Fatalf("Probe on a file root = OK %v, failed step %q, want write", res.OK, res.FailedStep())
	}
	var pe *storage.ProbeError
	if !errors.As(res.Err, &pe) || pe.Driver != "LocalStorage" || pe.Step != "write" {
		t.Fatalf("Err = %#v, want *ProbeError at write", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "storage probe on LocalStorage failed at write of _verify-") {
		t.Errorf("message = %q", res.Err)
	}
	if got := stepNames(res); !slices.Equal(got, []string{"write"}) {
		t.Errorf("steps = %v, want only write", got)
	}
}

func TestProbeCancelledContext(t *testing.T) {
	d := newLocal(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := storage.Probe(ctx, d)
	if res.OK || !errors.Is(res.Err, context.Canceled) || res.FailedStep() != "write" {
		t.Fatalf("Probe with a cancelled context = %+v", res)
	}
	emptyRoot(t, d.Root())
}

// faulty wraps a real driver and breaks one operation.
type faulty struct {
	storage.Driver
	failStat, failRead, failDelete bool
	wrongSize, wrongContent        bool
	deleted                        []string
}

var errInjected = errors.New("injected failure")

func (f *faulty) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	if f.failStat {
		return storage.FileInfo{}, errInjected
	}
	fi, err := f.Driver.Stat(ctx, p)
	if f.wrongSize {
		fi.Size++
	}
	return fi, err
}

func (f *faulty) Reader(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if f.failRead {
		return nil, errInjected
	}
	if f.wrongContent {
		return io.NopCloser(strings.NewReader("testing 124")), nil
	}
	return f.Driver.Reader(ctx, p, off)
}

func (f *faulty) Delete(ctx context.Context, p string) error {
	f.deleted = append(f.deleted, p)
	if f.failDelete {
		return errInjected
	}
	return f.Driver.Delete(ctx, p)
}

func TestProbeFailingSteps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     faulty
		wantStep  string
		wantSteps []string
		wantText  string
		leftover  bool
	}{
		{"stat error", faulty{failStat: true}, "stat", []string{"write", "stat", "delete"}, "injected", false},
		{"stat size", faulty{wrongSize: true}, "stat", []string{"write", "stat", "delete"}, "size 12", false},
		{"read", faulty{failRead: true}, "read", []string{"write", "stat", "read", "delete"}, "injected", false},
		{"compare", faulty{wrongContent: true}, "compare", []string{"write", "stat", "read", "compare", "delete"}, `read back "testing 124"`, false},
		{"delete", faulty{failDelete: true}, "delete", []string{"write", "stat", "read", "compare", "delete"}, "injected", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocal(t)
			f := tc.fault
			f.Driver = d
			res := storage.Probe(t.Context(), &f)
			if res.OK || res.FailedStep() != tc.wantStep {
				t.Fatalf("OK %v, failed step %q, want %q (err %v)", res.OK, res.FailedStep(), tc.wantStep, res.Err)
			}
			if !strings.Contains(res.Err.Error(), tc.wantText) {
				t.Errorf("error %q does not mention %q", res.Err, tc.wantText)
			}
			if got := stepNames(res); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps = %v, want %v", got, tc.wantSteps)
			}
			// The probe always tries to delete what it wrote.
			if len(f.deleted) != 1 || f.deleted[0] != res.Path {
				t.Errorf("deleted %v, want [%s]", f.deleted, res.Path)
			}
			if tc.leftover {
				if _, err := d.Stat(t.Context(), res.Path); err != nil {
					t.Errorf("object should remain when delete fails: %v", err)
				}
				return
			}
			emptyRoot(t, d.Root())
		})
	}
}

func TestValidatePath(t *testing.T) {
	for _, p := range []string{"a", "a/b", "sha256/ab/abcdef", "uploads/6f1c-uuid", ".hidden", "a/..b", "a/b..", "...", "ünïcode/ok"} {
		if err := storage.ValidatePath("X", p); err != nil {
			t.Errorf("ValidatePath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "/", "/a", "a/", "a//b", ".", "..", "./a", "a/.", "../a", "a/../b", "a/../../etc/passwd",
		`a\b`, `..\..\x`, "a\x00", "a\nb", "a\tb", "a\x7fb", "\xff"} {
		err := storage.ValidatePath("X", p)
		var ip storage.InvalidPathError
		if !errors.As(err, &ip) || ip.Driver != "X" || ip.Path != p {
			t.Errorf("ValidatePath(%q) = %v, want InvalidPathError from X", p, err)
		}
	}
}

func TestErrorTypes(t *testing.T) {
	err := error(&storage.Error{Driver: "LocalStorage", Op: "stat", Path: "a/b", Err: fs.ErrPermission})
	if !errors.Is(err, fs.ErrPermission) || err.Error() != "LocalStorage: stat a/b: permission denied" {
		t.Errorf("storage.Error = %q", err)
	}
	wrapped := error(&storage.ProbeError{Driver: "LocalStorage", Step: "read", Path: "_verify-1", Err: storage.PathNotFoundError{Driver: "LocalStorage", Path: "_verify-1"}})
	if !errors.Is(wrapped, storage.ErrNotFound) {
		t.Errorf("ProbeError does not unwrap to ErrNotFound")
	}
}
