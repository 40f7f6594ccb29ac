package v2

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/quayctl/quayctl/registry/store"
)

// maxPage bounds one page of tags or repositories.
const maxPage = 10000

// pageParams reads ?n= and ?last=; n<0 or junk is a client error.
func pageParams(r *http.Request) (n int, last string, e *Error) {
	q := r.URL.Query()
	last = q.Get("last")
	n = maxPage
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", newErr(ErrPaginationInvalid, map[string]string{"n": s})
		}
		n = min(v, maxPage)
	}
	return n, last, nil
}

// writePage answers a list, with a Link to the next page when there is one.
// items holds up to n+1 entries; the extra one only signals "more".
func writePage(w http.ResponseWriter, r *http.Request, key string, name string, items []string, n int) {
	if items == nil {
		items = []string{}
	}
	if len(items) > n {
		items = items[:n]
		q := url.Values{}
		q.Set("n", strconv.Itoa(n))
		q.Set("last", items[len(items)-1])
		w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	body := map[string]any{key: items}
	if name != "" {
		body["name"] = name
	}
	writeJSON(w, http.StatusOK, "application/json", body)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *Handler) listTags(req *request) *Error {
	if e := h.authorize(req, ActionPull); e != nil {
		return e
	}
	repo, e := req.repository()
	if e != nil {
		return e
	}
	n, last, e := pageParams(req.r)
	if e != nil {
		return e
	}
	var tags []string
	if n > 0 {
		var err error
		tags, err = h.store.ListTags(req.r.Context(), repo.ID, last, n+1)
		if err != nil {
			return internal(err)
		}
	}
	writePage(req.w, req.r, "tags", req.route.name, tags, n)
	return nil
}

// catalog lists only the repositories the caller may read.
func (h *Handler) catalog(req *request) {
	n, last, e := pageParams(req.r)
	if e != nil {
		writeError(req.w, e)
		return
	}
	var repos []string
	if n > 0 {
		var err error
		repos, err = h.store.ListVisibleRepositories(req.r.Context(), req.caller.UserID, req.caller.Superuser && h.opts.SuperusersFullAccess, last, n+1)
		if err != nil {
			writeError(req.w, internal(err))
			return
		}
	}
	writePage(req.w, req.r, "repositories", "", repos, n)
}

// referrers answers the OCI referrers API: an index of the manifests whose
// subject is the digest, optionally filtered by artifactType.
func (h *Handler) referrers(req *request) *Error {
	d, e := parseDigest(req.route.ref)
	if e != nil {
		return e
	}
	if e := h.authorize(req, ActionPull); e != nil {
		return e
	}
	filter := req.r.URL.Query().Get("artifactType")
	var ms []store.Manifest
	// A repository that does not exist yet has no referrers: an empty index.
	if repo := req.grant.Repo; repo != nil {
		var err error
		if ms, err = h.store.Referrers(req.r.Context(), repo.ID, d.String(), filter); err != nil {
			return internal(err)
		}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, m := range ms {
		desc := ocispec.Descriptor{MediaType: m.MediaType, Size: int64(len(m.Bytes)), ArtifactType: m.ArtifactType}
		desc.Digest = parseStored(m.Digest)
		var doc struct {
			Annotations map[string]string `json:"annotations"`
		}
		if json.Unmarshal(m.Bytes, &doc) == nil {
			desc.Annotations = doc.Annotations
		}
		idx.Manifests = append(idx.Manifests, desc)
	}
	if filter != "" {
		req.w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(req.w, http.StatusOK, ocispec.MediaTypeImageIndex, idx)
	return nil
}
