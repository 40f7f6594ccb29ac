package v2

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/notify"
	"github.com/quayctl/quayctl/registry/store"
)

// Manifest media types quayctl stores.
const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mtDockerSigned1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var supportedManifestTypes = map[string]bool{
	ocispec.MediaTypeImageManifest: true,
	ocispec.MediaTypeImageIndex:    true,
	mtDockerManifest:               true,
	mtDockerList:                   true,
}

func isIndexType(mt string) bool { return mt == ocispec.MediaTypeImageIndex || mt == mtDockerList }

// manifestDoc is the union of the fields quayctl reads from image
// manifests and indexes.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	FSLayers      json.RawMessage      `json:"fsLayers"` // schema 1 only
}

// resolveManifest finds a manifest by tag or digest in the repository.
func (h *Handler) resolveManifest(req *request, repo *store.Repository) (*store.Manifest, *Error) {
	ctx := req.r.Context()
	ref := req.route.ref
	var m *store.Manifest
	var err error
	if isDigest(ref) {
		d, e := parseDigest(ref)
		if e != nil {
			return nil, e
		}
		m, err = h.store.ManifestByDigest(ctx, repo.ID, d.String())
	} else {
		if !tagRE.MatchString(ref) {
			return nil, newErr(ErrTagInvalid, map[string]string{"tag": ref})
		}
		m, _, err = h.store.ManifestByTag(ctx, repo.ID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, newErr(ErrManifestUnknown, map[string]string{"reference": ref})
	} else if err != nil {
		return nil, internal(err)
	}
	return m, nil
}

func (h *Handler) getManifest(req *request) *Error {
	if e := h.authorize(req, ActionPull); e != nil {
		return e
	}
	repo, e := req.repository()
	if e != nil {
		return e
	}
	m, e := h.resolveManifest(req, repo)
	if e != nil {
		return e
	}
	w := req.w
	w.Header().Set("Content-Type", m.MediaType)
	w.Header().Set("Docker-Content-Digest", m.Digest)
	w.Header().Set("ETag", `"`+m.Digest+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Bytes)))
	if match := req.r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, m.Digest) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if req.r.Method == http.MethodGet {
		_, _ = w.Write(m.Bytes)
		meta := map[string]any{"manifest_digest": m.Digest}
		if !isDigest(req.route.ref) {
			meta["tag"] = req.route.ref
		}
		h.auditRepo(req, "pull_repo", repo, meta)
	}
	return nil
}

// putManifest validates and stores a manifest, then points the tag (or the
// ?tag= parameters) at it.
func (h *Handler) putManifest(req *request) *Error {
	if e := h.authorize(req, ActionPush); e != nil {
		return e
	}
	ref := req.route.ref
	var tags []string
	var want digest.Digest
	if isDigest(ref) {
		d, e := parseDigest(ref)
		if e != nil {
			return e
		}
		want = d
		for _, t := range req.r.URL.Query()["tag"] {
			if !tagRE.MatchString(t) {
				return newErr(ErrTagInvalid, map[string]string{"tag": t})
			}
			tags = append(tags, t)
		}
	} else {
		if !tagRE.MatchString(ref) {
			return newErr(ErrTagInvalid, map[string]string{"tag": ref})
		}
		tags = []string{ref}
	}
	body, err := io.ReadAll(io.LimitReader(req.r.Body, h.opts.MaxManifestBytes+1))
	if err != nil {
		return newErr(ErrManifestInvalid, "reading body: "+err.Error())
	}
	if int64(len(body)) > h.opts.MaxManifestBytes {
		return newErr(ErrManifestTooLarge, map[string]int64{"limit": h.opts.MaxManifestBytes})
	}
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	got := alg.FromBytes(body)
	if want != "" && got != want {
		return newErr(ErrDigestInvalid, map[string]string{"expected": want.String(), "computed": got.String()})
	}
	mt, doc, e := parseManifest(req.r.Header.Get("Content-Type"), body)
	if e != nil {
		return e
	}
	repo, e := h.repositoryForPush(req)
	if e != nil {
		return e
	}
	// Push on a MIRROR repository was granted to its mirror robot only.
	if repo.State != store.RepoStateNormal && repo.State != store.RepoStateMirror {
		return newErr(ErrDenied, "repository is not writable in its current state")
	}
	m := store.Manifest{Digest: got.String(), MediaType: mt, Bytes: body, ArtifactType: doc.ArtifactType}
	if doc.Subject != nil {
		m.Subject = doc.Subject.Digest.String()
	}
	var blobs, children []string
	if isIndexType(mt) {
		for _, c := range doc.Manifests {
			children = append(children, c.Digest.String())
		}
	} else {
		if doc.Config != nil {
			m.ConfigMediaType = doc.Config.MediaType
			blobs = append(blobs, doc.Config.Digest.String())
			if m.ArtifactType == "" {
				m.ArtifactType = artifactFromConfig(doc.Config.MediaType)
			}
		}
		for _, l := range doc.Layers {
			m.LayersSize += l.Size
			if isForeignLayer(l) {
				continue // never pushed to registries, by definition
			}
			blobs = append(blobs, l.Digest.String())
		}
	}
	ctx := req.r.Context()
	if blobs, e = h.presentOnly(req, repo, blobs, h.opts.SparseManifests, doc.Config); e != nil {
		return e
	}
	if children, e = h.presentChildren(req, repo, children, h.opts.SparseIndex); e != nil {
		return e
	}
	p := store.PutManifestParams{RepositoryID: repo.ID, Manifest: m, BlobDigests: blobs, ChildDigests: children, TempTagTTL: h.opts.TempTagTTL}
	if len(tags) == 0 {
		if _, err := h.store.PutManifest(ctx, p); err != nil {
			return h.manifestQuotaErr(req, repo, err)
		}
	}
	for _, t := range tags {
		p.Tag = t
		if _, err := h.store.PutManifest(ctx, p); err != nil {
			return h.manifestQuotaErr(req, repo, err)
		}
	}
	meta := map[string]any{"manifest_digest": got.String()}
	if len(tags) > 0 {
		meta["tag"] = strings.Join(tags, ",")
	}
	h.warnQuota(req, repo, meta) // quota.go
	h.auditRepo(req, "push_repo", repo, meta)
	// Repository notifications: Emit only queues deliveries, and a
	// notification never fails a push.
	if len(tags) > 0 && h.opts.Notifier != nil {
		ev := notify.Event{Kind: notify.RepoPush, RepositoryID: repo.ID, Namespace: repo.Namespace, Repository: repo.Name,
			Data: map[string]any{"updated_tags": tags}}
		if err := h.opts.Notifier.Emit(ctx, ev); err != nil {
			h.log.WarnContext(ctx, "cannot queue repo_push notifications", "repository", repo.FullName(), "err", err)
		}
	}
	w := req.w
	w.Header().Set("Location", "/v2/"+req.route.name+"/manifests/"+got.String())
	w.Header().Set("Docker-Content-Digest", got.String())
	if m.Subject != "" {
		w.Header().Set("OCI-Subject", m.Subject)
	}
	for _, t := range tags {
		if isDigest(ref) {
			w.Header().Add("OCI-Tag", t)
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func manifestStoreErr(err error) *Error {
	var bu store.BlobUnknownError
	var mu store.ManifestUnknownError
	switch {
	case errors.As(err, &bu):
		return newErr(ErrManifestBlobUnknown, map[string]string{"digest": bu.Digest})
	case errors.As(err, &mu):
		return newErr(ErrManifestBlobUnknown, map[string]string{"digest": mu.Digest})
	}
	return internal(err)
}

// presentOnly keeps the blobs that the repository has. When sparse
// manifests are not allowed, a missing blob is an error; the config blob is
// required either way.
func (h *Handler) presentOnly(req *request, repo *store.Repository, digests []string, sparse bool, config *ocispec.Descriptor) ([]string, *Error) {
	if !sparse {
		return digests, nil // the store checks each one inside its transaction
	}
	out := digests[:0:0]
	for _, d := range digests {
		_, err := h.store.RepositoryBlob(req.r.Context(), repo.ID, d)
		switch {
		case err == nil:
			out = append(out, d)
		case !errors.Is(err, store.ErrNotFound):
			return nil, internal(err)
		case config != nil && config.Digest.String() == d:
			return nil, newErr(ErrManifestBlobUnknown, map[string]string{"digest": d})
		}
	}
	return out, nil
}

func (h *Handler) presentChildren(req *request, repo *store.Repository, digests []string, sparse bool) ([]string, *Error) {
	if !sparse {
		return digests, nil
	}
	out := digests[:0:0]
	for _, d := range digests {
		_, err := h.store.ManifestByDigest(req.r.Context(), repo.ID, d)
		if err == nil {
			out = append(out, d)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, internal(err)
		}
	}
	return out, nil
}

// parseManifest decides the media type (Content-Type, else the document's
// own mediaType) and validates the structure.
func parseManifest(contentType string, body []byte) (string, *manifestDoc, *Error) {
	mt := ""
	if contentType != "" {
		if parsed, _, err := mime.ParseMediaType(contentType); err == nil {
			mt = parsed
		} else {
			mt = contentType
		}
	}
	var doc manifestDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return "", nil, newErr(ErrManifestInvalid, "not valid JSON: "+err.Error())
	}
	if mt == mtDockerSchema1 || mt == mtDockerSigned1 || doc.MediaType == mtDockerSchema1 || doc.MediaType == mtDockerSigned1 || (doc.SchemaVersion == 1 && doc.FSLayers != nil) {
		return "", nil, newErr(ErrUnsupportedType, "Docker schema 1 manifests are not supported: push with a client that writes schema 2 or OCI (podman, skopeo, docker ≥ 1.10)")
	}
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = doc.MediaType
		if mt == "" {
			// An OCI document may omit mediaType; infer it from its shape.
			if doc.Manifests != nil {
				mt = ocispec.MediaTypeImageIndex
			} else if doc.Config != nil {
				mt = ocispec.MediaTypeImageManifest
			}
		}
	}
	if !supportedManifestTypes[mt] {
		return "", nil, newErr(ErrManifestInvalid, map[string]string{"reason": "unsupported manifest media type", "mediaType": mt})
	}
	if doc.MediaType != "" && doc.MediaType != mt {
		return "", nil, newErr(ErrManifestInvalid, map[string]string{"reason": "mediaType field does not match Content-Type", "mediaType": doc.MediaType, "contentType": mt})
	}
	if doc.SchemaVersion != 2 {
		return "", nil, newErr(ErrManifestInvalid, "schemaVersion must be 2")
	}
	if isIndexType(mt) {
		if doc.Config != nil || doc.Layers != nil {
			return "", nil, newErr(ErrManifestInvalid, "an index has no config or layers")
		}
		for _, c := range doc.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return "", nil, newErr(ErrManifestInvalid, "invalid child digest: "+err.Error())
			}
		}
	} else {
		if doc.Config == nil {
			return "", nil, newErr(ErrManifestInvalid, "an image manifest needs a config descriptor")
		}
		if err := doc.Config.Digest.Validate(); err != nil {
			return "", nil, newErr(ErrManifestInvalid, "invalid config digest: "+err.Error())
		}
		for _, l := range doc.Layers {
			if err := l.Digest.Validate(); err != nil {
				return "", nil, newErr(ErrManifestInvalid, "invalid layer digest: "+err.Error())
			}
		}
	}
	if doc.Subject != nil {
		if err := doc.Subject.Digest.Validate(); err != nil {
			return "", nil, newErr(ErrManifestInvalid, "invalid subject digest: "+err.Error())
		}
	}
	return mt, &doc, nil
}

// isForeignLayer reports layers that registries never receive.
func isForeignLayer(l ocispec.Descriptor) bool {
	return strings.Contains(l.MediaType, "nondistributable") || strings.Contains(l.MediaType, "foreign") || len(l.URLs) > 0
}

// artifactFromConfig follows the distribution spec: without an explicit
// artifactType, a manifest's artifact type is its config media type.
func artifactFromConfig(configType string) string { return configType }

func (h *Handler) deleteManifest(req *request) *Error {
	if e := h.authorize(req, ActionPush); e != nil {
		return e
	}
	repo, e := req.repository()
	if e != nil {
		return e
	}
	ctx := req.r.Context()
	ref := req.route.ref
	var err error
	if isDigest(ref) {
		d, e := parseDigest(ref)
		if e != nil {
			return e
		}
		err = h.store.DeleteManifest(ctx, repo.ID, d.String())
	} else {
		if !tagRE.MatchString(ref) {
			return newErr(ErrTagInvalid, map[string]string{"tag": ref})
		}
		err = h.store.DeleteTag(ctx, repo.ID, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return newErr(ErrManifestUnknown, map[string]string{"reference": ref})
	} else if err != nil {
		return internal(err)
	}
	kind := "delete_tag"
	meta := map[string]any{"tag": ref}
	if isDigest(ref) {
		kind, meta = "delete_tag", map[string]any{"manifest_digest": ref}
	}
	h.auditRepo(req, kind, repo, meta)
	req.w.Header().Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusAccepted)
	return nil
}
