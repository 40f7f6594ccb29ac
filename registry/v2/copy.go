package v2

import (
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

const (
	copyBufSize = 1 << 20
	copyBufs    = 4 // per upload: bounds memory at 4 MiB however large the blob
)

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyChunk is one buffer on its way to the hasher and the writer; the
// second of them to finish with it returns it to the free list.
type copyChunk struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
}

// copyHashing copies src to dst and feeds the same bytes to h. Reading the
// request, hashing and writing storage run in three goroutines, so a push
// costs the slowest of them rather than their sum: storage writes can wait
// on disk writeback (local drop-behind) or the network (S3 parts) while
// the request keeps being read and hashed. Buffers circulate through a
// small free list, so memory stays flat whatever the blob size.
func copyHashing(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	free := make(chan *[]byte, copyBufs)
	for i := 0; i < copyBufs; i++ {
		free <- copyBuffers.Get().(*[]byte)
	}
	release := func(c *copyChunk) {
		if c.refs.Add(-1) == 0 {
			free <- c.buf
		}
	}
	toHash := make(chan *copyChunk, copyBufs)
	toWrite := make(chan *copyChunk, copyBufs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for c := range toHash {
			h.Write((*c.buf)[:c.n])
			release(c)
		}
	}()
	var werr atomic.Value // the first storage write error
	writeFailed := make(chan struct{})
	go func() {
		defer wg.Done()
		failed := false
		for c := range toWrite {
			if !failed {
				if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
					werr.Store(err)
					close(writeFailed)
					failed = true
				}
			}
			release(c)
		}
	}()
	var total int64
	var err error
	for {
		var buf *[]byte
		select {
		case buf = <-free:
		case <-writeFailed:
		}
		if buf == nil {
			break
		}
		n, rerr := io.ReadFull(src, *buf)
		if n > 0 {
			c := &copyChunk{buf: buf, n: n}
			c.refs.Store(2)
			total += int64(n)
			toHash <- c
			toWrite <- c
		} else {
			free <- buf
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
	if e, ok := werr.Load().(error); ok {
		err = e
	}
	for i := 0; i < copyBufs; i++ {
		copyBuffers.Put(<-free)
	}
	return total, err
}
