package v2

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

func blobPath(d digest.Digest) string { return storage.BlobPath(d.Algorithm().String(), d.Encoded()) }

// getBlob serves GET and HEAD of a blob, with ranges.
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
	// Object storage serves the bytes itself unless the storage proxy is on.
	// HEAD needs no bytes and is answered here, from the database, either way.
	if signer, ok := h.blobs.(storage.URLSigner); ok && !h.opts.ProxyStorage && req.r.Method == http.MethodGet {
		// An unsatisfiable range gets its 416 here, as in proxy mode; object
		// stores answer some (bytes=500-0) with the whole blob instead.
		if _, _, _, ok := parseRange(req.r.Header.Get("Range"), blob.Size); !ok {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(blob.Size, 10))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return nil
		}
		url, err := signer.SignedURL(ctx, blobPath(d), h.opts.SignedURLTTL)
		if err != nil {
			return storageErr(err, d)
		}
		// A blob's URL is only valid briefly: the redirect must not be cached.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, req.r, url, http.StatusTemporaryRedirect)
		return nil
	}
	if so, ok := h.blobs.(storage.SeekOpener); ok {
		f, _, err := so.Open(ctx, blobPath(d))
		if err != nil {
			return storageErr(err, d)
		}
		defer f.Close()
		// ServeContent handles Range/If-Range/HEAD; with an *os.File the
		// kernel copies bytes straight to the socket (sendfile).
		http.ServeContent(w, req.r, "", blobModTime, f)
		return nil
	}
	return h.streamBlob(req, d, blob.Size)
}

// streamBlob serves drivers without seekable files (object storage in proxy
// mode), supporting a single byte range.
func (h *Handler) streamBlob(req *request, d digest.Digest, size int64) *Error {
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
	rc, err := h.blobs.Reader(req.r.Context(), blobPath(d), start)
	if err != nil {
		return storageErr(err, d)
	}
	defer rc.Close()
	w.WriteHeader(status)
	_, _ = io.CopyN(w, rc, end-start)
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
