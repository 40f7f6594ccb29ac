package v2

import (
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

const (
	copyBufSize = 1 << 20
	// ownBufs is how many buffers every upload may use. It is enough to
	// overlap reading, hashing and writing, not to ride out hiccups.
	ownBufs = 4
	// maxBufs is how many buffers one upload may hold with spare ones. The
	// hasher is the slowest stage of a push; spare buffers let the request
	// be read further ahead of it, and storage fall further behind it,
	// without the hasher ever waiting. A local file system stalls a write
	// for milliseconds now and then (a journal commit, page reclaim), and
	// on a busy machine the reader is not always scheduled at once; with
	// only ownBufs either stops the hasher, which cost about a sixth of the
	// push rate on the project's 2-core VMs.
	maxBufs = 16
	// spareBufs bounds, process-wide, the buffers uploads hold beyond
	// ownBufs, so many concurrent uploads add at most 64 MiB.
	spareBufs = 64
)

var (
	copyBuffers   = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
	spareCopyBufs = semaphore.NewWeighted(spareBufs)
)

// copyChunk is one buffer on its way to the hasher and the writer; the
// second of them to finish with it returns it to the free list.
type copyChunk struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
}

// copyHashing copies src to dst and feeds the same bytes to h. Reading the
// request, hashing and writing storage run in three goroutines, so a push
// costs the slowest of them rather than their sum. Buffers circulate
// through a free list and are allocated only when the pipeline needs them
// (see maxBufs), so memory stays flat whatever the blob size.
func copyHashing(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	p := newCopyPipeline()
	defer p.close()

	// Neither channel ever blocks a send: at most maxBufs chunks exist.
	toHash := make(chan *copyChunk, maxBufs)
	toWrite := make(chan *copyChunk, maxBufs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for c := range toHash {
			h.Write((*c.buf)[:c.n])
			p.release(c)
		}
	}()
	var werr error // the first storage write error, set before writeFailed is closed
	writeFailed := make(chan struct{})
	go func() {
		defer wg.Done()
		for c := range toWrite {
			if werr == nil {
				if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
					werr = err
					close(writeFailed)
				}
			}
			p.release(c)
		}
	}()

	var total int64
	var err error
	for {
		buf := p.get(writeFailed)
		if buf == nil {
			break // storage failed: stop reading
		}
		n, rerr := io.ReadFull(src, *buf)
		if n > 0 {
			c := &copyChunk{buf: buf, n: n}
			c.refs.Store(2)
			total += int64(n)
			toWrite <- c
			toHash <- c
		} else {
			p.put(buf)
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
				err = rerr
			}
			break
		}
	}
	close(toHash)
	close(toWrite)
	wg.Wait()
	if werr != nil {
		err = werr
	}
	return total, err
}

// copyPipeline hands out one upload's buffers: up to ownBufs of its own,
// then spare ones while the process-wide budget allows, up to maxBufs.
type copyPipeline struct {
	free      chan *[]byte
	allocated int // buffers taken from copyBuffers; only the reader changes it
	spares    int // how many of them hold a spareCopyBufs token
}

func newCopyPipeline() *copyPipeline {
	return &copyPipeline{free: make(chan *[]byte, maxBufs)}
}

// get returns a free buffer, allocating one if the upload may, else waiting
// for one to come back. It returns nil once stop is closed.
func (p *copyPipeline) get(stop <-chan struct{}) *[]byte {
	select {
	case <-stop:
		return nil
	case b := <-p.free:
		return b
	default:
	}
	if p.allocated < ownBufs || (p.allocated < maxBufs && spareCopyBufs.TryAcquire(1)) {
		if p.allocated >= ownBufs {
			p.spares++
		}
		p.allocated++
		return copyBuffers.Get().(*[]byte)
	}
	select {
	case b := <-p.free:
		return b
	case <-stop:
		return nil
	}
}

// put returns a buffer to the free list (never blocks: it has room for
// every buffer the upload allocated).
func (p *copyPipeline) put(b *[]byte) { p.free <- b }

// release drops one stage's hold on c; the last one frees the buffer.
func (p *copyPipeline) release(c *copyChunk) {
	if c.refs.Add(-1) == 0 {
		p.put(c.buf)
	}
}

// close returns every buffer to the pool and the spare tokens to the
// budget; all stages must have finished.
func (p *copyPipeline) close() {
	for i := 0; i < p.allocated; i++ {
		copyBuffers.Put(<-p.free)
	}
	if p.spares > 0 {
		spareCopyBufs.Release(int64(p.spares))
	}
}
