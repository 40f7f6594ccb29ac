package v2

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/quayctl/quayctl/registry/storage"
	"github.com/quayctl/quayctl/registry/store"
)

// startUpload handles POST /blobs/uploads/: cross-repository mount,
// monolithic upload (?digest=) or the start of a chunked/streamed session.
func (h *Handler) startUpload(req *request) *Error {
	if e := h.authorize(req, ActionPush); e != nil {
		return e
	}
	q := req.r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, e := parseDigest(m)
		if e != nil {
			return e
		}
		repo, e := h.repositoryForPush(req)
		if e != nil {
			return e
		}
		mounted, e := h.mount(req, repo, d, q.Get("from"))
		if e != nil {
			return e
		}
		if mounted {
			return h.blobCreated(req, d)
		}
		// Not mountable: fall through to a new upload session, as the spec asks.
	}
	var want digest.Digest
	if ds := q.Get("digest"); ds != "" {
		d, e := parseDigest(ds)
		if e != nil {
			return e
		}
		want = d
	}
	repo, e := h.repositoryForPush(req)
	if e != nil {
		return e
	}
	ctx := req.r.Context()
	u := &store.Upload{RepositoryID: repo.ID, UUID: uuid.NewString(), Location: h.opts.Location, StorageMetadata: "{}"}
	if err := h.store.CreateUpload(ctx, u); err != nil {
		return internal(err)
	}
	if want != "" {
		return h.finish(req, repo, u, want, true)
	}
	// An empty object marks the session in storage so that appends resume it.
	fw, err := h.blobs.Writer(ctx, storage.UploadPath(u.UUID), false)
	if err != nil {
		return internal(err)
	}
	if err := fw.Close(); err != nil {
		return internal(err)
	}
	return h.uploadAccepted(req, u, http.StatusAccepted)
}

// mount links an existing blob into repo when the caller may read a
// repository that holds it: the named `from`, or (without `from`) any.
func (h *Handler) mount(req *request, repo *store.Repository, d digest.Digest, from string) (bool, *Error) {
	ctx := req.r.Context()
	blob, err := h.store.BlobByDigest(ctx, d.String())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, internal(err)
	}
	readable := func(ns, name string) (bool, error) {
		// Permission follows the caller's identity, as in Quay: the token
		// names the target repository, the source is checked here.
		g, err := h.access.Permissions(ctx, req.caller, ns, name)
		if err != nil || !g.Pull || g.Repo == nil {
			return false, err
		}
		_, err = h.store.RepositoryBlob(ctx, g.Repo.ID, d.String())
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	var ok bool
	if from != "" {
		src, perr := parseRoute("/v2/" + from + "/tags/list")
		if perr != nil {
			return false, nil
		}
		ok, err = readable(src.namespace, src.repo)
	} else {
		repos, lerr := h.store.BlobRepositories(ctx, blob.ID, 50)
		err = lerr
		for _, r := range repos {
			if ok, err = readable(r.Namespace, r.Name); ok || err != nil {
				break
			}
		}
	}
	if err != nil {
		return false, internal(err)
	}
	if !ok {
		return false, nil
	}
	if _, err := h.store.LinkBlob(ctx, repo.ID, d.String(), blob.Size, h.opts.Location, h.opts.UploadedBlobTTL); err != nil {
		if errors.Is(err, store.ErrBlobGone) {
			return false, nil // collected meanwhile: the client uploads it instead
		}
		return false, internal(err)
	}
	return true, nil
}

func (h *Handler) blobCreated(req *request, d digest.Digest) *Error {
	w := req.w
	w.Header().Set("Location", "/v2/"+req.route.name+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) uploadAccepted(req *request, u *store.Upload, status int) *Error {
	w := req.w
	w.Header().Set("Location", "/v2/"+req.route.name+"/blobs/uploads/"+u.UUID)
	w.Header().Set("Docker-Upload-UUID", u.UUID)
	last := u.ByteCount - 1
	if last < 0 {
		last = 0
	}
	w.Header().Set("Range", "0-"+strconv.FormatInt(last, 10))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// loadUpload authorizes and finds the session named in the URL.
func (h *Handler) loadUpload(req *request) (*store.Repository, *store.Upload, *Error) {
	if e := h.authorize(req, ActionPush); e != nil {
		return nil, nil, e
	}
	repo, e := req.repository()
	if e != nil {
		return nil, nil, newErr(ErrBlobUploadUnknown, nil)
	}
	if _, err := uuid.Parse(req.route.ref); err != nil {
		return nil, nil, newErr(ErrBlobUploadUnknown, nil)
	}
	u, err := h.store.Upload(req.r.Context(), repo.ID, req.route.ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, newErr(ErrBlobUploadUnknown, nil)
	} else if err != nil {
		return nil, nil, internal(err)
	}
	return repo, u, nil
}

func (h *Handler) uploadStatus(req *request) *Error {
	_, u, e := h.loadUpload(req)
	if e != nil {
		return e
	}
	return h.uploadAccepted(req, u, http.StatusNoContent)
}

func (h *Handler) patchUpload(req *request) *Error {
	unlock := h.uploads.Lock(req.route.ref)
	defer unlock()
	_, u, e := h.loadUpload(req)
	if e != nil {
		return e
	}
	if e := h.checkContentRange(req, u); e != nil {
		return e
	}
	if e := h.appendUpload(req.r.Context(), u, req.r.Body, req.r.ContentLength, false, false); e != nil {
		return e
	}
	return h.uploadAccepted(req, u, http.StatusAccepted)
}

func (h *Handler) putUpload(req *request) *Error {
	unlock := h.uploads.Lock(req.route.ref)
	defer unlock()
	repo, u, e := h.loadUpload(req)
	if e != nil {
		return e
	}
	d, e := parseDigest(req.r.URL.Query().Get("digest"))
	if e != nil {
		return e
	}
	if e := h.checkContentRange(req, u); e != nil {
		return e
	}
	return h.finish(req, repo, u, d, false)
}

func (h *Handler) cancelUpload(req *request) *Error {
	unlock := h.uploads.Lock(req.route.ref)
	defer unlock()
	_, u, e := h.loadUpload(req)
	if e != nil {
		return e
	}
	ctx := req.r.Context()
	h.discard(ctx, u)
	req.w.Header().Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// discard removes an upload's bytes and its row; failures only leave
// garbage for the upload cleanup, never a visible blob.
func (h *Handler) discard(ctx context.Context, u *store.Upload) {
	ctx = context.WithoutCancel(ctx)
	if fw, err := h.blobs.Writer(ctx, storage.UploadPath(u.UUID), true); err == nil {
		_ = fw.Cancel(ctx)
	}
	_ = h.blobs.Delete(ctx, storage.UploadPath(u.UUID))
	if err := h.store.DeleteUpload(ctx, u.UUID); err != nil {
		h.log.WarnContext(ctx, "could not delete upload row", "upload", u.UUID, "error", err)
	}
}

// checkContentRange enforces in-order chunks: a Content-Range must start
// where the upload currently ends.
func (h *Handler) checkContentRange(req *request, u *store.Upload) *Error {
	cr := req.r.Header.Get("Content-Range")
	if cr == "" {
		return nil
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	a, b, ok := strings.Cut(cr, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(strings.Split(b, "/")[0], 10, 64)
	if !ok || err1 != nil || err2 != nil || end < start {
		return newErr(ErrRangeInvalid, map[string]string{"content-range": req.r.Header.Get("Content-Range")})
	}
	if start != u.ByteCount {
		req.w.Header().Set("Location", "/v2/"+req.route.name+"/blobs/uploads/"+u.UUID)
		req.w.Header().Set("Range", "0-"+strconv.FormatInt(max(u.ByteCount-1, 0), 10))
		return newErr(ErrRangeInvalid, map[string]int64{"expected_start": u.ByteCount, "got_start": start})
	}
	if req.r.ContentLength >= 0 && req.r.ContentLength != end-start+1 {
		return newErr(ErrSizeInvalid, map[string]int64{"content-length": req.r.ContentLength, "range_length": end - start + 1})
	}
	return nil
}

// appendUpload streams body to the end of the upload, continuing the
// sha256 state saved in the database so that a session survives restarts
// and moves between replicas. fresh starts a new object (monolithic
// uploads); with commit the object is made durable.
func (h *Handler) appendUpload(ctx context.Context, u *store.Upload, body io.Reader, length int64, fresh, commit bool) *Error {
	fw, err := h.blobs.Writer(ctx, storage.UploadPath(u.UUID), !fresh)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return newErr(ErrBlobUploadUnknown, nil)
		}
		return internal(err)
	}
	hasher, err := h.resumeHash(ctx, u, fw.Size())
	if err != nil {
		_ = fw.Close()
		if errors.Is(err, errUploadInconsistent) {
			h.discard(ctx, u)
		}
		return internal(err)
	}
	var n int64
	if length >= 0 {
		batched, restore := batchedBody(ctx, body, length)
		n, err = copyHashing(fw, hasher, io.LimitReader(batched, length))
		restore()
		if err == nil && n < length {
			_ = fw.Close()
			return newErr(ErrSizeInvalid, map[string]int64{"content-length": length, "received": n})
		}
	} else {
		n, err = copyHashing(fw, hasher, body)
	}
	if err != nil {
		_ = fw.Close()
		return newErr(ErrBlobUploadInvalid, fmt.Sprintf("reading request body: %v", err))
	}
	if commit {
		err = fw.Commit(ctx)
	} else {
		err = fw.Close()
	}
	if err != nil {
		return internal(err)
	}
	state, err := hasher.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return internal(err)
	}
	u.ByteCount = fw.Size()
	u.ShaState = state
	u.ChunkCount++
	if err := h.store.UpdateUpload(ctx, u); err != nil {
		return internal(err)
	}
	return nil
}

// resumeHash restores the sha256 state saved with the upload. If storage
// holds a different number of bytes than the database recorded (the process
// died in the middle of a chunk), the session cannot be trusted and the
// client is told to start over; nothing of it becomes a blob.
func (h *Handler) resumeHash(_ context.Context, u *store.Upload, stored int64) (hash.Hash, error) {
	hasher := sha256.New()
	if stored != u.ByteCount {
		return nil, errUploadInconsistent
	}
	if len(u.ShaState) == 0 {
		if stored != 0 {
			return nil, errUploadInconsistent
		}
		return hasher, nil
	}
	if err := hasher.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.ShaState); err != nil {
		return nil, fmt.Errorf("restoring hash state of upload %s: %w", u.UUID, err)
	}
	return hasher, nil
}

var errUploadInconsistent = newErr(ErrBlobUploadInvalid, "the upload was interrupted in the middle of a chunk; start a new upload")

// finish appends the request body, verifies the digest, moves the bytes to
// their content address and links the blob to the repository. On any
// mismatch nothing is stored.
func (h *Handler) finish(req *request, repo *store.Repository, u *store.Upload, want digest.Digest, fresh bool) *Error {
	ctx := req.r.Context()
	if e := h.appendUpload(ctx, u, req.r.Body, req.r.ContentLength, fresh, true); e != nil {
		if e.Code.ID == ErrSizeInvalid.ID || e.Code.ID == ErrBlobUploadInvalid.ID {
			h.discard(ctx, u)
		}
		return e
	}
	got, err := h.uploadDigest(ctx, u, want.Algorithm())
	if err != nil {
		return internal(err)
	}
	if got != want {
		h.discard(ctx, u)
		return newErr(ErrDigestInvalid, map[string]string{"expected": want.String(), "computed": got.String()})
	}
	if e := h.checkBlobQuota(req, repo, want, u.ByteCount); e != nil { // quota.go
		h.discard(ctx, u)
		return e
	}
	dst := blobPath(want)
	// Bytes already stored under the digest are reused, but this upload's
	// own bytes stay until the blob is linked: garbage collection may
	// delete the stored object between the check and the link.
	reused := false
	if _, err := h.blobs.Stat(ctx, dst); err == nil {
		reused = true
	} else if err := h.blobs.Move(ctx, storage.UploadPath(u.UUID), dst); err != nil {
		return internal(err)
	}
	_, err = h.store.LinkBlob(ctx, repo.ID, want.String(), u.ByteCount, h.opts.Location, h.opts.UploadedBlobTTL)
	if errors.Is(err, store.ErrBlobGone) && reused {
		// Collected in between: store this upload's bytes and link again.
		if err := h.blobs.Move(ctx, storage.UploadPath(u.UUID), dst); err != nil {
			return internal(err)
		}
		reused = false
		_, err = h.store.LinkBlob(ctx, repo.ID, want.String(), u.ByteCount, h.opts.Location, h.opts.UploadedBlobTTL)
	}
	if err != nil {
		if errors.Is(err, store.ErrBlobGone) {
			return newErr(ErrBlobUploadInvalid, err.Error())
		}
		return internal(err)
	}
	if reused {
		// The same bytes are already stored. Removing the duplicate can take
		// a while (a large file on a file system that discards freed
		// blocks), and the client need not wait for it.
		go func(ctx context.Context, p string) { _ = h.blobs.Delete(ctx, p) }(context.WithoutCancel(ctx), storage.UploadPath(u.UUID))
	}
	if err := h.store.DeleteUpload(ctx, u.UUID); err != nil {
		h.log.WarnContext(ctx, "could not delete finished upload row", "upload", u.UUID, "error", err)
	}
	return h.blobCreated(req, want)
}

// uploadDigest is the sha256 kept while streaming; other algorithms
// (sha512) are computed by reading the committed upload back once.
func (h *Handler) uploadDigest(ctx context.Context, u *store.Upload, alg digest.Algorithm) (digest.Digest, error) {
	if alg == digest.SHA256 {
		hasher := sha256.New()
		if err := hasher.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.ShaState); err != nil {
			return "", fmt.Errorf("restoring hash state: %w", err)
		}
		return digest.NewDigest(alg, hasher), nil
	}
	rc, err := h.blobs.Reader(ctx, storage.UploadPath(u.UUID), 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return alg.FromReader(rc)
}
