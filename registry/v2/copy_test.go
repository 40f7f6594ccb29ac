package v2

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingReader counts the bytes handed out by r.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// gatedWriter blocks every Write until open is closed, then collects.
type gatedWriter struct {
	open    chan struct{}
	buf     bytes.Buffer
	written atomic.Int64
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	g.written.Add(int64(len(p)))
	return g.buf.Write(p)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func TestCopyHashingCopiesAndHashes(t *testing.T) {
	for _, size := range []int{0, 1, copyBufSize - 1, copyBufSize, copyBufSize + 1, 5*copyBufSize + 12345, (maxBufs + 7) * copyBufSize} {
		src := randomBytes(size)
		var dst bytes.Buffer
		h := sha256.New()
		n, err := copyHashing(&dst, h, bytes.NewReader(src))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if n != int64(size) || !bytes.Equal(dst.Bytes(), src) {
			t.Fatalf("size %d: copied %d bytes, equal %v", size, n, bytes.Equal(dst.Bytes(), src))
		}
		if want := sha256.Sum256(src); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("size %d: wrong hash", size)
		}
	}
	assertSparesReturned(t)
}

// gatedHash blocks every Write until open is closed.
type gatedHash struct {
	hash.Hash
	open    chan struct{}
	written atomic.Int64
}

func (g *gatedHash) Write(p []byte) (int, error) {
	<-g.open
	g.written.Add(int64(len(p)))
	return g.Hash.Write(p)
}

// A stall of storage or of the hasher does not stop the request being
// read (nor the other stage), up to maxBufs buffers while spare ones are
// to be had, ownBufs when not, and not beyond; the bytes still arrive
// intact and hashed.
func TestCopyHashingReadsAheadOfAStalledStage(t *testing.T) {
	tests := []struct {
		name         string
		stallStorage bool // else the hasher stalls
		// spares held elsewhere in the process during the copy
		sparesTaken int64
		// bytes the reader may have read while the stage is stuck
		wantAhead int
	}{
		{"storage stalls, spare budget free", true, 0, maxBufs * copyBufSize},
		{"storage stalls, spare budget exhausted", true, spareBufs, ownBufs * copyBufSize},
		{"hasher stalls, spare budget free", false, 0, maxBufs * copyBufSize},
		{"hasher stalls, spare budget exhausted", false, spareBufs, ownBufs * copyBufSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sparesTaken > 0 {
				if !spareCopyBufs.TryAcquire(tc.sparesTaken) {
					t.Fatal("spare budget in use by another test")
				}
				defer spareCopyBufs.Release(tc.sparesTaken)
			}
			size := (maxBufs + 8) * copyBufSize
			data := randomBytes(size)
			src := &countingReader{r: bytes.NewReader(data)}
			gate := make(chan struct{})
			dst := &gatedWriter{open: gate}
			dst.buf.Grow(size) // no slow growth mistaken for a stall
			h := &gatedHash{Hash: sha256.New(), open: gate}
			stalled, flowing := &dst.written, &h.written
			if !tc.stallStorage {
				dst.open = nil
				stalled, flowing = flowing, stalled
			}
			if dst.open == nil {
				dst.open = closedChan()
			} else {
				h.open = closedChan()
			}
			var wg sync.WaitGroup
			var n int64
			var err error
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err = copyHashing(dst, h, src)
			}()

			// Wait until reading and the other stage stop moving.
			var last, lastFlowing int64 = -1, -1
			for stable := 0; stable < 5; {
				time.Sleep(20 * time.Millisecond)
				if cur, f := src.n.Load(), flowing.Load(); cur == last && f == lastFlowing {
					stable++
				} else {
					last, lastFlowing, stable = cur, f, 0
				}
			}
			if stalled.Load() != 0 {
				t.Fatal("the stalled stage went through its gate")
			}
			if last != int64(tc.wantAhead) {
				t.Errorf("read %d bytes ahead of the stalled stage, want %d", last, tc.wantAhead)
			}
			if got := flowing.Load(); got != last {
				t.Errorf("the other stage took %d of the %d bytes read", got, last)
			}
			close(gate)
			wg.Wait()
			if err != nil || n != int64(size) || !bytes.Equal(dst.buf.Bytes(), data) {
				t.Fatalf("copy after the stall: n=%d err=%v equal=%v", n, err, bytes.Equal(dst.buf.Bytes(), data))
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("wrong hash")
			}
		})
	}
	assertSparesReturned(t)
}

type failingWriter struct{ after int }

var errStorage = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errStorage
	}
	f.after--
	return len(p), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestCopyHashingErrors(t *testing.T) {
	// A storage error ends the copy with that error without reading the
	// (endless) request to its end.
	src := &countingReader{r: rand.NewChaCha8([32]byte{1})}
	_, err := copyHashing(&failingWriter{after: 3}, sha256.New(), src)
	if !errors.Is(err, errStorage) {
		t.Fatalf("storage failure: got %v, want %v", err, errStorage)
	}
	if got := src.n.Load(); got > int64(3+maxBufs+1)*copyBufSize {
		t.Errorf("read %d bytes after storage failed", got)
	}

	// A request that breaks off is reported, after what came before it.
	errBroken := errors.New("connection reset")
	var dst bytes.Buffer
	head := randomBytes(copyBufSize + 10)
	n, err := copyHashing(&dst, sha256.New(), io.MultiReader(bytes.NewReader(head), errReader{errBroken}))
	if !errors.Is(err, errBroken) {
		t.Fatalf("broken request: got %v, want %v", err, errBroken)
	}
	if n != int64(len(head)) || !bytes.Equal(dst.Bytes(), head) {
		t.Errorf("broken request: %d bytes stored, want the %d read before the error", n, len(head))
	}
	assertSparesReturned(t)
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func assertSparesReturned(t *testing.T) {
	t.Helper()
	if !spareCopyBufs.TryAcquire(spareBufs) {
		t.Fatal("copyHashing did not return its spare buffers to the budget")
	}
	spareCopyBufs.Release(spareBufs)
}
