package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/semaphore"

	"github.com/quayctl/quayctl/registry/storage"
)

// Writer opens an upload at p. With append=false any earlier in-progress
// upload there is discarded. With append=true it continues the upload a
// closed writer left (in this process or any other), else starts from a copy
// of the committed object (copied on the server when it is at least one part
// long), else fails with PathNotFoundError.
func (d *Driver) Writer(ctx context.Context, p string, append bool) (storage.FileWriter, error) {
	if err := d.check(ctx, "writer", p); err != nil {
		return nil, err
	}
	w := d.newWriter(ctx, p)
	if !append {
		if err := d.discardTail(ctx, p); err != nil {
			return nil, d.fail("writer", p, err)
		}
		return w, nil
	}
	found, err := w.resume(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		if err := w.fromCommitted(ctx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// discardTail aborts the upload a closed writer left at p and removes its
// tail.
func (d *Driver) discardTail(ctx context.Context, p string) error {
	out, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(p))})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	if id := out.Metadata[metaUploadID]; id != "" {
		if err := d.abort(ctx, p, id); err != nil {
			return err
		}
	}
	_, err = d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(p))})
	return err
}

const (
	// maxPartsInFlight is how many parts one writer may be sending while
	// it fills the next. Each part costs a round trip to the object store;
	// one at a time caps a push at about one part per round trip, which
	// across a network to S3 is far below what the link carries.
	maxPartsInFlight = 4
	// spareSendBytes bounds, process-wide, the bytes of parts in flight
	// beyond each writer's first, so many concurrent uploads add at most
	// this much memory.
	spareSendBytes = 64 << 20
)

// spareSends is the budget of extra parts in flight, in bytes.
var spareSends = semaphore.NewWeighted(spareSendBytes)

// writer collects bytes into buf and hands each full part to a goroutine
// that sends it: one at a time on the writer's own slot, up to
// maxPartsInFlight while spare budget is free. Its methods are not safe
// for concurrent use.
type writer struct {
	d    *Driver
	ctx  context.Context // the Writer call's, for parts sent by Write
	path string

	uploadID string // "" until the first part is sent
	sent     int64  // bytes handed to parts
	buf      []byte // bytes after the last part, less than PartSize
	ended    bool

	own     chan struct{} // the writer's own send slot: full while its part is in flight
	spares  int           // parts in flight on spare budget; only flushPart and the senders change it, under mu
	sending sync.WaitGroup

	mu       sync.Mutex
	parts    []part   // numbered 1..len(parts); number 0 while still sending
	sendErr  error    // the first failed part
	spareBuf [][]byte // buffers of sent parts, for reuse
}

func (d *Driver) newWriter(ctx context.Context, p string) *writer {
	return &writer{d: d, ctx: ctx, path: p, buf: make([]byte, 0, d.cfg.PartSize),
		own: make(chan struct{}, 1)}
}

// resume loads a closed writer's state. found is false when there is none.
func (w *writer) resume(ctx context.Context) (found bool, err error) {
	d := w.d
	out, err := d.client.GetObject(ctx, &s3api.GetObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(w.path))})
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, d.fail("writer", w.path, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	if size < 0 || size > max(d.cfg.PartSize, maxPartSize) {
		return false, d.fail("writer", w.path, fmt.Errorf("in-progress tail %s has an unexpected size %d", d.tailKey(w.path), size))
	}
	// The tail is less than one part: bounded memory, like Write's buffer.
	w.buf = make([]byte, 0, max(d.cfg.PartSize, size))
	buf := bytes.NewBuffer(w.buf)
	if _, err := io.Copy(buf, out.Body); err != nil {
		return false, d.fail("writer", w.path, err)
	}
	w.buf = buf.Bytes()
	w.uploadID = out.Metadata[metaUploadID]
	if w.uploadID == "" {
		return true, nil
	}
	n, err := strconv.Atoi(out.Metadata[metaParts])
	if err != nil || n < 0 || n > maxParts {
		return false, d.fail("writer", w.path, fmt.Errorf("in-progress tail %s has a bad part count %q", d.tailKey(w.path), out.Metadata[metaParts]))
	}
	if err := w.loadParts(ctx, n); err != nil {
		if isNoSuchUpload(err) {
			// Aborted by a cleanup or a Delete: the bytes are gone.
			return false, d.notFound(w.path)
		}
		return false, d.fail("writer", w.path, err)
	}
	return true, nil
}

// loadParts lists the upload's parts and keeps 1..n: parts sent after the
// tail was last stored belong to a writer that never closed, and the
// following Write sends their bytes again.
func (w *writer) loadParts(ctx context.Context, n int) error {
	d := w.d
	w.parts = make([]part, n)
	pager := s3api.NewListPartsPaginator(d.client, &s3api.ListPartsInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(d.key(w.path)), UploadId: &w.uploadID,
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, p := range page.Parts {
			num := aws.ToInt32(p.PartNumber)
			if num >= 1 && int(num) <= n {
				w.parts[num-1] = part{number: num, etag: aws.ToString(p.ETag), size: aws.ToInt64(p.Size)}
			}
		}
	}
	w.sent = 0
	for i, p := range w.parts {
		if p.number == 0 {
			return fmt.Errorf("multipart upload %s lacks part %d of %d", w.uploadID, i+1, n)
		}
		w.sent += p.size
	}
	return nil
}

// fromCommitted starts from a copy of the committed object; the object
// itself stays as it is until Commit replaces it. Whole parts are copied on
// the server; an end shorter than S3's 5 MiB minimum part is read into the
// buffer, where later writes continue it.
func (w *writer) fromCommitted(ctx context.Context) error {
	d := w.d
	h, err := d.head(ctx, "writer", w.path)
	if err != nil {
		return err
	}
	size := aws.ToInt64(h.ContentLength)
	copied := size
	if r := size % d.cfg.MaxCopyPart; r < minPartSize {
		copied = size - r
	}
	if copied > 0 {
		if err := w.start(ctx); err != nil {
			return d.fail("writer", w.path, err)
		}
		parts, err := d.copyParts(ctx, w.uploadID, w.path, w.path, copied)
		if err != nil {
			_ = d.abort(context.WithoutCancel(ctx), w.path, w.uploadID)
			if isNotFound(err) {
				return d.notFound(w.path)
			}
			return d.fail("writer", w.path, err)
		}
		w.parts, w.sent = parts, copied
	}
	if copied == size {
		return nil
	}
	r, err := d.Reader(ctx, w.path, copied)
	if err != nil {
		if w.uploadID != "" {
			_ = d.abort(context.WithoutCancel(ctx), w.path, w.uploadID)
		}
		return err
	}
	defer r.Close()
	buf := bytes.NewBuffer(w.buf)
	if _, err := io.Copy(buf, io.LimitReader(r, size-copied)); err != nil {
		if w.uploadID != "" {
			_ = d.abort(context.WithoutCancel(ctx), w.path, w.uploadID)
		}
		return d.fail("writer", w.path, err)
	}
	w.buf = buf.Bytes()
	return nil
}

// start creates the multipart upload on the final key.
func (w *writer) start(ctx context.Context) error {
	out, err := w.d.client.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{
		Bucket: &w.d.cfg.Bucket, Key: aws.String(w.d.key(w.path)),
	})
	if err != nil {
		return err
	}
	w.uploadID = aws.ToString(out.UploadId)
	return nil
}

// sendPart uploads b as part number num.
func (w *writer) sendPart(ctx context.Context, num int32, b []byte) (part, error) {
	out, err := w.d.client.UploadPart(ctx, &s3api.UploadPartInput{
		Bucket: &w.d.cfg.Bucket, Key: aws.String(w.d.key(w.path)), UploadId: &w.uploadID,
		PartNumber: aws.Int32(num), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	if err != nil {
		return part{}, err
	}
	return part{number: num, etag: aws.ToString(out.ETag), size: int64(len(b))}, nil
}

func (w *writer) Write(b []byte) (int, error) {
	if w.ended {
		return 0, w.d.fail("write", w.path, storage.ErrWriterClosed)
	}
	n := 0
	for len(b) > 0 {
		room := int(w.d.cfg.PartSize) - len(w.buf)
		take := min(room, len(b))
		w.buf = append(w.buf, b[:take]...)
		b = b[take:]
		n += take
		if len(w.buf) < int(w.d.cfg.PartSize) {
			continue
		}
		if err := w.flushPart(); err != nil {
			return n, w.d.fail("write", w.path, err)
		}
	}
	return n, nil
}

// flushPart hands the full buffer to a goroutine as the next part, waiting
// for a free slot first.
func (w *writer) flushPart() error {
	if err := w.failed(); err != nil {
		return err
	}
	if w.uploadID == "" {
		if err := w.start(w.ctx); err != nil {
			return err
		}
	}
	spare := w.acquireSlot()
	release := func() {
		if spare {
			spareSends.Release(w.d.cfg.PartSize)
			w.mu.Lock()
			w.spares--
			w.mu.Unlock()
		} else {
			<-w.own
		}
	}
	w.mu.Lock()
	if len(w.parts) >= maxParts {
		w.mu.Unlock()
		release()
		return fmt.Errorf("upload exceeds S3's %d parts; raise minimum_chunk_size_mb", maxParts)
	}
	w.parts = append(w.parts, part{})
	num := int32(len(w.parts))
	body := w.buf
	if k := len(w.spareBuf); k > 0 {
		w.buf, w.spareBuf = w.spareBuf[k-1], w.spareBuf[:k-1]
	} else {
		w.buf = make([]byte, 0, w.d.cfg.PartSize)
	}
	w.mu.Unlock()
	w.sent += int64(len(body))
	w.sending.Add(1)
	go func() {
		defer w.sending.Done()
		p, err := w.sendPart(w.ctx, num, body)
		w.mu.Lock()
		if err != nil && w.sendErr == nil {
			w.sendErr = fmt.Errorf("sending part %d: %w", num, err)
		} else if err == nil {
			w.parts[num-1] = p
		}
		w.spareBuf = append(w.spareBuf, body[:0])
		w.mu.Unlock()
		release()
	}()
	return nil
}

// acquireSlot waits for a slot to send a part on: the writer's own when it
// is free, else a spare one while this writer has fewer than
// maxPartsInFlight parts in flight and the process-wide budget allows,
// else the own slot once its part is sent. spare tells which it got.
func (w *writer) acquireSlot() (spare bool) {
	select {
	case w.own <- struct{}{}:
		return false
	default:
	}
	w.mu.Lock()
	if 1+w.spares < maxPartsInFlight && spareSends.TryAcquire(w.d.cfg.PartSize) {
		w.spares++
		w.mu.Unlock()
		return true
	}
	w.mu.Unlock()
	w.own <- struct{}{}
	return false
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sendErr
}

// wait lets the parts in flight finish and reports the first that failed.
func (w *writer) wait() error {
	w.sending.Wait()
	return w.failed()
}

func (w *writer) Size() int64 { return w.sent + int64(len(w.buf)) }

// Close stores the tail and the upload's identity so a later
// Writer(append=true) anywhere can continue. Closing an ended writer is a
// no-op, so `defer w.Close()` is safe after Commit or Cancel.
func (w *writer) Close() error {
	if w.ended {
		return nil
	}
	w.ended = true
	d := w.d
	if err := w.wait(); err != nil {
		// A part is missing: keep the state the previous Close stored, which
		// is whole; the bytes since then are lost and the caller (whose Write
		// failed) has to send them again.
		return d.fail("close", w.path, err)
	}
	meta := map[string]string{}
	if w.uploadID != "" {
		meta[metaUploadID] = w.uploadID
		meta[metaParts] = strconv.Itoa(len(w.parts))
	}
	// The request may have ended (client gone); the state must still be saved.
	ctx := context.WithoutCancel(w.ctx)
	_, err := d.client.PutObject(ctx, &s3api.PutObjectInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(w.path)), Body: bytes.NewReader(w.buf),
		ContentLength: aws.Int64(int64(len(w.buf))), Metadata: meta,
	})
	if err != nil {
		return d.fail("close", w.path, err)
	}
	return nil
}

// Cancel aborts the multipart upload and removes the tail. It ignores ctx's
// cancellation: cleanup must work after the request ended.
func (w *writer) Cancel(ctx context.Context) error {
	if w.ended {
		return w.d.fail("cancel", w.path, storage.ErrWriterClosed)
	}
	w.ended = true
	ctx = context.WithoutCancel(ctx)
	d := w.d
	_ = w.wait() // the upload is aborted below whatever its parts did
	if w.uploadID != "" {
		if err := d.abort(ctx, w.path, w.uploadID); err != nil {
			return d.fail("cancel", w.path, err)
		}
	}
	if _, err := d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(w.path))}); err != nil && !isNotFound(err) {
		return d.fail("cancel", w.path, err)
	}
	return nil
}

// Commit makes the object visible whole: a single PUT when it is smaller
// than a part, else the tail as the last part and CompleteMultipartUpload.
// On failure the writer stays open, so Commit can be retried.
func (w *writer) Commit(ctx context.Context) error {
	d := w.d
	if w.ended {
		return d.fail("commit", w.path, storage.ErrWriterClosed)
	}
	if err := ctx.Err(); err != nil {
		return d.fail("commit", w.path, err)
	}
	if err := w.wait(); err != nil {
		w.ended = true // a part is missing: nothing to retry
		return w.commitErr(err)
	}
	key := aws.String(d.key(w.path))
	if w.uploadID == "" {
		_, err := d.client.PutObject(ctx, &s3api.PutObjectInput{
			Bucket: &d.cfg.Bucket, Key: key, Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
		})
		if err != nil {
			return d.fail("commit", w.path, err)
		}
	} else {
		parts := w.parts
		if len(w.buf) > 0 {
			last, err := w.sendPart(ctx, int32(len(parts)+1), w.buf)
			if err != nil {
				return w.commitErr(err)
			}
			parts = append(parts[:len(parts):len(parts)], last)
		}
		_, err := d.client.CompleteMultipartUpload(ctx, &s3api.CompleteMultipartUploadInput{
			Bucket: &d.cfg.Bucket, Key: key, UploadId: &w.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: completed(parts)},
		})
		if err != nil {
			return w.commitErr(err)
		}
	}
	w.ended = true
	_, err := d.client.DeleteObject(context.WithoutCancel(ctx), &s3api.DeleteObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(d.tailKey(w.path))})
	if err != nil && !isNotFound(err) {
		return d.fail("commit", w.path, fmt.Errorf("object committed, but its in-progress tail could not be removed: %w", err))
	}
	return nil
}

func (w *writer) commitErr(err error) error {
	if isNoSuchUpload(err) {
		// A Delete (or the cleanup) discarded the upload meanwhile.
		w.ended = true
		return w.d.notFound(w.path)
	}
	return w.d.fail("commit", w.path, err)
}
