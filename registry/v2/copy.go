package v2

import (
	"errors"
	"hash"
	"io"
	"sync"
)

const (
	copyBufSize = 1 << 20
	copyBufs    = 4 // per upload: bounds memory at 4 MiB however large the blob
)

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyHashing copies src to dst and feeds the same bytes to h, hashing in a
// second goroutine so that hashing overlaps reading the request and writing
// storage instead of adding to them. Buffers circulate through a small free
// list, so memory stays flat whatever the blob size.
func copyHashing(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	free := make(chan *[]byte, copyBufs)
	for i := 0; i < copyBufs; i++ {
		free <- copyBuffers.Get().(*[]byte)
	}
	type chunk struct {
		buf *[]byte
		n   int
	}
	toHash := make(chan chunk, copyBufs)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for c := range toHash {
			h.Write((*c.buf)[:c.n])
			free <- c.buf
		}
	}()
	var total int64
	var err error
	for {
		buf := <-free
		n, rerr := io.ReadFull(src, *buf)
		if n > 0 {
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				free <- buf
				err = werr
				break
			}
			total += int64(n)
			toHash <- chunk{buf, n}
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
	<-hashed
	for i := 0; i < copyBufs; i++ {
		copyBuffers.Put(<-free)
	}
	return total, err
}
