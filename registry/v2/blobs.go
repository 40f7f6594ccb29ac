package v2

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/registry/replication"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

func blobPath(d digest.Digest) string { return storage.BlobPath(d.Algorithm().String(), d.Encoded()) }

// getBlob serves GET and HEAD of a blob, with ranges, from the nearest
// location holding it (see blobSources); a location whose driver fails
// before anything was sent is skipped for the next one.
func (h *Handler) getBlob(req *request) *Error {
	_, blob, d, e := h.repositoryBlob(req, ActionPull)
	if e != nil {
		return e
	}
	ctx := req.r.Context()
	w := req.w
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("ETag", `"`+d.String()+`"`)
	w.Header().Set("Cache-Control", "max-age=31536000")
	w.Header().Set("Content-Type", "application/octet-stream")
	sources, err := h.blobSources(ctx, blob)
	if err != nil {
		return internal(err)
	}
	var errs []error
	for _, src := range sources {
		err := h.serveBlobFrom(req, src, blob, d, len(sources) > 1)
		if err == nil {
			h.failing.ok(src.name)
			return nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			h.failing.failed(src.name)
		}
		if len(sources) > 1 {
			h.log.WarnContext(ctx, "storage location cannot serve blob; trying the next", "location", src.name, "digest", d.String(), "error", err)
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, storage.PathNotFoundError{Driver: "registry", Path: blobPath(d)})
	}
	// Every location failed: not found only when none had another error.
	for _, err := range errs {
		if !errors.Is(err, storage.ErrNotFound) {
			return internal(err)
		}
	}
	return storageErr(errs[0], d)
}

// blobSource is a storage location that may serve a blob.
type blobSource struct {
	name   string
	driver storage.Driver
}

// blobSources orders the locations to try for a pull: those holding the
// blob (imagestorageplacement) in this instance's preference order, then
// any other holding it; a location that failed recently goes last. With one
// location there is nothing to choose.
func (h *Handler) blobSources(ctx context.Context, blob *store.Blob) ([]blobSource, error) {
	if len(h.opts.Locations) < 2 {
		return []blobSource{{h.opts.Location, h.blobs}}, nil
	}
	placed, err := h.store.BlobLocations(ctx, blob.ID)
	if err != nil {
		return nil, err
	}
	names := replication.Order(placed, h.opts.Preference, h.opts.Locations)
	if len(names) == 0 {
		// No placement recorded (a database another tool wrote): try
		// every location in preference order.
		names = replication.Order(slices.Collect(maps.Keys(h.opts.Locations)), h.opts.Preference, h.opts.Locations)
	}
	names = h.failing.last(names)
	out := make([]blobSource, len(names))
	for i, n := range names {
		out[i] = blobSource{n, h.opts.Locations[n]}
	}
	return out, nil
}

// serveBlobFrom answers from one location. It returns an error only when it
// has written nothing, so the caller may try another location. verify
// checks that the object exists before redirecting to it (with several
// locations a redirect to a location that lost it or is down would fail
// the client).
func (h *Handler) serveBlobFrom(req *request, src blobSource, blob *store.Blob, d digest.Digest, verify bool) error {
	ctx := req.r.Context()
	w := req.w
	// Object storage serves the bytes itself unless the storage proxy is on.
	// HEAD needs no bytes and is answered here, from the database, either way.
	if signer, ok := src.driver.(storage.URLSigner); ok && !h.opts.ProxyStorage && req.r.Method == http.MethodGet {
		// An unsatisfiable range gets its 416 here, as in proxy mode; object
		// stores answer some (bytes=500-0) with the whole blob instead.
		if _, _, _, ok := parseRange(req.r.Header.Get("Range"), blob.Size); !ok {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(blob.Size, 10))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return nil
		}
		if verify {
			sctx, cancel := context.WithTimeout(ctx, statTimeout)
			_, err := src.driver.Stat(sctx, blobPath(d))
			cancel()
			if err != nil {
				return err
			}
		}
		url, err := signer.SignedURL(ctx, blobPath(d), h.opts.SignedURLTTL)
		if err != nil {
			return err
		}
		// A blob's URL is only valid briefly: the redirect must not be cached.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, req.r, url, http.StatusTemporaryRedirect)
		return nil
	}
	if so, ok := src.driver.(storage.SeekOpener); ok {
		f, _, err := so.Open(ctx, blobPath(d))
		if err != nil {
			return err
		}
		defer f.Close()
		// ServeContent handles Range/If-Range/HEAD; with an *os.File the
		// kernel copies bytes straight to the socket (sendfile).
		http.ServeContent(w, req.r, "", blobModTime, f)
		return nil
	}
	return h.streamBlob(req, src.driver, d, blob.Size)
}

// statTimeout bounds the existence check of a redirect, so that a location
// that hangs costs a pull seconds, not minutes, before the next is tried.
const statTimeout = 5 * time.Second

// failingLocations remembers locations whose driver failed recently, so
// pulls try them last for a while instead of waiting on them every time.
type failingLocations struct {
	mu    sync.Mutex
	until map[string]time.Time
}

const failingFor = 30 * time.Second

func (f *failingLocations) failed(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.until == nil {
		f.until = map[string]time.Time{}
	}
	f.until[name] = time.Now().Add(failingFor)
}

func (f *failingLocations) ok(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.until, name)
}

// last moves recently failed locations to the end, keeping the order.
func (f *failingLocations) last(names []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.until) == 0 {
		return names
	}
	now := time.Now()
	var good, bad []string
	for _, n := range names {
		if t, ok := f.until[n]; ok && now.Before(t) {
			bad = append(bad, n)
		} else {
			good = append(good, n)
		}
	}
	return append(good, bad...)
}

// streamBlob serves drivers without seekable files (object storage in proxy
// mode), supporting a single byte range.
func (h *Handler) streamBlob(req *request, driver storage.Driver, d digest.Digest, size int64) error {
	w := req.w
	start, end, partial, ok := parseRange(req.r.Header.Get("Range"), size)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return nil
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if partial {
		w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end-1, 10)+"/"+strconv.FormatInt(size, 10))
		status = http.StatusPartialContent
	}
	if req.r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rc, err := driver.Reader(req.r.Context(), blobPath(d), start)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.WriteHeader(status)
	// Through a pooled 1 MiB buffer: the response writer's own ReadFrom
	// would copy a network body (S3 in proxy mode) 32 KiB at a time.
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, _ = io.CopyBuffer(struct{ io.Writer }{w}, io.LimitReader(rc, end-start), *buf)
	return nil
}

func storageErr(err error, d digest.Digest) *Error {
	if errors.Is(err, storage.ErrNotFound) {
		// The database knows the blob but storage lost it: report it as
		// unknown rather than failing obscurely; diagnose finds these.
		return newErr(ErrBlobUnknown, map[string]string{"digest": d.String(), "reason": "missing from storage"})
	}
	return internal(err)
}

// parseRange parses "bytes=a-b" (one range) against size; end is exclusive.
func parseRange(h string, size int64) (start, end int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := cutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false, false
	}
	a, b, found := cut(spec, "-")
	if !found {
		return 0, 0, false, false
	}
	switch {
	case a == "": // suffix range: last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, false
		}
		if n > size {
			n = size
		}
		return size - n, size, true, true
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false, false
		}
		e := size - 1
		if b != "" {
			e, err = strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				return 0, 0, false, false
			}
			if e >= size {
				e = size - 1
			}
		}
		return s, e + 1, true, true
	}
}

// deleteBlob unlinks a blob from the repository. Bytes are reclaimed by
// garbage collection once nothing references the blob.
func (h *Handler) deleteBlob(req *request) *Error {
	repo, blob, d, e := h.repositoryBlob(req, ActionPush)
	if e != nil {
		return e
	}
	if err := h.store.UnlinkBlob(req.r.Context(), repo.ID, blob.ID); err != nil {
		return internal(err)
	}
	req.w.Header().Set("Docker-Content-Digest", d.String())
	req.w.Header().Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusAccepted)
	return nil
}

// repositoryBlob is the common start of blob requests: a valid digest, the
// action allowed, the repository, and the blob linked to it.
func (h *Handler) repositoryBlob(req *request, action string) (*store.Repository, *store.Blob, digest.Digest, *Error) {
	d, e := parseDigest(req.route.ref)
	if e != nil {
		return nil, nil, "", e
	}
	if e := h.authorize(req, action); e != nil {
		return nil, nil, "", e
	}
	repo, e := req.repository()
	if e != nil {
		return nil, nil, "", e
	}
	blob, err := h.store.RepositoryBlob(req.r.Context(), repo.ID, d.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, "", newErr(ErrBlobUnknown, map[string]string{"digest": d.String()})
	} else if err != nil {
		return nil, nil, "", internal(err)
	}
	return repo, blob, d, nil
}
