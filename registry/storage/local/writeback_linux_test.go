package local

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWriterDropBehind: a committed upload of at least one writeback chunk
// leaves none of its pages in the page cache (they were synced and dropped
// as the upload went, the tail at Commit), a smaller one all of them,
// through fresh and resumed writers; and the committed bytes are intact.
func TestWriterDropBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("writes over 100 MiB")
	}
	const mib = 1 << 20
	tests := []struct {
		name     string
		sessions []int64 // bytes written per writer; each after the first appends
		// The committed file's first dropped bytes must be out of the page
		// cache, and everything from dropped on must still be in it.
		dropped int64
	}{
		{"below one chunk nothing is dropped", []int64{writebackChunk - 4*mib}, 0},
		{"one writer, one and a half chunks", []int64{writebackChunk * 3 / 2}, writebackChunk * 3 / 2},
		{"one writer, several chunks", []int64{3*writebackChunk + 5*mib}, 3*writebackChunk + 5*mib},
		{"resumed writer", []int64{writebackChunk * 2 / 3, writebackChunk}, writebackChunk * 5 / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			d, err := New(map[string]any{"storage_path": root})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			const p = "sha256/ab/blob"
			src := newPattern()
			h := sha256.New()
			var total int64
			for i, n := range tc.sessions {
				w, err := d.Writer(ctx, p, i > 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.CopyBuffer(w, io.TeeReader(io.LimitReader(src, n), h), make([]byte, mib)); err != nil {
					t.Fatal(err)
				}
				total += n
				if i < len(tc.sessions)-1 {
					err = w.Close()
				} else {
					err = w.Commit(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}

			f, err := os.Open(filepath.Join(root, filepath.FromSlash(p)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			resident := residentPages(t, f, total)
			page := int64(os.Getpagesize())
			var inDropped, inKept int64
			for i, r := range resident {
				switch {
				case !r:
				case int64(i)*page < tc.dropped:
					inDropped++
				default:
					inKept++
				}
			}
			if inDropped > 0 {
				t.Errorf("%d of the first %d pages are in the page cache, want none", inDropped, tc.dropped/page)
			}
			if want := (total - tc.dropped) / page; inKept < want {
				t.Errorf("%d of the last %d pages are in the page cache, want all (dropped too much)", inKept, want)
			}

			// Read after the residency check: reading fills the cache again.
			got := sha256.New()
			if _, err := io.Copy(got, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Sum(nil), h.Sum(nil)) {
				t.Error("committed bytes differ from the bytes written")
			}
		})
	}
}

// residentPages reports, per page of f's first size bytes, whether it is in
// the page cache (mincore of a read-only mapping; mapping does not fault
// pages in).
func residentPages(t *testing.T, f *os.File, size int64) []bool {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix has no Mincore wrapper on Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}
