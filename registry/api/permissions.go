package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/quayctl/quayctl/registry/store"
)

// permissionView is Quay's role_view for a user (robots are users here)
// or a team.
func (h *Handler) permissionView(ctx context.Context, repo *store.Repository, p store.Permission) (map[string]any, error) {
	if p.Kind == "team" {
		return map[string]any{"role": string(p.Role), "name": p.Name, "avatar": avatar(p.Name, "", "team")}, nil
	}
	member := false
	if p.Kind == "user" {
		role, err := h.store.NamespaceRole(ctx, p.ID, repo.NamespaceID)
		if err != nil {
			return nil, err
		}
		member = role != ""
	} else {
		member = true // a robot always belongs to its namespace
	}
	return map[string]any{"role": string(p.Role), "name": p.Name, "is_robot": p.Kind == "robot",
		"is_org_member": member, "avatar": avatar(p.Name, "", userKindName(p.Kind))}, nil
}

func userKindName(kind string) string {
	if kind == "robot" {
		return "robot"
	}
	return "user"
}

// getPermissions lists or reads repository permissions:
// GET …/permissions/user/, …/permissions/team/, …/permissions/{kind}/{name}.
func (h *Handler) getPermissions(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	ctx := r.Context()
	perms, err := h.store.ListRepositoryPermissions(ctx, repo.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	out := map[string]any{}
	for _, p := range perms {
		isTeam := p.Kind == "team"
		if (rt.kind == "team" && !isTeam) || (rt.kind == "user" && isTeam) || (rt.name != "" && p.Name != rt.name) {
			continue
		}
		v, err := h.permissionView(ctx, repo, p)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if rt.name != "" {
			writeJSON(w, http.StatusOK, v)
			return
		}
		out[p.Name] = v
	}
	if rt.name != "" {
		notFoundErr(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": out})
}

// permissionSubject resolves the user, robot or team a permission names.
// Robots and teams must belong to the repository's namespace; the store
// refuses the rest too, this only words the answer.
func (h *Handler) permissionSubject(ctx context.Context, repo *store.Repository, rt repoRoute) (userID, teamID int64, msg string, err error) {
	if rt.kind == "team" {
		ns, err := h.store.UserByID(ctx, repo.NamespaceID)
		if err != nil {
			return 0, 0, "", err
		}
		if !ns.Organization {
			return 0, 0, "Teams exist only in organizations", nil
		}
		t, err := h.store.TeamByName(ctx, repo.NamespaceID, rt.name)
		if errors.Is(err, store.ErrNotFound) {
			return 0, 0, "Unknown team: " + rt.name, nil
		}
		if err != nil {
			return 0, 0, "", err
		}
		return 0, t.ID, "", nil
	}
	u, err := h.store.UserByName(ctx, rt.name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Organization) {
		return 0, 0, "Unknown user: " + rt.name, nil
	}
	if err != nil {
		return 0, 0, "", err
	}
	return u.ID, 0, "", nil
}

// putPermission is PUT …/permissions/{user|team}/{name} {"role": …}.
func (h *Handler) putPermission(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	var body struct {
		Role string `json:"role"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	role := store.Role(body.Role)
	if role.Rank() == 0 {
		badRequest(w, "Invalid role: "+body.Role+" (use read, write or admin)")
		return
	}
	ctx := r.Context()
	userID, teamID, msg, err := h.permissionSubject(ctx, repo, rt)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if msg != "" {
		badRequest(w, msg)
		return
	}
	existing, err := h.store.ListRepositoryPermissions(ctx, repo.ID)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	kind := "add_repo_permission"
	for _, p := range existing {
		if p.Name == rt.name && (p.Kind == "team") == (rt.kind == "team") {
			kind = "change_repo_permission"
		}
	}
	if err := h.store.SetRepositoryPermission(ctx, repo.ID, userID, teamID, role); err != nil {
		h.storeErr(w, r, err)
		return
	}
	md := map[string]any{"repo": repo.Name, "namespace": repo.Namespace, "role": string(role)}
	p := store.Permission{Kind: "team", ID: teamID, Name: rt.name, Role: role}
	if rt.kind == "team" {
		md["team"] = rt.name
	} else {
		md["username"] = rt.name
		p.Kind, p.ID = "user", userID
		if u, err := h.store.UserByID(ctx, userID); err == nil && u.Robot {
			p.Kind = "robot"
		}
	}
	h.audit(r, c, kind, repo.NamespaceID, &repo.ID, md)
	v, err := h.permissionView(ctx, repo, p)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deletePermission is DELETE …/permissions/{user|team}/{name}.
func (h *Handler) deletePermission(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	ctx := r.Context()
	userID, teamID, msg, err := h.permissionSubject(ctx, repo, rt)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if msg != "" {
		badRequest(w, msg)
		return
	}
	if err := h.store.DeleteRepositoryPermission(ctx, repo.ID, userID, teamID); err != nil {
		h.storeErr(w, r, err)
		return
	}
	md := map[string]any{"repo": repo.Name, "namespace": repo.Namespace}
	if rt.kind == "team" {
		md["team"] = rt.name
	} else {
		md["username"] = rt.name
	}
	h.audit(r, c, "delete_repo_permission", repo.NamespaceID, &repo.ID, md)
	w.WriteHeader(http.StatusNoContent)
}

// Audit log listings ---------------------------------------------------------

// logsPerPage is Quay's page size for audit log listings; the rest is
// reached through next_page.
const logsPerPage = 20

// logPageToken is the opaque next_page token: where the previous page
// ended. It grants nothing: the listing's own filters and the caller's
// permission still apply to every page.
type logPageToken struct {
	Time time.Time `json:"t"`
	ID   int64     `json:"id"`
}

func encodeLogPage(c store.LogCursor) string {
	b, _ := json.Marshal(logPageToken{Time: c.Time.UTC(), ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeLogPage(s string) (*store.LogCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	var t logPageToken
	if err := json.Unmarshal(b, &t); err != nil || t.ID <= 0 || t.Time.IsZero() {
		return nil, false
	}
	return &store.LogCursor{Time: t.Time, ID: t.ID}, true
}

// parseLogRange applies Quay's starttime/endtime rules: MM/DD/YYYY in UTC;
// the start defaults to a day before now, the end to today, and the end
// day is included.
func parseLogRange(start, end string, now time.Time) (time.Time, time.Time, bool) {
	parse := func(s string, def time.Time) (time.Time, bool) {
		if s == "" {
			return def, true
		}
		t, err := time.Parse("01/02/2006", s)
		return t, err == nil
	}
	st, ok1 := parse(start, now.Add(-24*time.Hour))
	en, ok2 := parse(end, now)
	if !ok1 || !ok2 {
		return st, en, false
	}
	en = en.Add(24 * time.Hour)
	return st, en, !en.Before(st)
}

// writeLogs answers Quay's logs shape for the rows matching q.
func (h *Handler) writeLogs(w http.ResponseWriter, r *http.Request, q store.LogQuery, includeNamespace bool) {
	query := r.URL.Query()
	start, end, ok := parseLogRange(query.Get("starttime"), query.Get("endtime"), time.Now().UTC())
	if !ok {
		badRequest(w, "Invalid starttime or endtime: use MM/DD/YYYY, with endtime not before starttime")
		return
	}
	q.Since, q.Until, q.Limit = start, end, logsPerPage+1 // one more tells whether a next page exists
	if tok := query.Get("next_page"); tok != "" {
		c, ok := decodeLogPage(tok)
		if !ok {
			badRequest(w, "Invalid next_page token: pass back the next_page value of the previous response unchanged")
			return
		}
		q.Before = c
	}
	ctx := r.Context()
	if name := query.Get("performer"); name != "" {
		u, err := h.store.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusOK, map[string]any{"start_time": formatDate(start), "end_time": formatDate(end), "logs": []any{}})
			return
		} else if err != nil {
			h.internal(w, r, err)
			return
		}
		q.PerformerID = u.ID
	}
	rows, err := h.store.Logs(ctx, q)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	users := map[int64]*store.User{}
	lookup := func(id int64) *store.User {
		if u, ok := users[id]; ok {
			return u
		}
		u, err := h.store.UserByID(ctx, id)
		if err != nil {
			u = nil
		}
		users[id] = u
		return u
	}
	resp := map[string]any{"start_time": formatDate(start), "end_time": formatDate(end)}
	if len(rows) > logsPerPage {
		rows = rows[:logsPerPage]
		last := rows[len(rows)-1]
		resp["next_page"] = encodeLogPage(store.LogCursor{Time: last.Time, ID: last.ID})
	}
	logs := make([]map[string]any, 0, len(rows))
	for _, e := range rows {
		md := e.Metadata
		if md == nil {
			md = map[string]any{}
		}
		v := map[string]any{"kind": e.Kind, "metadata": md, "ip": e.IP, "datetime": formatDate(e.Time)}
		if e.IP == "" {
			v["ip"] = nil
		}
		if e.PerformerID != nil {
			if u := lookup(*e.PerformerID); u != nil {
				v["performer"] = map[string]any{"kind": "user", "name": u.Username, "is_robot": u.Robot,
					"avatar": avatar(u.Username, "", userKind(u))}
			}
		}
		if includeNamespace {
			if u := lookup(e.AccountID); u != nil {
				v["namespace"] = map[string]any{"kind": userKind(u), "name": u.Username, "avatar": avatar(u.Username, "", userKind(u))}
			}
		}
		logs = append(logs, v)
	}
	resp["logs"] = logs
	writeJSON(w, http.StatusOK, resp)
}

// repositoryLogs is GET /api/v1/repository/{ns}/{repo}/logs (admins and
// superusers).
func (h *Handler) repositoryLogs(w http.ResponseWriter, r *http.Request, c *Caller, rt repoRoute) {
	if c.Superuser && c.HasScope(scopeSuperUser) {
		g, err := h.opts.Access.Repository(r.Context(), c, rt.ns, rt.repo)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if g.Repo == nil {
			notFoundErr(w)
			return
		}
		h.writeLogs(w, r, store.LogQuery{RepositoryID: g.Repo.ID}, false)
		return
	}
	repo, _, ok := h.repoFor(w, r, c, rt, needAdmin, scopeRepoAdmin)
	if !ok {
		return
	}
	h.writeLogs(w, r, store.LogQuery{RepositoryID: repo.ID}, false)
}
