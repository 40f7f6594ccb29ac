package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/quayctl/quayctl/registry/quota"
	"github.com/quayctl/quayctl/registry/store"
)

// QuotaOptions are the quota features (Quay's endpoints/api/namespacequota.py
// and the quota parts of superuser.py).
type QuotaOptions struct {
	Enabled bool // FEATURE_QUOTA_MANAGEMENT: serve the endpoints at all
	Edit    bool // FEATURE_EDIT_QUOTA: allow changes
	// DefaultRejectBytes (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES) is shown as a
	// synthetic default quota for namespaces without one.
	DefaultRejectBytes int64
}

// quotaRoutes are the quota endpoints, added to the route table in api.go
// when the feature is on.
func (h *Handler) quotaRoutes() map[string]http.HandlerFunc {
	if !h.opts.Quota.Enabled {
		return nil
	}
	org := func(op quotaOp) http.HandlerFunc { return h.quotaHandler(quotaOrg, op) }
	usr := func(op quotaOp) http.HandlerFunc { return h.quotaHandler(quotaUser, op) }
	suOrg := func(op quotaOp) http.HandlerFunc { return h.quotaHandler(quotaSuperOrg, op) }
	suUser := func(op quotaOp) http.HandlerFunc { return h.quotaHandler(quotaSuperUser, op) }
	return map[string]http.HandlerFunc{
		"GET /api/v1/organization/{ns}/quota":                       org(opList),
		"POST /api/v1/organization/{ns}/quota":                      org(opCreate),
		"GET /api/v1/organization/{ns}/quota/{id}":                  org(opGet),
		"PUT /api/v1/organization/{ns}/quota/{id}":                  org(opUpdate),
		"DELETE /api/v1/organization/{ns}/quota/{id}":               org(opDelete),
		"GET /api/v1/organization/{ns}/quota/{id}/limit":            org(opLimits),
		"POST /api/v1/organization/{ns}/quota/{id}/limit":           org(opCreateLimit),
		"GET /api/v1/organization/{ns}/quota/{id}/limit/{limit}":    org(opGetLimit),
		"PUT /api/v1/organization/{ns}/quota/{id}/limit/{limit}":    org(opUpdateLimit),
		"DELETE /api/v1/organization/{ns}/quota/{id}/limit/{limit}": org(opDeleteLimit),
		"GET /api/v1/user/quota":                                    usr(opList),
		"GET /api/v1/user/quota/{id}":                               usr(opGet),
		"GET /api/v1/user/quota/{id}/limit":                         usr(opLimits),
		"GET /api/v1/user/quota/{id}/limit/{limit}":                 usr(opGetLimit),
		"GET /api/v1/superuser/organization/{ns}/quota":             suOrg(opList),
		"POST /api/v1/superuser/organization/{ns}/quota":            suOrg(opCreate),
		"PUT /api/v1/superuser/organization/{ns}/quota/{id}":        suOrg(opUpdate),
		"DELETE /api/v1/superuser/organization/{ns}/quota/{id}":     suOrg(opDelete),
		"GET /api/v1/superuser/users/{ns}/quota":                    suUser(opList),
		"POST /api/v1/superuser/users/{ns}/quota":                   suUser(opCreate),
		"PUT /api/v1/superuser/users/{ns}/quota/{id}":               suUser(opUpdate),
		"DELETE /api/v1/superuser/users/{ns}/quota/{id}":            suUser(opDelete),
		"GET /api/v1/superuser/registrysize":                        h.registrySize,
		"POST /api/v1/superuser/registrysize":                       h.registrySize,
	}
}

type quotaScope int

const (
	quotaOrg       quotaScope = iota // /organization/{ns}/quota: members read, FULL_ACCESS superusers write
	quotaUser                        // /user/quota: the caller's own namespace, read-only
	quotaSuperOrg                    // /superuser/organization/{ns}/quota: superusers
	quotaSuperUser                   // /superuser/users/{ns}/quota: superusers
)

type quotaOp int

const (
	opList quotaOp = iota
	opCreate
	opGet
	opUpdate
	opDelete
	opLimits
	opCreateLimit
	opGetLimit
	opUpdateLimit
	opDeleteLimit
)

func (op quotaOp) writes() bool {
	switch op {
	case opCreate, opUpdate, opDelete, opCreateLimit, opUpdateLimit, opDeleteLimit:
		return true
	}
	return false
}

// quotaAudit are Quay's log kinds of each change.
var quotaAudit = map[quotaOp]string{
	opCreate: "org_create_quota", opUpdate: "org_change_quota", opDelete: "org_delete_quota",
	opCreateLimit: "org_create_quota_limit", opUpdateLimit: "org_change_quota_limit", opDeleteLimit: "org_delete_quota_limit",
}

// quotaHandler authorises the caller for the namespace of the path, then
// runs op.
func (h *Handler) quotaHandler(scope quotaScope, op quotaOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if op.writes() && !h.opts.Quota.Edit {
			notFoundErr(w) // FEATURE_EDIT_QUOTA off: Quay hides the endpoint
			return
		}
		c, ok := h.caller(w, r)
		if !ok {
			return
		}
		ns, ok := h.quotaNamespace(w, r, c, scope, op)
		if !ok {
			return
		}
		h.quotaOp(w, r, c, ns, op)
	}
}

// quotaNamespace finds the namespace and checks the caller may do op there.
func (h *Handler) quotaNamespace(w http.ResponseWriter, r *http.Request, c *Caller, scope quotaScope, op quotaOp) (*store.User, bool) {
	ctx := r.Context()
	if c.Anonymous() {
		unauthorized(w, c)
		return nil, false
	}
	superuser := c.Superuser && c.HasScope(scopeSuperUser)
	if scope == quotaUser {
		if !c.HasScope(scopeUserAdmin) {
			unauthorized(w, c)
			return nil, false
		}
		return c.User, true
	}
	if (scope == quotaSuperOrg || scope == quotaSuperUser) && !superuser {
		unauthorized(w, c)
		return nil, false
	}
	ns, err := h.lookupNamespace(ctx, r.PathValue("ns"))
	wantOrg := scope != quotaSuperUser
	if errors.Is(err, store.ErrNotFound) || (err == nil && ns.Organization != wantOrg) {
		if superuser {
			notFoundErr(w)
		} else {
			unauthorized(w, c)
		}
		return nil, false
	} else if err != nil {
		h.internal(w, r, err)
		return nil, false
	}
	if scope != quotaOrg {
		return ns, true
	}
	if op.writes() {
		// Quay: creating and changing quotas is for superusers with
		// FEATURE_SUPERUSERS_FULL_ACCESS.
		if !c.FullAccess || !c.HasScope(scopeSuperUser) {
			unauthorized(w, c)
			return nil, false
		}
		return ns, true
	}
	if superuser || c.FullAccess {
		return ns, true
	}
	role, err := h.store.NamespaceRole(ctx, c.User.ID, ns.ID)
	if err != nil {
		h.internal(w, r, err)
		return nil, false
	}
	if role == "" {
		unauthorized(w, c)
		return nil, false
	}
	return ns, true
}

// quotaView is Quay's quota view.
func (h *Handler) quotaView(q *store.Quota) map[string]any {
	limits := make([]map[string]any, 0, len(q.Limits))
	for _, l := range q.Limits {
		limits = append(limits, limitView(l))
	}
	return map[string]any{"id": q.ID, "limit_bytes": q.LimitBytes, "limit": quota.FormatSize(q.LimitBytes),
		"default_config": false, "limits": limits, "default_config_exists": h.opts.Quota.DefaultRejectBytes != 0}
}

func limitView(l store.QuotaLimit) map[string]any {
	return map[string]any{"id": l.ID, "type": l.Type, "limit_percent": l.Percent}
}

// quotaReport is Quay's quota_report of a namespace: its recorded size,
// its configured limit and where the backfill stands.
func (h *Handler) quotaReport(ctx context.Context, namespaceID int64) (map[string]any, error) {
	out := map[string]any{"quota_bytes": int64(0), "configured_quota": nil, "running_backfill": "waiting", "backfill_status": "waiting"}
	s, err := h.store.NamespaceSize(ctx, namespaceID)
	switch {
	case err == nil:
		out["quota_bytes"] = s.SizeBytes
		status := "waiting"
		if s.BackfillComplete {
			status = "complete"
		} else if s.BackfillStartMs != nil {
			status = "running"
		}
		out["running_backfill"], out["backfill_status"] = status, status
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	q, err := h.store.NamespaceQuota(ctx, namespaceID)
	switch {
	case err == nil:
		out["configured_quota"] = q.LimitBytes
	case errors.Is(err, store.ErrNotFound):
		if h.opts.Quota.DefaultRejectBytes != 0 {
			out["configured_quota"] = h.opts.Quota.DefaultRejectBytes
		}
	default:
		return nil, err
	}
	return out, nil
}

// addQuotaReport adds the namespace's quota_report to an organisation or
// user view when quota management is on; a failure only leaves it out.
func (h *Handler) addQuotaReport(ctx context.Context, namespaceID int64, v map[string]any) {
	if !h.opts.Quota.Enabled {
		return
	}
	rep, err := h.quotaReport(ctx, namespaceID)
	if err != nil {
		h.log.WarnContext(ctx, "cannot read the quota report", "namespace_id", namespaceID, "err", err)
		return
	}
	v["quota_report"] = rep
}

// addRepoQuotaReport adds Quay's repository quota_report (the
// repository's size and its namespace's configured quota).
func (h *Handler) addRepoQuotaReport(ctx context.Context, repo *store.Repository, v map[string]any) {
	if !h.opts.Quota.Enabled {
		return
	}
	rep, err := h.quotaReport(ctx, repo.NamespaceID)
	if err != nil {
		h.log.WarnContext(ctx, "cannot read the quota report", "repository", repo.FullName(), "err", err)
		return
	}
	size := int64(0)
	if s, err := h.store.RepositorySize(ctx, repo.ID); err == nil {
		size = s.SizeBytes
	}
	v["quota_report"] = map[string]any{"quota_bytes": size, "configured_quota": rep["configured_quota"]}
}

// quotaBody is the body of quota and limit changes. limit_bytes may also
// come as a JSON string of digits; limit is a human size ("10 GiB").
type quotaBody struct {
	LimitBytes json.RawMessage `json:"limit_bytes"`
	Limit      *string         `json:"limit"`
	Type       *string         `json:"type"`
	Threshold  *int            `json:"threshold_percent"`
}

// limitBytes reads the quota size of a body; on failure it has answered.
func (b *quotaBody) limitBytes(w http.ResponseWriter, required bool) (int64, bool) {
	switch {
	case len(b.LimitBytes) > 0 && string(b.LimitBytes) != "null":
		var n int64
		if err := json.Unmarshal(b.LimitBytes, &n); err != nil {
			badRequest(w, "limit_bytes must be a whole number of bytes, e.g. 10737418240; or send \"limit\": \"10 GiB\"")
			return 0, false
		}
		if n <= 0 {
			badRequest(w, fmt.Sprintf("limit_bytes must be more than zero, got %d", n))
			return 0, false
		}
		return n, true
	case b.Limit != nil:
		n, err := quota.ParseSize(*b.Limit)
		if err != nil {
			badRequest(w, "invalid limit: "+err.Error())
			return 0, false
		}
		return n, true
	case required:
		badRequest(w, "missing limit_bytes (a number of bytes) or limit (a size such as \"10 GiB\")")
		return 0, false
	}
	return 0, true
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		notFoundErr(w)
		return 0, false
	}
	return id, true
}

// quotaOp runs one operation on the namespace's quota.
func (h *Handler) quotaOp(w http.ResponseWriter, r *http.Request, c *Caller, ns *store.User, op quotaOp) {
	ctx := r.Context()
	var body quotaBody
	if op == opCreate || op == opUpdate || op == opCreateLimit || op == opUpdateLimit {
		if !decodeBody(w, r, &body, false) {
			return
		}
	}
	q, err := h.store.NamespaceQuota(ctx, ns.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.internal(w, r, err)
		return
	}
	if op == opList {
		views := []map[string]any{}
		switch {
		case q != nil:
			views = append(views, h.quotaView(q))
		case h.opts.Quota.DefaultRejectBytes != 0:
			d := h.opts.Quota.DefaultRejectBytes
			views = append(views, map[string]any{"limit_bytes": d, "limit": quota.FormatSize(d),
				"default_config": true, "limits": []any{}, "default_config_exists": true})
		}
		writeJSON(w, http.StatusOK, views)
		return
	}
	if op == opCreate {
		n, ok := body.limitBytes(w, true)
		if !ok {
			return
		}
		if q != nil {
			badRequest(w, fmt.Sprintf("Organization quota for '%s' already exists", ns.Username))
			return
		}
		created, err := h.store.CreateQuota(ctx, ns.ID, n)
		if errors.Is(err, store.ErrExists) {
			badRequest(w, fmt.Sprintf("Organization quota for '%s' already exists", ns.Username))
			return
		} else if err != nil {
			h.storeErr(w, r, err)
			return
		}
		h.audit(r, c, quotaAudit[op], ns.ID, nil, map[string]any{"namespace": ns.Username, "quota_id": created.ID, "limit_bytes": n})
		writeJSON(w, http.StatusCreated, "Created")
		return
	}
	// Everything else names a quota of this namespace.
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if q == nil || q.ID != id {
		notFoundErr(w)
		return
	}
	var limit *store.QuotaLimit
	if op == opGetLimit || op == opUpdateLimit || op == opDeleteLimit {
		lid, ok := pathID(w, r, "limit")
		if !ok {
			return
		}
		for i := range q.Limits {
			if q.Limits[i].ID == lid {
				limit = &q.Limits[i]
			}
		}
		if limit == nil {
			notFoundErr(w)
			return
		}
	}
	md := map[string]any{"namespace": ns.Username, "quota_id": q.ID}
	switch op {
	case opGet:
		writeJSON(w, http.StatusOK, h.quotaView(q))
		return
	case opLimits:
		views := make([]map[string]any, 0, len(q.Limits))
		for _, l := range q.Limits {
			views = append(views, limitView(l))
		}
		writeJSON(w, http.StatusOK, views)
		return
	case opGetLimit:
		writeJSON(w, http.StatusOK, limitView(*limit))
		return
	case opUpdate:
		n, ok := body.limitBytes(w, false)
		if !ok {
			return
		}
		if n != 0 {
			if err := h.store.UpdateQuota(ctx, q.ID, n); err != nil {
				h.storeErr(w, r, err)
				return
			}
			md["limit_bytes"] = n
		}
	case opDelete:
		err = h.store.DeleteQuota(ctx, q.ID)
	case opCreateLimit, opUpdateLimit:
		typ, percent := "", 0
		if limit != nil {
			typ, percent = limit.Type, limit.Percent
		}
		if body.Type != nil {
			typ = *body.Type
		}
		if body.Threshold != nil {
			percent = *body.Threshold
		}
		if op == opCreateLimit && (body.Type == nil || body.Threshold == nil) {
			badRequest(w, `missing "type" ("Warning" or "Reject") or "threshold_percent" (1 to 100)`)
			return
		}
		if op == opCreateLimit {
			var l *store.QuotaLimit
			l, err = h.store.CreateQuotaLimit(ctx, q.ID, typ, percent)
			if err == nil {
				md["limit_id"] = l.ID
			}
		} else {
			err = h.store.UpdateQuotaLimit(ctx, limit.ID, typ, percent)
			md["limit_id"] = limit.ID
		}
		md["type"], md["threshold_percent"] = typ, percent
		if errors.Is(err, store.ErrExists) {
			badRequest(w, "Quota limit already exists: "+err.Error())
			return
		}
	case opDeleteLimit:
		err = h.store.DeleteQuotaLimit(ctx, limit.ID)
		md["limit_id"] = limit.ID
	}
	if err != nil {
		h.storeErr(w, r, err)
		return
	}
	h.audit(r, c, quotaAudit[op], ns.ID, nil, md)
	switch op {
	case opDelete, opDeleteLimit:
		w.WriteHeader(http.StatusNoContent)
	case opCreateLimit:
		writeJSON(w, http.StatusCreated, "Created")
	default:
		updated, err := h.store.NamespaceQuota(ctx, ns.ID)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, h.quotaView(updated))
	}
}

// registrySize is GET|POST /api/v1/superuser/registrysize/: the recorded
// registry size, and (POST) a request to recount it.
func (h *Handler) registrySize(w http.ResponseWriter, r *http.Request) {
	c, ok := h.caller(w, r)
	if !ok {
		return
	}
	if c.Anonymous() || !c.Superuser || !c.HasScope(scopeSuperUser) {
		unauthorized(w, c)
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodPost {
		if err := h.store.QueueRegistrySize(ctx); err != nil {
			h.internal(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, "Created")
		return
	}
	rs, err := h.store.RegistrySize(ctx)
	if errors.Is(err, store.ErrNotFound) {
		rs, err = &store.RegistrySize{}, nil
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"size_bytes": rs.SizeBytes, "last_ran": rs.CompletedMs,
		"running": rs.Running, "queued": rs.Queued})
}
