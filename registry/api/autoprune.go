package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/quayctl/quayctl/registry/autoprune"
	"github.com/quayctl/quayctl/registry/store"
)

// Quay's auto-prune policy API (endpoints/api/policy.py), behind
// FEATURE_AUTO_PRUNE: /api/v1/organization/{org}/autoprunepolicy/ for
// organisation administrators, /api/v1/user/autoprunepolicy/ for the
// caller's own namespace, and
// /api/v1/repository/{ns}/{repo}/autoprunepolicy/ for repository
// administrators. The three take the same bodies and give the same answers.
// Repository policies are routed for one-segment repository names only;
// nested names fall through to the repository routes and answer 404.

// pruneTarget is whose policies a request is about.
type pruneTarget struct {
	ns   *store.User       // the namespace (the repository's, for repository policies)
	repo *store.Repository // nil for namespace policies
}

// kind is the middle of the audit kinds: "namespace" or "repository".
func (t pruneTarget) kind() string {
	if t.repo != nil {
		return "repository"
	}
	return "namespace"
}

func (t pruneTarget) repoID() *int64 {
	if t.repo == nil {
		return nil
	}
	return &t.repo.ID
}

func (t pruneTarget) where() string {
	if t.repo != nil {
		return "repository " + t.repo.FullName()
	}
	return "namespace " + t.ns.Username
}

// autoPruneTarget is the preamble: the feature, the caller and what they
// administer; on failure it has answered.
func (h *Handler) autoPruneTarget(w http.ResponseWriter, r *http.Request) (*Caller, pruneTarget, bool) {
	if !h.opts.AutoPrune {
		notFoundErr(w)
		return nil, pruneTarget{}, false
	}
	if r.PathValue("repo") != "" {
		c, ok := h.caller(w, r)
		if !ok {
			return nil, pruneTarget{}, false
		}
		repo, _, ok := h.repoFor(w, r, c, repoRoute{ns: r.PathValue("ns"), repo: r.PathValue("repo")}, needAdmin, scopeRepoAdmin)
		if !ok {
			return nil, pruneTarget{}, false
		}
		ns, err := h.store.UserByID(r.Context(), repo.NamespaceID)
		if err != nil {
			h.internal(w, r, err)
			return nil, pruneTarget{}, false
		}
		return c, pruneTarget{ns: ns, repo: repo}, true
	}
	if r.PathValue("org") != "" {
		c, org, ok := h.callerOrg(w, r, true, scopeOrgAdmin)
		return c, pruneTarget{ns: org}, ok
	}
	c, ok := h.caller(w, r)
	if !ok || !requireUser(w, c, scopeUserAdmin) {
		return nil, pruneTarget{}, false
	}
	return c, pruneTarget{ns: c.User}, true
}

func (h *Handler) listPolicies(ctx context.Context, t pruneTarget) ([]store.AutoPrunePolicy, error) {
	if t.repo != nil {
		return h.store.RepositoryAutoPrunePolicies(ctx, t.repo.ID)
	}
	return h.store.NamespaceAutoPrunePolicies(ctx, t.ns.ID)
}

// autoPrunePolicies is GET (list) and POST (create) on …/autoprunepolicy/.
func (h *Handler) autoPrunePolicies(w http.ResponseWriter, r *http.Request) {
	c, tgt, ok := h.autoPruneTarget(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		rows, err := h.listPolicies(ctx, tgt)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		views := []map[string]any{}
		for _, row := range rows {
			p, err := autoprune.Load(row.Policy)
			if err != nil {
				// A row this server cannot read is still listed, so that it
				// can be seen and deleted.
				views = append(views, map[string]any{"uuid": row.UUID, "error": err.Error()})
				continue
			}
			views = append(views, p.View(row.UUID))
		}
		writeJSON(w, http.StatusOK, map[string]any{"policies": views})
		return
	}
	p, ok := decodePolicy(w, r)
	if !ok {
		return
	}
	var id string
	var err error
	if tgt.repo != nil {
		id, err = h.store.CreateRepositoryAutoPrunePolicy(ctx, tgt.ns.ID, tgt.repo.ID, p.Stored())
	} else {
		id, err = h.store.CreateNamespaceAutoPrunePolicy(ctx, tgt.ns.ID, p.Stored())
	}
	if errors.Is(err, store.ErrExists) {
		badRequest(w, "Policy already exists: the "+tgt.where()+" has an identical auto-prune policy")
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	h.auditPolicy(r, c, "create", tgt, id, p)
	writeJSON(w, http.StatusCreated, map[string]any{"uuid": id})
}

// autoPrunePolicy is GET, PUT and DELETE on …/autoprunepolicy/{uuid}.
func (h *Handler) autoPrunePolicy(w http.ResponseWriter, r *http.Request) {
	c, tgt, ok := h.autoPruneTarget(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.PathValue("uuid")
	rows, err := h.listPolicies(ctx, tgt)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	var current *store.AutoPrunePolicy
	for i := range rows {
		if rows[i].UUID == id {
			current = &rows[i]
		}
	}
	if current == nil {
		fail(w, http.StatusNotFound, errNotFound, "Policy not found: no auto-prune policy "+id+" in "+tgt.where())
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p, err := autoprune.Load(current.Policy)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p.View(id))
	case http.MethodPut:
		p, ok := decodePolicy(w, r)
		if !ok {
			return
		}
		if tgt.repo != nil {
			err = h.store.UpdateRepositoryAutoPrunePolicy(ctx, tgt.ns.ID, tgt.repo.ID, id, p.Stored())
		} else {
			err = h.store.UpdateNamespaceAutoPrunePolicy(ctx, tgt.ns.ID, id, p.Stored())
		}
		switch {
		case errors.Is(err, store.ErrExists):
			badRequest(w, "Policy already exists: the "+tgt.where()+" has an identical auto-prune policy")
			return
		case errors.Is(err, store.ErrNotFound):
			notFoundErr(w)
			return
		case err != nil:
			h.internal(w, r, err)
			return
		}
		h.auditPolicy(r, c, "update", tgt, id, p)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if tgt.repo != nil {
			err = h.store.DeleteRepositoryAutoPrunePolicy(ctx, tgt.repo.ID, id)
		} else {
			err = h.store.DeleteNamespaceAutoPrunePolicy(ctx, tgt.ns.ID, id)
		}
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		md := map[string]any{"namespace": tgt.ns.Username, "policy_uuid": id}
		if tgt.repo != nil {
			md["repo"] = tgt.repo.Name
		}
		h.audit(r, c, "delete_"+tgt.kind()+"_autoprune_policy", tgt.ns.ID, tgt.repoID(), md)
		writeJSON(w, http.StatusOK, map[string]any{"uuid": id})
	}
}

func decodePolicy(w http.ResponseWriter, r *http.Request) (*autoprune.Policy, bool) {
	var in autoprune.Input
	if !decodeBody(w, r, &in, false) {
		return nil, false
	}
	p, err := autoprune.Parse(in)
	if err != nil {
		badRequest(w, err.Error())
		return nil, false
	}
	return p, true
}

// auditPolicy writes {create,update}_{namespace,repository}_autoprune_policy.
func (h *Handler) auditPolicy(r *http.Request, c *Caller, verb string, tgt pruneTarget, id string, p *autoprune.Policy) {
	v := p.View(id)
	md := map[string]any{"namespace": tgt.ns.Username, "policy_uuid": id,
		"method": v["method"], "value": v["value"], "tag_pattern": v["tagPattern"], "tag_pattern_matches": v["tagPatternMatches"]}
	if tgt.repo != nil {
		md["repo"] = tgt.repo.Name
	}
	h.audit(r, c, verb+"_"+tgt.kind()+"_autoprune_policy", tgt.ns.ID, tgt.repoID(), md)
}
