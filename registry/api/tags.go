package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// maxExpirationS is 9999-12-31T23:59:59Z, the last moment a tag
// expiration may name.
const maxExpirationS = 253402300799

// tagNameRE is Quay's TAG_REGEX.
var tagNameRE = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)

// putTag is Quay's PUT /api/v1/repository/{ns}/{repo}/tag/{tag}: with
// "expiration" (unix seconds, or null to clear) it changes when the alive
// tag ends; with "manifest_digest" it creates or moves the tag. Both may be
// given; expiration applies first, as in Quay.
func (h *Handler) putTag(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needWrite, scopeRepoWrite)
	if !ok {
		return
	}
	if !tagNameRE.MatchString(rt.name) {
		badRequest(w, "Invalid tag name")
		return
	}
	if repo.State != store.RepoStateNormal {
		badRequest(w, "Repository is not in the NORMAL state")
		return
	}
	var body map[string]json.RawMessage
	if !decodeBody(w, r, &body, false) {
		return
	}
	ctx := r.Context()
	base := map[string]any{"username": c.User.Username, "repo": repo.Name, "namespace": repo.Namespace, "tag": rt.name}
	if raw, ok := body["expiration"]; ok {
		var exp *float64
		if err := json.Unmarshal(raw, &exp); err != nil || (exp != nil && (math.IsNaN(*exp) || math.IsInf(*exp, 0))) {
			badRequest(w, "expiration must be a number of seconds since the epoch, or null")
			return
		}
		// Beyond year 9999 the milliseconds overflow int64 and the date
		// would come out as some arbitrary past or future moment.
		if exp != nil && (*exp < 0 || *exp > maxExpirationS) {
			badRequest(w, "expiration must be a date between 1970 and 9999, in seconds since the epoch, or null")
			return
		}
		var when *time.Time
		if exp != nil {
			t := time.UnixMilli(int64(*exp * 1000)).UTC()
			when = &t
		}
		old, err := h.store.SetTagExpiration(ctx, repo.ID, rt.name, when)
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		if old != nil || when != nil {
			md := copyMap(base)
			md["expiration_date"], md["old_expiration_date"] = nil, nil
			if when != nil {
				md["expiration_date"] = formatDate(*when)
			}
			if old != nil {
				md["old_expiration_date"] = formatDate(time.UnixMilli(*old))
			}
			h.audit(r, c, "change_tag_expiration", repo.NamespaceID, &repo.ID, md)
		}
	}
	if raw, ok := body["manifest_digest"]; ok {
		var digest string
		if err := json.Unmarshal(raw, &digest); err != nil || digest == "" {
			badRequest(w, "manifest_digest must be a manifest digest")
			return
		}
		old, err := h.store.RetargetTag(ctx, repo.ID, rt.name, digest)
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		md := copyMap(base)
		md["manifest_digest"], md["original_manifest_digest"] = digest, nil
		kind := "create_tag"
		if old != nil {
			kind, md["original_manifest_digest"] = "move_tag", old.ManifestDigest
		}
		h.audit(r, c, kind, repo.NamespaceID, &repo.ID, md)
	}
	writeJSON(w, http.StatusCreated, "Updated")
}

// restoreTag is Quay's POST …/tag/{tag}/restore {"manifest_digest"}: the
// tag points again at a manifest it (or another tag) pointed at within the
// namespace's time machine window; 404 after that.
func (h *Handler) restoreTag(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needWrite, scopeRepoWrite)
	if !ok {
		return
	}
	if repo.State != store.RepoStateNormal {
		badRequest(w, "Repository is not in the NORMAL state")
		return
	}
	var body struct {
		ManifestDigest string `json:"manifest_digest"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.ManifestDigest == "" {
		badRequest(w, "Missing manifest_digest")
		return
	}
	if !tagNameRE.MatchString(rt.name) {
		badRequest(w, "Invalid tag name")
		return
	}
	if err := h.store.RestoreTag(r.Context(), repo.ID, rt.name, body.ManifestDigest); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			fail(w, http.StatusNotFound, errNotFound, "Not Found: the manifest is not in the repository's time machine (deleted, or its tags ended longer ago than the namespace's tag expiration)")
			return
		}
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "revert_tag", repo.NamespaceID, &repo.ID, map[string]any{"username": c.User.Username,
		"repo": repo.Name, "namespace": repo.Namespace, "tag": rt.name, "manifest_digest": body.ManifestDigest})
	writeJSON(w, http.StatusOK, map[string]any{})
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}
