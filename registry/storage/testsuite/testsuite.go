// Package testsuite is the contract every storage.Driver must meet. A
// driver's test calls it in three lines:
//
//	func TestDriver(t *testing.T) {
//		testsuite.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t) })
//	}
//
// newDriver is called once per subtest. Every subtest works below its own
// random prefix, so drivers backed by a shared bucket can run the suite, and
// ends by checking that the prefix is gone: nothing it wrote was left behind.
// Errors are checked by type (errors.As / errors.Is), never by text.
//
// Where driver.go leaves a choice open, the suite pins it down so callers can
// rely on one behaviour whatever the driver:
//   - paths are checked with storage.ValidatePath on every method (including
//     both Move arguments, Open and SignedURL) before anything is touched;
//   - List returns the full paths of the direct children, sorted; a missing
//     path or a file gives PathNotFoundError; in-progress objects never show;
//   - Stat of a prefix that holds objects reports IsDir; Reader and Open of
//     such a prefix give PathNotFoundError (it is not an object);
//   - Writer(append=true) continues closed in-progress content, else a copy
//     of the committed object (which stays unchanged until Commit), else
//     fails with PathNotFoundError;
//   - Delete also discards uncommitted writer content at or below the path,
//     and reports PathNotFoundError only when there was neither;
//   - after Commit or Cancel, Write, Commit and Cancel fail with
//     storage.ErrWriterClosed, while Close is a no-op (so `defer w.Close()`
//     is safe); Commit refused for a cancelled context leaves the writer
//     usable;
//   - every method fails with context.Canceled for a cancelled context
//     (Cancel excepted: cleanup must work after the request ended);
//   - Move of a missing or in-progress object gives PathNotFoundError.
package testsuite

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/storage"
)

// Run runs every contract subtest against drivers made by newDriver.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*suite)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"Overwrite", testOverwrite},
		{"InvisibleBeforeCommit", testInvisibleBeforeCommit},
		{"CloseAndResume", testCloseAndResume},
		{"AppendToCommitted", testAppendToCommitted},
		{"AppendWithNothingToResume", testAppendWithNothing},
		{"TruncateDiscardsPartial", testTruncateDiscardsPartial},
		{"WriterLifecycle", testWriterLifecycle},
		{"Cancel", testCancel},
		{"Stat", testStat},
		{"ReaderOffsets", testReaderOffsets},
		{"Move", testMove},
		{"Delete", testDelete},
		{"DeleteDiscardsPartial", testDeleteDiscardsPartial},
		{"List", testList},
		{"InvalidPaths", testInvalidPaths},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentWriters", testConcurrentWriters},
		{"LargeStream", testLargeStream},
		{"SeekOpener", testSeekOpener},
		{"URLSigner", testURLSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			s := &suite{T: t, d: d, ctx: t.Context(), prefix: randomPrefix()}
			t.Cleanup(func() {
				// Only tidy up after a failure; on success the subtest itself
				// proved the prefix empty, and a driver's own cleanup checks
				// (for example an empty root) must see what the driver left.
				if t.Failed() {
					_ = d.Delete(context.Background(), s.prefix)
				}
			})
			tc.fn(s)
			if !t.Failed() {
				s.nothingLeft()
			}
		})
	}
}

type suite struct {
	*testing.T
	d      storage.Driver
	ctx    context.Context
	prefix string
}

func randomPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "quayctl-suite-" + hex.EncodeToString(b[:])
}

// p returns a path below the subtest's prefix.
func (s *suite) p(rel string) string { return s.prefix + "/" + rel }

// nothingLeft asserts the subtest's prefix holds nothing any more.
func (s *suite) nothingLeft() {
	s.Helper()
	list, err := s.d.List(s.ctx, s.prefix)
	if err == nil {
		s.Errorf("left behind below %s: %v", s.prefix, list)
		return
	}
	s.wantNotFound(err, s.prefix)
	if _, err := s.d.Stat(s.ctx, s.prefix); err == nil {
		s.Errorf("left behind: Stat(%s) succeeded after the subtest", s.prefix)
	}
}

// put writes content to p in chunks of at most chunk bytes and commits.
func (s *suite) put(p string, content []byte) {
	s.Helper()
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatalf("Writer(%s): %v", p, err)
	}
	s.write(w, content, 7)
	if err := w.Commit(s.ctx); err != nil {
		s.Fatalf("Commit(%s): %v", p, err)
	}
	if err := w.Close(); err != nil {
		s.Fatalf("Close after Commit(%s): %v", p, err)
	}
}

func (s *suite) write(w storage.FileWriter, content []byte, chunk int) {
	s.Helper()
	start := w.Size()
	for off := 0; off < len(content); off += chunk {
		part := content[off:min(off+chunk, len(content))]
		n, err := w.Write(part)
		if err != nil || n != len(part) {
			s.Fatalf("Write: n=%d of %d, err=%v", n, len(part), err)
		}
		if got, want := w.Size(), start+int64(off+len(part)); got != want {
			s.Fatalf("Size() = %d after writing, want %d", got, want)
		}
	}
}

func (s *suite) get(p string) []byte {
	s.Helper()
	r, err := s.d.Reader(s.ctx, p, 0)
	if err != nil {
		s.Fatalf("Reader(%s): %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		s.Fatalf("read %s: %v", p, err)
	}
	return b
}

func (s *suite) wantContent(p string, want []byte) {
	s.Helper()
	if got := s.get(p); !bytes.Equal(got, want) {
		s.Fatalf("content of %s = %q, want %q", p, trim(got), trim(want))
	}
	fi, err := s.d.Stat(s.ctx, p)
	if err != nil {
		s.Fatalf("Stat(%s): %v", p, err)
	}
	if fi.Size != int64(len(want)) || fi.IsDir {
		s.Fatalf("Stat(%s) = size %d dir %v, want size %d file", p, fi.Size, fi.IsDir, len(want))
	}
}

func trim(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

func (s *suite) del(p string) {
	s.Helper()
	if err := s.d.Delete(s.ctx, p); err != nil {
		s.Fatalf("Delete(%s): %v", p, err)
	}
}

// wantNotFound checks err is a PathNotFoundError naming this driver and p.
func (s *suite) wantNotFound(err error, p string) {
	s.Helper()
	var nf storage.PathNotFoundError
	switch {
	case err == nil:
		s.Errorf("%s: got no error, want PathNotFoundError", p)
	case !errors.As(err, &nf):
		s.Errorf("%s: got %T %v, want PathNotFoundError", p, err, err)
	case !errors.Is(err, storage.ErrNotFound):
		s.Errorf("%s: %v does not match errors.Is(storage.ErrNotFound)", p, err)
	case nf.Driver != s.d.Name() || nf.Path != p:
		s.Errorf("PathNotFoundError{Driver:%q Path:%q}, want {%q %q}", nf.Driver, nf.Path, s.d.Name(), p)
	}
}

func (s *suite) wantInvalidPath(err error, method, p string) {
	s.Helper()
	var ip storage.InvalidPathError
	switch {
	case err == nil:
		s.Errorf("%s(%q): no error, want InvalidPathError", method, p)
	case !errors.As(err, &ip):
		s.Errorf("%s(%q): got %T %v, want InvalidPathError", method, p, err, err)
	case ip.Driver != s.d.Name():
		s.Errorf("%s(%q): InvalidPathError.Driver = %q, want %q", method, p, ip.Driver, s.d.Name())
	}
}

func (s *suite) wantInvalidOffset(err error, p string, off int64) {
	s.Helper()
	var oe storage.InvalidOffsetError
	switch {
	case err == nil:
		s.Errorf("Reader(%s, %d): no error, want InvalidOffsetError", p, off)
	case !errors.As(err, &oe):
		s.Errorf("Reader(%s, %d): got %T %v, want InvalidOffsetError", p, off, err, err)
	case oe.Driver != s.d.Name() || oe.Path != p || oe.Offset != off:
		s.Errorf("InvalidOffsetError = %+v, want driver %q path %q offset %d", oe, s.d.Name(), p, off)
	}
}

func testRoundTrip(s *suite) {
	if s.d.Name() == "" {
		s.Error("Name() is empty")
	}
	p := s.p("dir/sub/object")
	content := []byte("the quick brown fox jumps over the lazy dog")
	before := time.Now().Add(-time.Minute)
	s.put(p, content)
	s.wantContent(p, content)
	fi, err := s.d.Stat(s.ctx, p)
	if err != nil {
		s.Fatal(err)
	}
	if fi.Path != p {
		s.Errorf("Stat.Path = %q, want %q", fi.Path, p)
	}
	if fi.ModTime.Before(before) || fi.ModTime.After(time.Now().Add(time.Minute)) {
		s.Errorf("Stat.ModTime = %v, want about now", fi.ModTime)
	}
	s.del(p)
	_, err = s.d.Stat(s.ctx, p)
	s.wantNotFound(err, p)
}

func testEmptyObject(s *suite) {
	p := s.p("empty")
	s.put(p, nil)
	s.wantContent(p, []byte{})
	s.del(p)
}

func testOverwrite(s *suite) {
	p := s.p("obj")
	s.put(p, []byte("first version, longer"))
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	if w.Size() != 0 {
		s.Errorf("Writer(append=false) on a committed object: Size() = %d, want 0", w.Size())
	}
	s.write(w, []byte("second"), 4)
	// The old object stays whole and visible until Commit.
	s.wantContent(p, []byte("first version, longer"))
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.wantContent(p, []byte("second"))
	s.del(p)
}

func testInvisibleBeforeCommit(s *suite) {
	p := s.p("dir/pending")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("not yet"), 3)
	invisible := func(when string) {
		s.Helper()
		_, err := s.d.Stat(s.ctx, p)
		s.wantNotFound(err, p)
		_, err = s.d.Reader(s.ctx, p, 0)
		s.wantNotFound(err, p)
		if list, err := s.d.List(s.ctx, s.prefix); err == nil {
			s.Errorf("%s: List(%s) = %v, want nothing (in-progress data must stay hidden)", when, s.prefix, list)
		}
	}
	invisible("while writing")
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}
	invisible("after Close")

	w, err = s.d.Writer(s.ctx, p, true)
	if err != nil {
		s.Fatal(err)
	}
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.wantContent(p, []byte("not yet"))
	s.del(p)
}

func testCloseAndResume(s *suite) {
	p := s.p("uploads/resumable")
	chunks := [][]byte{
		bytes.Repeat([]byte("a"), 1000),
		bytes.Repeat([]byte("b"), 70_000),
		[]byte("c"),
		bytes.Repeat([]byte("d"), 4096),
	}
	var want []byte
	for i, c := range chunks {
		w, err := s.d.Writer(s.ctx, p, i > 0)
		if err != nil {
			s.Fatalf("chunk %d: Writer: %v", i, err)
		}
		if w.Size() != int64(len(want)) {
			s.Fatalf("chunk %d: resumed Size() = %d, want %d", i, w.Size(), len(want))
		}
		s.write(w, c, 1<<14)
		want = append(want, c...)
		if i < len(chunks)-1 {
			if err := w.Close(); err != nil {
				s.Fatalf("chunk %d: Close: %v", i, err)
			}
			_, err := s.d.Stat(s.ctx, p)
			s.wantNotFound(err, p)
			continue
		}
		if err := w.Commit(s.ctx); err != nil {
			s.Fatalf("Commit: %v", err)
		}
	}
	s.wantContent(p, want)
	s.del(p)
}

func testAppendToCommitted(s *suite) {
	p := s.p("appended")
	s.put(p, []byte("abc"))
	w, err := s.d.Writer(s.ctx, p, true)
	if err != nil {
		s.Fatal(err)
	}
	if w.Size() != 3 {
		s.Errorf("append to committed object: Size() = %d, want 3", w.Size())
	}
	s.write(w, []byte("def"), 2)
	s.wantContent(p, []byte("abc")) // unchanged until Commit
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.wantContent(p, []byte("abcdef"))
	s.del(p)
}

func testAppendWithNothing(s *suite) {
	p := s.p("never-written")
	w, err := s.d.Writer(s.ctx, p, true)
	if err == nil {
		w.Cancel(s.ctx)
	}
	s.wantNotFound(err, p)
}

func testTruncateDiscardsPartial(s *suite) {
	p := s.p("restart")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("stale partial"), 5)
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}
	w, err = s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	if w.Size() != 0 {
		s.Errorf("Writer(append=false) after Close: Size() = %d, want 0", w.Size())
	}
	s.write(w, []byte("fresh"), 5)
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.wantContent(p, []byte("fresh"))
	s.del(p)
}

func testWriterLifecycle(s *suite) {
	p := s.p("lifecycle")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("x"), 1)
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); !errors.Is(err, storage.ErrWriterClosed) {
		s.Errorf("Write after Commit: %v, want ErrWriterClosed", err)
	}
	if err := w.Commit(s.ctx); !errors.Is(err, storage.ErrWriterClosed) {
		s.Errorf("second Commit: %v, want ErrWriterClosed", err)
	}
	if err := w.Close(); err != nil {
		s.Errorf("Close after Commit: %v, want nil", err)
	}

	w, err = s.d.Writer(s.ctx, p, true)
	if err != nil {
		s.Fatal(err)
	}
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); !errors.Is(err, storage.ErrWriterClosed) {
		s.Errorf("Write after Close: %v, want ErrWriterClosed", err)
	}
	if err := w.Commit(s.ctx); !errors.Is(err, storage.ErrWriterClosed) {
		s.Errorf("Commit after Close: %v, want ErrWriterClosed", err)
	}
	if err := w.Close(); err != nil {
		s.Errorf("second Close: %v, want nil", err)
	}
	// The closed append writer held a copy of "x"; discard it.
	w, err = s.d.Writer(s.ctx, p, true)
	if err != nil {
		s.Fatal(err)
	}
	if err := w.Cancel(s.ctx); err != nil {
		s.Fatal(err)
	}
	if err := w.Cancel(s.ctx); !errors.Is(err, storage.ErrWriterClosed) {
		s.Errorf("second Cancel: %v, want ErrWriterClosed", err)
	}
	s.wantContent(p, []byte("x"))
	s.del(p)
}

func testCancel(s *suite) {
	p := s.p("dir/cancelled")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("discard me"), 3)
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}
	// Resume, write more, then give up.
	w, err = s.d.Writer(s.ctx, p, true)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte(" and me"), 3)
	if err := w.Cancel(s.ctx); err != nil {
		s.Fatalf("Cancel: %v", err)
	}
	_, err = s.d.Stat(s.ctx, p)
	s.wantNotFound(err, p)
	w, err = s.d.Writer(s.ctx, p, true)
	if err == nil {
		w.Cancel(s.ctx)
	}
	s.wantNotFound(err, p)

	// Cancelling a rewrite of a committed object leaves the object alone.
	keep := s.p("kept")
	s.put(keep, []byte("keep"))
	w, err = s.d.Writer(s.ctx, keep, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("replacement"), 4)
	if err := w.Cancel(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.wantContent(keep, []byte("keep"))
	s.del(keep)
}

func testStat(s *suite) {
	file := s.p("a/b/file")
	s.put(file, []byte("12345"))
	fi, err := s.d.Stat(s.ctx, file)
	if err != nil {
		s.Fatal(err)
	}
	if fi.IsDir || fi.Size != 5 || fi.Path != file {
		s.Errorf("Stat(file) = %+v, want size 5, not a dir", fi)
	}
	for _, dir := range []string{s.prefix, s.p("a"), s.p("a/b")} {
		fi, err := s.d.Stat(s.ctx, dir)
		if err != nil {
			s.Errorf("Stat(%s): %v", dir, err)
			continue
		}
		if !fi.IsDir || fi.Path != dir {
			s.Errorf("Stat(%s) = %+v, want IsDir", dir, fi)
		}
	}
	for _, missing := range []string{s.p("missing"), s.p("a/missing"), s.p("a/b/file/below-a-file"), s.p("a/b/fil")} {
		_, err := s.d.Stat(s.ctx, missing)
		s.wantNotFound(err, missing)
	}
	s.del(file)
}

func testReaderOffsets(s *suite) {
	p := s.p("offsets")
	content := []byte("0123456789abcdefghij")
	s.put(p, content)
	size := int64(len(content))
	for _, off := range []int64{0, 1, 10, size - 1, size} {
		r, err := s.d.Reader(s.ctx, p, off)
		if err != nil {
			s.Errorf("Reader(offset %d): %v", off, err)
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			s.Errorf("read at offset %d: %v", off, err)
		}
		if !bytes.Equal(got, content[off:]) {
			s.Errorf("Reader(offset %d) = %q, want %q", off, got, content[off:])
		}
	}
	for _, off := range []int64{size + 1, size + 1<<20, -1} {
		r, err := s.d.Reader(s.ctx, p, off)
		if err == nil {
			r.Close()
		}
		s.wantInvalidOffset(err, p, off)
	}
	missing := s.p("missing")
	_, err := s.d.Reader(s.ctx, missing, 0)
	s.wantNotFound(err, missing)
	// A directory is not an object.
	s.put(s.p("dir/child"), []byte("x"))
	_, err = s.d.Reader(s.ctx, s.p("dir"), 0)
	s.wantNotFound(err, s.p("dir"))
	s.del(s.p("dir"))
	s.del(p)
}

func testMove(s *suite) {
	src, dst := s.p("src/obj"), s.p("deep/er/dst")
	s.put(src, []byte("moving"))
	if err := s.d.Move(s.ctx, src, dst); err != nil {
		s.Fatalf("Move: %v", err)
	}
	s.wantContent(dst, []byte("moving"))
	_, err := s.d.Stat(s.ctx, src)
	s.wantNotFound(err, src)
	// The source's directory emptied out and must not linger.
	if list, err := s.d.List(s.ctx, s.p("src")); err == nil {
		s.Errorf("List(src dir) after Move = %v, want PathNotFoundError", list)
	}

	// Overwrite an existing destination.
	other := s.p("other")
	s.put(other, []byte("replacement content"))
	if err := s.d.Move(s.ctx, other, dst); err != nil {
		s.Fatalf("Move onto existing: %v", err)
	}
	s.wantContent(dst, []byte("replacement content"))
	_, err = s.d.Stat(s.ctx, other)
	s.wantNotFound(err, other)

	// Moving onto itself keeps the object.
	if err := s.d.Move(s.ctx, dst, dst); err != nil {
		s.Errorf("Move onto itself: %v", err)
	}
	s.wantContent(dst, []byte("replacement content"))

	missing := s.p("missing")
	err = s.d.Move(s.ctx, missing, s.p("nowhere"))
	s.wantNotFound(err, missing)
	_, err = s.d.Stat(s.ctx, s.p("nowhere"))
	s.wantNotFound(err, s.p("nowhere"))

	// An in-progress object cannot be moved.
	w, err := s.d.Writer(s.ctx, s.p("pending"), false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("pending"), 7)
	err = s.d.Move(s.ctx, s.p("pending"), s.p("moved-pending"))
	s.wantNotFound(err, s.p("pending"))
	if err := w.Cancel(s.ctx); err != nil {
		s.Fatal(err)
	}
	s.del(dst)
}

func testDelete(s *suite) {
	keep := s.p("keep")
	s.put(keep, []byte("k"))
	single := s.p("single")
	s.put(single, []byte("s"))
	s.del(single)
	_, err := s.d.Stat(s.ctx, single)
	s.wantNotFound(err, single)
	s.wantContent(keep, []byte("k"))

	tree := []string{"tree/a", "tree/b/c", "tree/b/d/e", "tree/f/g"}
	for _, rel := range tree {
		s.put(s.p(rel), []byte(rel))
	}
	s.put(s.p("treeish"), []byte("a sibling sharing the name's prefix"))
	s.del(s.p("tree"))
	for _, rel := range append(tree, "tree", "tree/b", "tree/b/d") {
		_, err := s.d.Stat(s.ctx, s.p(rel))
		s.wantNotFound(err, s.p(rel))
	}
	s.wantContent(s.p("treeish"), []byte("a sibling sharing the name's prefix"))
	s.wantContent(keep, []byte("k"))

	// Deleting a subtree's last object removes its empty parents.
	s.put(s.p("x/y/z"), []byte("z"))
	s.del(s.p("x/y/z"))
	if _, err := s.d.Stat(s.ctx, s.p("x")); err == nil {
		s.Errorf("Stat(x) succeeded after deleting x/y/z; empty parents were left behind")
	}

	for _, missing := range []string{s.p("missing"), s.p("tree"), single} {
		err := s.d.Delete(s.ctx, missing)
		s.wantNotFound(err, missing)
	}
	s.del(s.p("treeish"))
	s.del(keep)
}

func testDeleteDiscardsPartial(s *suite) {
	p := s.p("uploads/abandoned")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("partial"), 7)
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}
	// Deleting an upload that was never committed discards its bytes.
	s.del(p)
	w, err = s.d.Writer(s.ctx, p, true)
	if err == nil {
		w.Cancel(s.ctx)
	}
	s.wantNotFound(err, p)
}

func testList(s *suite) {
	for _, rel := range []string{"b", "a", "c/x", "c/y/z", "d/e"} {
		s.put(s.p(rel), []byte(rel))
	}
	w, err := s.d.Writer(s.ctx, s.p("pending"), false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("hidden"), 6)
	if err := w.Close(); err != nil {
		s.Fatal(err)
	}

	want := []string{s.p("a"), s.p("b"), s.p("c"), s.p("d")}
	got, err := s.d.List(s.ctx, s.prefix)
	if err != nil {
		s.Fatalf("List(%s): %v", s.prefix, err)
	}
	if !slices.Equal(got, want) {
		s.Errorf("List(%s) = %v, want %v", s.prefix, got, want)
	}
	want = []string{s.p("c/x"), s.p("c/y")}
	if got, err := s.d.List(s.ctx, s.p("c")); err != nil || !slices.Equal(got, want) {
		s.Errorf("List(c) = %v, %v; want %v", got, err, want)
	}
	for _, missing := range []string{s.p("missing"), s.p("c/missing"), s.p("pending")} {
		_, err := s.d.List(s.ctx, missing)
		s.wantNotFound(err, missing)
	}
	// A file has no children.
	_, err = s.d.List(s.ctx, s.p("a"))
	s.wantNotFound(err, s.p("a"))

	w, err = s.d.Writer(s.ctx, s.p("pending"), true)
	if err != nil {
		s.Fatal(err)
	}
	if err := w.Cancel(s.ctx); err != nil {
		s.Fatal(err)
	}
	for _, rel := range []string{"a", "b", "c", "d"} {
		s.del(s.p(rel))
	}
}

// badPaths are refused by every method before any storage is touched. Several
// would escape a file system root if joined naively.
func (s *suite) badPaths() []string {
	return []string{
		"",
		"/",
		"/abs",
		"/etc/passwd",
		".",
		"..",
		"../x",
		"./x",
		"a/../../x",
		s.p("../../x"),
		s.p("a/.."),
		s.p("./a"),
		s.p("a/./b"),
		"a//b",
		s.p("a//b"),
		s.p("a/"),
		s.p("a\\b"),
		"..\\x",
		s.p("a\x00b"),
		s.p("a\nb"),
		s.p("\xff\xfe"),
	}
}

func testInvalidPaths(s *suite) {
	good := s.p("good")
	s.put(good, []byte("good"))
	for _, bad := range s.badPaths() {
		r, err := s.d.Reader(s.ctx, bad, 0)
		if err == nil {
			r.Close()
		}
		s.wantInvalidPath(err, "Reader", bad)

		w, err := s.d.Writer(s.ctx, bad, false)
		if err == nil {
			w.Cancel(s.ctx)
		}
		s.wantInvalidPath(err, "Writer", bad)
		w, err = s.d.Writer(s.ctx, bad, true)
		if err == nil {
			w.Cancel(s.ctx)
		}
		s.wantInvalidPath(err, "Writer(append)", bad)

		_, err = s.d.Stat(s.ctx, bad)
		s.wantInvalidPath(err, "Stat", bad)
		_, err = s.d.List(s.ctx, bad)
		s.wantInvalidPath(err, "List", bad)
		err = s.d.Delete(s.ctx, bad)
		s.wantInvalidPath(err, "Delete", bad)
		err = s.d.Move(s.ctx, bad, s.p("dst"))
		s.wantInvalidPath(err, "Move(src)", bad)
		err = s.d.Move(s.ctx, good, bad)
		s.wantInvalidPath(err, "Move(dst)", bad)
		if so, ok := s.d.(storage.SeekOpener); ok {
			f, _, err := so.Open(s.ctx, bad)
			if err == nil {
				f.Close()
			}
			s.wantInvalidPath(err, "Open", bad)
		}
		if us, ok := s.d.(storage.URLSigner); ok {
			_, err := us.SignedURL(s.ctx, bad, time.Minute)
			s.wantInvalidPath(err, "SignedURL", bad)
		}
	}
	// A refused Move must not have disturbed its valid side.
	s.wantContent(good, []byte("good"))
	s.del(good)
}

func testCancelledContext(s *suite) {
	p := s.p("obj")
	s.put(p, []byte("x"))
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	check := func(method string, err error) {
		s.Helper()
		if !errors.Is(err, context.Canceled) {
			s.Errorf("%s with a cancelled context: %v, want context.Canceled", method, err)
		}
	}
	r, err := s.d.Reader(ctx, p, 0)
	if err == nil {
		r.Close()
	}
	check("Reader", err)
	w, err := s.d.Writer(ctx, s.p("new"), false)
	if err == nil {
		w.Cancel(s.ctx)
	}
	check("Writer", err)
	_, err = s.d.Stat(ctx, p)
	check("Stat", err)
	_, err = s.d.List(ctx, s.prefix)
	check("List", err)
	check("Move", s.d.Move(ctx, p, s.p("moved")))
	check("Delete", s.d.Delete(ctx, p))

	// Commit refuses a cancelled context and keeps the bytes for a retry.
	w, err = s.d.Writer(s.ctx, s.p("commit"), false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("retry me"), 8)
	check("Commit", w.Commit(ctx))
	if err := w.Commit(s.ctx); err != nil {
		s.Fatalf("Commit after a refused Commit: %v", err)
	}
	s.wantContent(s.p("commit"), []byte("retry me"))
	s.wantContent(p, []byte("x"))

	// Cancel still cleans up when the request's context has ended.
	w, err = s.d.Writer(s.ctx, s.p("abandoned"), false)
	if err != nil {
		s.Fatal(err)
	}
	s.write(w, []byte("discard"), 7)
	if err := w.Cancel(ctx); err != nil {
		s.Errorf("Cancel with a cancelled context: %v, want nil", err)
	}
	w, err = s.d.Writer(s.ctx, s.p("abandoned"), true)
	if err == nil {
		w.Cancel(s.ctx)
	}
	s.wantNotFound(err, s.p("abandoned"))
	s.del(s.p("commit"))
	s.del(p)
}

func testConcurrentWriters(s *suite) {
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	content := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 100_000+i) }
	for i := range writers {
		wg.Go(func() {
			p := s.p(fmt.Sprintf("shared/dir/w%d", i))
			w, err := s.d.Writer(s.ctx, p, false)
			if err != nil {
				errs <- err
				return
			}
			c := content(i)
			for off := 0; off < len(c); off += 4096 {
				if _, err := w.Write(c[off:min(off+4096, len(c))]); err != nil {
					w.Cancel(s.ctx)
					errs <- err
					return
				}
			}
			if err := w.Commit(s.ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.Errorf("concurrent writer: %v", err)
	}
	if s.Failed() {
		return
	}
	list, err := s.d.List(s.ctx, s.p("shared/dir"))
	if err != nil || len(list) != writers {
		s.Fatalf("List after concurrent writes = %v, %v; want %d objects", list, err, writers)
	}
	for i := range writers {
		s.wantContent(s.p(fmt.Sprintf("shared/dir/w%d", i)), content(i))
	}
	// Concurrent deletes of siblings race on removing the shared empty parents.
	for i := range writers {
		wg.Go(func() {
			if err := s.d.Delete(s.ctx, s.p(fmt.Sprintf("shared/dir/w%d", i))); err != nil {
				s.Errorf("concurrent Delete: %v", err)
			}
		})
	}
	wg.Wait()
}

// generator produces n pseudo-random bytes without holding them, so the
// suite's memory stays flat whatever the object size.
func generator(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

func testLargeStream(s *suite) {
	const size = 32 << 20
	p := s.p("large")
	w, err := s.d.Writer(s.ctx, p, false)
	if err != nil {
		s.Fatal(err)
	}
	sent := sha256.New()
	n, err := io.CopyBuffer(w, io.TeeReader(generator(1, size), sent), make([]byte, 1<<20))
	if err != nil || n != size {
		w.Cancel(s.ctx)
		s.Fatalf("streaming %d bytes: wrote %d, %v", size, n, err)
	}
	if w.Size() != size {
		s.Errorf("Size() = %d, want %d", w.Size(), size)
	}
	if err := w.Commit(s.ctx); err != nil {
		s.Fatal(err)
	}
	fi, err := s.d.Stat(s.ctx, p)
	if err != nil || fi.Size != size {
		s.Fatalf("Stat = %+v, %v; want size %d", fi, err, size)
	}
	r, err := s.d.Reader(s.ctx, p, 0)
	if err != nil {
		s.Fatal(err)
	}
	got := sha256.New()
	n, err = io.Copy(got, r)
	r.Close()
	if err != nil || n != size {
		s.Fatalf("reading back: %d bytes, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		s.Fatalf("sha256 read back %x, sent %x", got.Sum(nil), sent.Sum(nil))
	}
	// A read from the middle sees the generator's tail.
	const off = size - 12345
	r, err = s.d.Reader(s.ctx, p, off)
	if err != nil {
		s.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	r.Close()
	want, _ := io.ReadAll(io.NewSectionReader(readerAt{seed: 1, n: size}, off, size-off))
	if err != nil || !bytes.Equal(tail, want) {
		s.Fatalf("Reader(offset %d): %d bytes, %v; content differs from generator", off, len(tail), err)
	}
	s.del(p)
}

// readerAt replays the generator up to an offset; only used for small tails.
type readerAt struct {
	seed uint64
	n    int64
}

func (g readerAt) ReadAt(b []byte, off int64) (int, error) {
	r := generator(g.seed, g.n)
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return 0, err
	}
	return io.ReadFull(r, b)
}

// testSeekOpener checks the optional local-file interface.
func testSeekOpener(s *suite) {
	so, ok := s.d.(storage.SeekOpener)
	if !ok {
		s.Skip("driver does not implement storage.SeekOpener")
	}
	p := s.p("seekable")
	content := []byte("0123456789")
	s.put(p, content)
	f, fi, err := so.Open(s.ctx, p)
	if err != nil {
		s.Fatal(err)
	}
	if fi.Size != int64(len(content)) || fi.IsDir || fi.Path != p {
		s.Errorf("Open FileInfo = %+v", fi)
	}
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		s.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(got) != "456789" {
		s.Errorf("read after Seek(4) = %q, %v", got, err)
	}
	_, _, err = so.Open(s.ctx, s.p("missing"))
	s.wantNotFound(err, s.p("missing"))
	s.del(p)
}

// testURLSigner fetches a signed URL with plain HTTP and compares content.
func testURLSigner(s *suite) {
	us, ok := s.d.(storage.URLSigner)
	if !ok {
		s.Skip("driver does not implement storage.URLSigner")
	}
	p := s.p("signed")
	s.put(p, []byte("signed content"))
	url, err := us.SignedURL(s.ctx, p, time.Minute)
	if err != nil {
		s.Fatal(err)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, url, nil)
	if err != nil {
		s.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "signed content" {
		s.Errorf("GET signed URL: %s %q %v", resp.Status, strings.TrimSpace(string(body)), err)
	}
	s.del(p)
}
