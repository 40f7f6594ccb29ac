package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// repoRoute is a request under /api/v1/repository/{namespace}/{repo}/…,
// parsed by its tail because repository names may contain slashes
// (Quay's apirepopath converter does the same).
type repoRoute struct {
	ns, repo string
	sub      string // "", "tag", "permissions", "changevisibility", "logs", "notification", …
	kind     string // permissions: "user" or "team"; "" lists both
	name     string // tag name, the user/team of a permission, or a notification's or policy's uuid
}

func parseRepoRoute(rest string) (repoRoute, bool) {
	seg := strings.Split(strings.Trim(rest, "/"), "/")
	if len(seg) < 2 {
		return repoRoute{}, false
	}
	rt := repoRoute{ns: seg[0]}
	tail := seg[1:]
	n := len(tail)
	switch {
	case n >= 4 && tail[n-3] == "permissions" && (tail[n-2] == "user" || tail[n-2] == "team"):
		rt.sub, rt.kind, rt.name, tail = "permissions", tail[n-2], tail[n-1], tail[:n-3]
	case n >= 3 && tail[n-2] == "permissions" && (tail[n-1] == "user" || tail[n-1] == "team"):
		rt.sub, rt.kind, tail = "permissions", tail[n-1], tail[:n-2]
	case n >= 2 && tail[n-1] == "permissions":
		rt.sub, tail = "permissions", tail[:n-1]
	case n >= 3 && tail[n-2] == "mirror" && (tail[n-1] == "sync-now" || tail[n-1] == "sync-cancel" || tail[n-1] == "rules"):
		rt.sub, tail = "mirror/"+tail[n-1], tail[:n-2]
	case n >= 2 && tail[n-1] == "mirror":
		rt.sub, tail = "mirror", tail[:n-1]
	case n >= 4 && tail[n-3] == "notification" && tail[n-1] == "test":
		rt.sub, rt.name, tail = "notification/test", tail[n-2], tail[:n-3]
	case n >= 3 && (tail[n-2] == "notification" || tail[n-2] == "autoprunepolicy"):
		rt.sub, rt.name, tail = tail[n-2]+"/item", tail[n-1], tail[:n-2]
	case n >= 2 && (tail[n-1] == "notification" || tail[n-1] == "autoprunepolicy"):
		rt.sub, tail = tail[n-1], tail[:n-1]
	case n >= 4 && tail[n-3] == "tag" && tail[n-1] == "restore":
		rt.sub, rt.name, tail = "tag/restore", tail[n-2], tail[:n-3]
	case n >= 3 && tail[n-2] == "tag":
		rt.sub, rt.name, tail = "tag", tail[n-1], tail[:n-2]
	case n >= 2 && (tail[n-1] == "tag" || tail[n-1] == "changevisibility" || tail[n-1] == "logs"):
		rt.sub, tail = tail[n-1], tail[:n-1]
	}
	rt.repo = strings.Join(tail, "/")
	return rt, rt.repo != ""
}

// repositoryRoutes dispatches /api/v1/repository/{ns}/{repo}[/…].
func (h *Handler) repositoryRoutes(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRepoRoute(strings.TrimPrefix(r.URL.Path, "/api/v1/repository/"))
	if !ok {
		notFoundErr(w)
		return
	}
	// Handlers written for path patterns get the parsed names as path
	// values; they authenticate the caller themselves.
	type patternRoute struct {
		fn      http.HandlerFunc
		methods []string
	}
	if pr, ok := map[string]patternRoute{
		"notification":         {h.repoNotifications, []string{http.MethodGet, http.MethodPost}},
		"notification/item":    {h.repoNotification, []string{http.MethodGet, http.MethodPost, http.MethodDelete}},
		"notification/test":    {h.testRepoNotification, []string{http.MethodPost}},
		"autoprunepolicy":      {h.autoPrunePolicies, []string{http.MethodGet, http.MethodPost}},
		"autoprunepolicy/item": {h.autoPrunePolicy, []string{http.MethodGet, http.MethodPut, http.MethodDelete}},
	}[rt.sub]; ok {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		if !slices.Contains(pr.methods, method) {
			fail(w, http.StatusMethodNotAllowed, errInvalidRequest, "Method not allowed")
			return
		}
		r.SetPathValue("ns", rt.ns)
		r.SetPathValue("repo", rt.repo)
		r.SetPathValue("uuid", rt.name)
		pr.fn(w, r)
		return
	}
	type key struct{ sub, method string }
	handlers := map[key]func(http.ResponseWriter, *http.Request, *Caller, repoRoute){
		{"", http.MethodGet}:                    h.getRepository,
		{"", http.MethodPut}:                    h.updateRepository,
		{"", http.MethodDelete}:                 h.deleteRepository,
		{"changevisibility", http.MethodPost}:   h.changeVisibility,
		{"tag", http.MethodGet}:                 h.listTags,
		{"tag", http.MethodDelete}:              h.deleteTag,
		{"tag", http.MethodPut}:                 h.putTag,
		{"tag/restore", http.MethodPost}:        h.restoreTag,
		{"permissions", http.MethodGet}:         h.getPermissions,
		{"permissions", http.MethodPut}:         h.putPermission,
		{"permissions", http.MethodDelete}:      h.deletePermission,
		{"logs", http.MethodGet}:                h.repositoryLogs,
		{"mirror", http.MethodGet}:              h.mirrorRoute,
		{"mirror", http.MethodPost}:             h.mirrorRoute,
		{"mirror", http.MethodPut}:              h.mirrorRoute,
		{"mirror/rules", http.MethodPut}:        h.mirrorRoute,
		{"mirror/sync-now", http.MethodPost}:    h.mirrorRoute,
		{"mirror/sync-cancel", http.MethodPost}: h.mirrorRoute,
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	fn, ok := handlers[key{rt.sub, method}]
	if !ok || (rt.sub == "tag" && (rt.name == "") != (method == http.MethodGet)) ||
		(rt.sub == "permissions" && method != http.MethodGet && rt.name == "") {
		fail(w, http.StatusMethodNotAllowed, errInvalidRequest, "Method not allowed")
		return
	}
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	fn(w, r, c, rt)
}

// Permission levels a repository operation needs.
const (
	needRead = iota
	needWrite
	needAdmin
)

// repoFor checks the caller's scope and permission on the route's
// repository. A missing repository answers 404 only to callers who could
// create it; everyone else gets the same refusal as for a private one, so
// nothing reveals which private repositories exist.
func (h *Handler) repoFor(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute, need int, scope string) (*store.Repository, RepoGrant, bool) {
	if !c.HasScope(scope) {
		unauthorized(w, c)
		return nil, RepoGrant{}, false
	}
	g, err := h.opts.Access.Repository(r.Context(), c, rt.ns, rt.repo)
	if err != nil {
		h.internal(w, r, err)
		return nil, g, false
	}
	if g.Repo == nil {
		if g.CanCreate || c.FullAccess {
			notFoundErr(w)
		} else {
			unauthorized(w, c)
		}
		return nil, g, false
	}
	allowed := g.Read
	switch need {
	case needWrite:
		allowed = g.Write
	case needAdmin:
		allowed = g.Admin
	}
	if !allowed {
		unauthorized(w, c)
		return nil, g, false
	}
	return g.Repo, g, true
}

func repoState(s int) string {
	switch s {
	case store.RepoStateReadOnly:
		return "READ_ONLY"
	case store.RepoStateMirror:
		return "MIRROR"
	case store.RepoStateMarkedForDeletion:
		return "MARKED_FOR_DELETION"
	}
	return "NORMAL"
}

// getRepository is Quay's GET /api/v1/repository/{ns}/{repo}.
func (h *Handler) getRepository(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, g, ok := h.repoFor(w, r, c, rt, needRead, scopeRepoRead)
	if !ok {
		return
	}
	ns, err := h.store.UserByID(r.Context(), repo.NamespaceID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	var desc any
	if repo.Description != "" {
		desc = repo.Description
	}
	v := map[string]any{
		"namespace": repo.Namespace, "name": repo.Name, "kind": "image", "description": desc,
		"is_public": repo.Public, "is_organization": ns.Organization, "is_starred": false,
		"status_token": "", "trust_enabled": false, "tag_expiration_s": ns.RemovedTagExpirationS,
		"state": repoState(repo.State), "can_write": g.Write, "can_admin": g.Admin, "is_free_account": true,
	}
	h.addRepoQuotaReport(r.Context(), repo, v) // quota.go
	writeJSON(w, http.StatusOK, v)
}

// updateRepository is PUT /api/v1/repository/{ns}/{repo}: the description.
func (h *Handler) updateRepository(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needWrite, scopeRepoWrite)
	if !ok {
		return
	}
	var body struct {
		Description *string `json:"description"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Description == nil {
		badRequest(w, "description is required")
		return
	}
	if err := h.store.SetRepositoryDescription(r.Context(), repo.ID, *body.Description); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "set_repo_description", repo.NamespaceID, &repo.ID,
		map[string]any{"repo": repo.Name, "namespace": repo.Namespace, "description": *body.Description})
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// deleteRepository is DELETE /api/v1/repository/{ns}/{repo}.
func (h *Handler) deleteRepository(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	if err := h.store.DeleteRepository(r.Context(), repo.ID); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "delete_repo", repo.NamespaceID, &repo.ID, map[string]any{"repo": repo.Name, "namespace": repo.Namespace})
	w.WriteHeader(http.StatusNoContent)
}

// changeVisibility is POST …/changevisibility {"visibility": "public"|"private"}.
func (h *Handler) changeVisibility(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	var body struct {
		Visibility string `json:"visibility"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Visibility != "public" && body.Visibility != "private" {
		badRequest(w, `visibility must be "public" or "private"`)
		return
	}
	if err := h.store.SetRepositoryVisibility(r.Context(), repo.ID, body.Visibility == "public"); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "change_repo_visibility", repo.NamespaceID, &repo.ID,
		map[string]any{"repo": repo.Name, "namespace": repo.Namespace, "visibility": body.Visibility})
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// createRepository is POST /api/v1/repository.
func (h *Handler) createRepository(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeRepoCreate) {
		return
	}
	var body struct {
		Namespace   string `json:"namespace"`
		Repository  string `json:"repository"`
		Visibility  string `json:"visibility"`
		Description string `json:"description"`
		RepoKind    string `json:"repo_kind"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Namespace == "" {
		body.Namespace = c.User.Username
	}
	switch {
	case !validRepoName(body.Repository):
		badRequest(w, "Invalid repository name")
		return
	case body.Visibility != "public" && body.Visibility != "private":
		badRequest(w, `visibility must be "public" or "private"`)
		return
	case body.RepoKind != "" && body.RepoKind != "image":
		badRequest(w, "only image repositories are supported")
		return
	}
	ctx := r.Context()
	g, err := h.opts.Access.Repository(ctx, c, body.Namespace, body.Repository)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if g.Repo != nil {
		if g.Read {
			badRequest(w, "Repository already exists")
		} else {
			unauthorized(w, c)
		}
		return
	}
	ns, err := h.lookupNamespace(ctx, body.Namespace)
	if errors.Is(err, store.ErrNotFound) {
		unauthorized(w, c)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	if !g.CanCreate && !c.FullAccess {
		unauthorized(w, c)
		return
	}
	repo, err := h.store.CreateRepository(ctx, ns.ID, body.Repository, body.Visibility == "public", c.User.ID)
	if errors.Is(err, store.ErrExists) {
		badRequest(w, "Repository already exists")
		return
	} else if err != nil {
		h.storeErr(w, r, err)
		return
	}
	if body.Description != "" {
		if err := h.store.SetRepositoryDescription(ctx, repo.ID, body.Description); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	h.audit(r, c, "create_repo", ns.ID, &repo.ID, map[string]any{"repo": repo.Name, "namespace": ns.Username})
	writeJSON(w, http.StatusCreated, map[string]any{"namespace": ns.Username, "name": repo.Name, "kind": "image"})
}

// listRepositories is GET /api/v1/repository?namespace=NS (or public=true):
// the repositories the caller may read, nothing else.
func (h *Handler) listRepositories(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if !c.HasScope(scopeRepoRead) {
		unauthorized(w, c)
		return
	}
	q := r.URL.Query()
	ns := q.Get("namespace")
	if ns == "" && q.Get("public") != "true" && q.Get("starred") != "true" {
		badRequest(w, "You must specify either a namespace or public or starred")
		return
	}
	names, err := h.store.ListVisibleRepositories(r.Context(), c.userID(), c.FullAccess, "", 0)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	repos := []map[string]any{}
	for _, full := range names {
		rns, name, _ := strings.Cut(full, "/")
		if ns != "" && rns != ns {
			continue
		}
		g, err := h.opts.Access.Repository(r.Context(), c, rns, name)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if g.Repo == nil || !g.Read {
			continue // public but anonymous access is off
		}
		var desc any
		if g.Repo.Description != "" {
			desc = g.Repo.Description
		}
		repos = append(repos, map[string]any{"namespace": rns, "name": name, "description": desc,
			"is_public": g.Repo.Public, "kind": "image", "state": repoState(g.Repo.State), "is_starred": false})
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": repos})
}

// listTags is Quay's GET /api/v1/repository/{ns}/{repo}/tag/.
func (h *Handler) listTags(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needRead, scopeRepoRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, page := 50, 1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			badRequest(w, "limit must be a positive number")
			return
		}
		limit = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			badRequest(w, "page must be a positive number")
			return
		}
		page = n
	}
	// As Quay: the history (ended rows too) unless onlyActiveTags=true.
	onlyActive := q.Get("onlyActiveTags") == "true"
	tags, more, err := h.store.ListTagInfo(r.Context(), store.TagListQuery{RepositoryID: repo.ID, Name: q.Get("specificTag"),
		OnlyActive: onlyActive, Limit: limit, Offset: (page - 1) * limit})
	if err != nil {
		h.internal(w, r, err)
		return
	}
	views := make([]map[string]any, 0, len(tags))
	for _, t := range tags {
		start := time.UnixMilli(t.LifetimeStartMs)
		v := map[string]any{
			"name": t.Name, "reversion": t.Reversion, "start_ts": t.LifetimeStartMs / 1000,
			"manifest_digest": t.ManifestDigest, "is_manifest_list": isManifestList(t.MediaType),
			"size": t.Size, "last_modified": formatDate(start),
		}
		if t.LifetimeEndMs != nil {
			end := time.UnixMilli(*t.LifetimeEndMs)
			v["end_ts"] = *t.LifetimeEndMs / 1000
			v["expiration"] = formatDate(end)
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": views, "page": page, "has_additional": more})
}

func isManifestList(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// deleteTag is DELETE /api/v1/repository/{ns}/{repo}/tag/{tag}.
func (h *Handler) deleteTag(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needWrite, scopeRepoWrite)
	if !ok {
		return
	}
	ctx := r.Context()
	_, tag, err := h.store.ManifestByTag(ctx, repo.ID, rt.name)
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	if err := h.store.DeleteTag(ctx, repo.ID, rt.name); err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, "delete_tag", repo.NamespaceID, &repo.ID, map[string]any{"username": c.User.Username,
		"repo": repo.Name, "namespace": repo.Namespace, "tag": rt.name, "manifest_digest": tag.ManifestDigest})
	w.WriteHeader(http.StatusNoContent)
}
